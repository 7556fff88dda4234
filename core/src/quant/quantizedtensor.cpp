#include "quantlens/quant/quantizedtensor.h"

#include <array>
#include <cmath>
#include <string>

namespace ql {

namespace {

std::string shape(Eigen::Index rows, Eigen::Index cols)
{
    return std::to_string(rows) + " x " + std::to_string(cols);
}

} // namespace

const char* granularityName(Granularity g)
{
    switch (g) {
    case Granularity::PerTensor: return "per_tensor";
    case Granularity::PerChannel: return "per_channel";
    case Granularity::PerGroup: return "per_group";
    }
    return "per_group";
}

std::optional<Granularity> granularityFromName(std::string_view name)
{
    for (Granularity g : {Granularity::PerTensor, Granularity::PerChannel, Granularity::PerGroup})
        if (name == granularityName(g)) return g;
    return std::nullopt;
}

Expected<QuantizedTensor> QuantizedTensor::create(Eigen::Index rows, Eigen::Index cols, const FormatSpec& spec)
{
    auto format = findFormat(spec.format);
    if (!format) return format.error();
    if (rows < 1 || cols < 1)
        return makeError("cannot quantize a " + shape(rows, cols) + " weight; expected at least one row and column");
    int groups = 1;
    if (spec.granularity == Granularity::PerGroup) {
        if (spec.groupSize <= 0)
            return makeError("group size " + std::to_string(spec.groupSize) +
                             "; expected a positive number of input columns per group");
        groups = int((cols + spec.groupSize - 1) / spec.groupSize);
    }
    QuantizedTensor t;
    t.m_rows = rows;
    t.m_cols = cols;
    t.m_spec = spec;
    t.m_format = *format;
    t.m_wordsPerRow = (cols * t.m_format->bits + 31) / 32;
    t.m_codes.assign(size_t(rows * t.m_wordsPerRow), 0u);
    const GroupParams p = defaultParams(*t.m_format);
    t.m_scales = Eigen::MatrixXf::Constant(rows, groups, p.scale);
    t.m_zeros = Eigen::MatrixXf::Constant(rows, groups, p.zero);
    t.m_gIdx.resize(size_t(cols));
    for (Eigen::Index j = 0; j < cols; ++j)
        t.m_gIdx[size_t(j)] = spec.granularity == Granularity::PerGroup ? int32_t(j / spec.groupSize) : 0;
    return t;
}

Expected<QuantizedTensor> QuantizedTensor::fromParts(Eigen::Index rows, Eigen::Index cols, const FormatSpec& spec,
                                                     std::vector<uint32_t> packedCodes, Eigen::MatrixXf scales,
                                                     Eigen::MatrixXf zeros, std::vector<int32_t> groupIndex)
{
    auto made = create(rows, cols, spec);
    if (!made) return made.error();
    QuantizedTensor& t = *made;
    if (packedCodes.size() != t.m_codes.size())
        return makeError(std::to_string(packedCodes.size()) + " packed code words for a " + shape(rows, cols) + " " +
                         spec.format + " weight; expected " + std::to_string(t.m_codes.size()) + " (" +
                         std::to_string(t.m_wordsPerRow) + " per row)");
    if (scales.rows() != rows || scales.cols() != t.groups() || zeros.rows() != rows || zeros.cols() != t.groups())
        return makeError("scales " + shape(scales.rows(), scales.cols()) + " and zeros " +
                         shape(zeros.rows(), zeros.cols()) + "; expected " + shape(rows, t.groups()) +
                         " (rows x groups)");
    QL_TRY(t.setGroupIndex(std::move(groupIndex)));
    for (Eigen::Index r = 0; r < rows; ++r)
        for (int g = 0; g < t.groups(); ++g) {
            const GroupParams p{scales(r, g), zeros(r, g)};
            if (auto ok = checkParams(*t.m_format, p); !ok)
                return makeError("row " + std::to_string(r) + ", group " + std::to_string(g) + ": " + ok.message());
            if (spec.granularity == Granularity::PerTensor && (p.scale != scales(0, 0) || p.zero != zeros(0, 0)))
                return makeError("per-tensor parameters differ between row 0 and row " + std::to_string(r) +
                                 "; expected one scale and zero");
        }
    t.m_scales = std::move(scales);
    t.m_zeros = std::move(zeros);
    t.m_codes = std::move(packedCodes);
    const uint64_t usedBits = uint64_t(cols) * t.m_format->bits, tailBits = usedBits % 32;
    // Where every bit pattern of the width is a code (the integer formats), only padding can be wrong.
    bool everyPatternValid = true;
    for (uint32_t code = 0; code < (uint32_t(1) << t.m_format->bits) && everyPatternValid; ++code)
        everyPatternValid = isValidCode(*t.m_format, code);
    for (Eigen::Index r = 0; r < rows; ++r) {
        if (tailBits && (t.m_codes[size_t((r + 1) * t.m_wordsPerRow - 1)] >> tailBits) != 0)
            return makeError("row " + std::to_string(r) + " has non-zero padding bits after its last code; expected 0");
        if (everyPatternValid) continue;
        for (Eigen::Index c = 0; c < cols; ++c)
            if (!isValidCode(*t.m_format, t.code(r, c)))
                return makeError("code " + std::to_string(t.code(r, c)) + " at (" + std::to_string(r) + ", " +
                                 std::to_string(c) + ") is not a " + spec.format + " code");
    }
    return made;
}

Expected<void> QuantizedTensor::setGroupIndex(std::vector<int32_t> gIdx)
{
    if (Eigen::Index(gIdx.size()) != m_cols)
        return makeError("group index of " + std::to_string(gIdx.size()) + " entries; expected one per input column (" +
                         std::to_string(m_cols) + ")");
    for (size_t j = 0; j < gIdx.size(); ++j)
        if (gIdx[j] < 0 || gIdx[j] >= groups())
            return makeError("column " + std::to_string(j) + " is in group " + std::to_string(gIdx[j]) +
                             "; expected a group in [0, " + std::to_string(groups()) + ")");
    m_gIdx = std::move(gIdx);
    return {};
}

Expected<void> QuantizedTensor::setParams(Eigen::Index row, int group, const GroupParams& p)
{
    if (row < 0 || row >= m_rows || group < 0 || group >= groups())
        return makeError("parameters for (row " + std::to_string(row) + ", group " + std::to_string(group) +
                         "); expected row < " + std::to_string(m_rows) + " and group < " + std::to_string(groups()));
    QL_TRY(checkParams(*m_format, p));
    if (m_spec.granularity == Granularity::PerTensor) {
        m_scales.setConstant(p.scale);
        m_zeros.setConstant(p.zero);
    } else {
        m_scales(row, group) = p.scale;
        m_zeros(row, group) = p.zero;
    }
    return {};
}

uint32_t QuantizedTensor::code(Eigen::Index row, Eigen::Index col) const
{
    const unsigned bits = m_format->bits;
    const uint64_t bit = uint64_t(col) * bits;
    const size_t w = size_t(row * m_wordsPerRow) + size_t(bit / 32);
    const unsigned sh = unsigned(bit % 32);
    uint32_t v = m_codes[w] >> sh;
    if (sh + bits > 32) v |= m_codes[w + 1] << (32 - sh);
    return v & ((1u << bits) - 1u);
}

void QuantizedTensor::storeCode(Eigen::Index row, Eigen::Index col, uint32_t code)
{
    const unsigned bits = m_format->bits;
    const uint32_t mask = (1u << bits) - 1u;
    const uint64_t bit = uint64_t(col) * bits;
    const size_t w = size_t(row * m_wordsPerRow) + size_t(bit / 32);
    const unsigned sh = unsigned(bit % 32);
    m_codes[w] = (m_codes[w] & ~(mask << sh)) | (code << sh);
    if (sh + bits > 32) // the high part of the code starts the next word
        m_codes[w + 1] = (m_codes[w + 1] & ~(mask >> (32 - sh))) | (code >> (32 - sh));
}

Expected<void> QuantizedTensor::setCode(Eigen::Index row, Eigen::Index col, uint32_t code)
{
    if (row < 0 || row >= m_rows || col < 0 || col >= m_cols)
        return makeError("code position (" + std::to_string(row) + ", " + std::to_string(col) + ") outside the " +
                         shape(m_rows, m_cols) + " weight");
    if (!isValidCode(*m_format, code))
        return makeError("code " + std::to_string(code) + " is not a " + m_spec.format + " code; expected at most " +
                         std::to_string(maxCode(*m_format)) +
                         (m_format->kind == FormatKind::Float ? " and not NaN/inf" : ""));
    storeCode(row, col, code);
    return {};
}

Expected<Eigen::VectorXf> QuantizedTensor::quantizeColumn(Eigen::Index j, Eigen::Ref<const Eigen::VectorXf> w)
{
    if (j < 0 || j >= m_cols)
        return makeError("column " + std::to_string(j) + " outside the " + shape(m_rows, m_cols) + " weight");
    if (w.size() != m_rows)
        return makeError("column of " + std::to_string(w.size()) + " values; expected " + std::to_string(m_rows) +
                         " (one per row)");
    const int g = m_gIdx[size_t(j)];
    Eigen::VectorXf out(m_rows);
    for (Eigen::Index r = 0; r < m_rows; ++r) {
        const GroupParams p = params(r, g); // checked when set
        const uint32_t c = quantizeValue(*m_format, p, w[r]);
        storeCode(r, j, c);
        out[r] = dequantizeCode(*m_format, p, c);
    }
    return out;
}

Eigen::MatrixXf QuantizedTensor::dequantize() const
{
    const WeightFormat& f = *m_format;
    // A table gives the same float as floatElementValue() without its per-call exponent loop.
    const std::array<float, 256> element = elementTable(f);
    const bool table = f.kind == FormatKind::Float || f.kind == FormatKind::NormalFloat;
    Eigen::MatrixXf out(m_rows, m_cols);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < m_rows; ++r)
        for (Eigen::Index c = 0; c < m_cols; ++c) {
            const int g = m_gIdx[size_t(c)];
            const GroupParams p = params(r, g);
            const uint32_t q = code(r, c);
            out(r, c) = table ? p.scale * element[q] : dequantizeCode(f, p, q);
        }
    return out;
}

Expected<QuantizedTensor> quantize(Eigen::Ref<const Eigen::MatrixXf> w, const FormatSpec& spec,
                                   std::span<const int32_t> groupIndex)
{
    auto made = QuantizedTensor::create(w.rows(), w.cols(), spec);
    if (!made) return made.error();
    QuantizedTensor& t = *made;
    if (!groupIndex.empty()) QL_TRY(t.setGroupIndex(std::vector<int32_t>(groupIndex.begin(), groupIndex.end())));
    for (Eigen::Index c = 0; c < w.cols(); ++c)
        for (Eigen::Index r = 0; r < w.rows(); ++r)
            if (!std::isfinite(w(r, c)))
                return makeError("weight element (" + std::to_string(r) + ", " + std::to_string(c) + ") is " +
                                 std::to_string(w(r, c)) + "; expected finite weights");
    const WeightFormat& f = t.format();

    if (spec.granularity == Granularity::PerTensor) {
        const Eigen::VectorXf all = w.reshaped();
        auto p = computeParams(f, all);
        if (!p) return p.error();
        QL_TRY(t.setParams(0, 0, *p));
    }
    // Columns of each group, in column order (act-order groups are not contiguous).
    std::vector<std::vector<Eigen::Index>> members(size_t(t.groups()));
    for (Eigen::Index j = 0; j < w.cols(); ++j) members[size_t(t.groupIndex()[size_t(j)])].push_back(j);

    std::string failure;
#pragma omp parallel for schedule(dynamic, 16)
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
        Eigen::VectorXf values;
        for (int g = 0; g < t.groups(); ++g) {
            if (spec.granularity != Granularity::PerTensor && !members[size_t(g)].empty()) {
                const auto& cols = members[size_t(g)];
                values.resize(Eigen::Index(cols.size()));
                for (size_t i = 0; i < cols.size(); ++i) values[Eigen::Index(i)] = w(r, cols[i]);
                auto p = computeParams(f, values);
                auto ok = p ? t.setParams(r, g, *p) : Expected<void>(p.error());
                if (!ok) {
#pragma omp critical(ql_quantize_failure)
                    if (failure.empty())
                        failure = "row " + std::to_string(r) + ", group " + std::to_string(g) + ": " + ok.message();
                    continue;
                }
            }
            const GroupParams p = t.params(r, g);
            for (Eigen::Index c : members[size_t(g)]) t.storeCode(r, c, quantizeValue(f, p, w(r, c)));
        }
    }
    if (!failure.empty()) return makeError(failure);
    return made;
}

} // namespace ql
