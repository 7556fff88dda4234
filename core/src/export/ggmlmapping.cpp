#include "quantlens/export/ggmlmapping.h"

#include "quantlens/quant/formats.h"

namespace ql {

Expected<GgmlType> losslessGgmlType(const QuantizedTensor& t)
{
    const WeightFormat& f = t.format();
    const std::string what = std::string(f.id) + " " + granularityName(t.spec().granularity) +
                             (t.spec().granularity == Granularity::PerGroup ? " " + std::to_string(t.spec().groupSize)
                                                                            : "");
    const bool sym = f.kind == FormatKind::IntSym, asym = f.kind == FormatKind::IntAsym;
    GgmlType type;
    if (sym && f.bits == 4)
        type = GgmlType::Q4_0;
    else if (asym && f.bits == 4)
        type = GgmlType::Q4_1;
    else if (sym && f.bits == 5)
        type = GgmlType::Q5_0;
    else if (asym && f.bits == 5)
        type = GgmlType::Q5_1;
    else if (sym && f.bits == 8)
        type = GgmlType::Q8_0;
    else
        return makeError("no ggml block type holds " + what +
                         " codes (q4_0/q4_1/q5_0/q5_1/q8_0 need int4, int5 or int8_sym)");
    if (t.spec().granularity != Granularity::PerGroup || t.spec().groupSize != 32)
        return makeError(std::string(ggmlTypeInfo(type)->name) + " needs groups of 32 input columns; the run has " +
                         what);
    if (t.cols() % 32 != 0)
        return makeError(std::string(ggmlTypeInfo(type)->name) + " needs rows that are a multiple of 32; rows have " +
                         std::to_string(t.cols()) + " elements");
    for (Eigen::Index j = 0; j < t.cols(); ++j)
        if (t.groupIndex()[size_t(j)] != int32_t(j / 32))
            return makeError(
                "the group index is not contiguous (act-order): ggml blocks group columns 32 by 32 in order");
    if (sym) // the ggml grids are centred on 2^(b-1); a symmetric tensor's zeros must be exactly that
        for (Eigen::Index r = 0; r < t.rows(); ++r)
            for (int g = 0; g < t.groups(); ++g)
                if (t.params(r, g).zero != float(1u << (f.bits - 1)))
                    return makeError("row " + std::to_string(r) + " group " + std::to_string(g) + " has zero " +
                                     std::to_string(t.params(r, g).zero) + ", not the symmetric grid's centre");
    return type;
}

Expected<void> encodeQuantizedRows(const QuantizedTensor& t, GgmlType type, std::span<const Eigen::Index> rowOrder,
                                   std::span<uint8_t> out)
{
    auto expected = losslessGgmlType(t);
    if (!expected) return expected.error();
    if (*expected != type)
        return makeError(std::string("codes of ") + t.format().id + " cannot be written as " +
                         ggmlTypeInfo(type)->name);
    const Eigen::Index rows = rowOrder.empty() ? t.rows() : Eigen::Index(rowOrder.size());
    const int64_t rowBytes = ggmlRowBytes(type, t.cols());
    if (int64_t(out.size()) != rowBytes * rows)
        return makeError("output of " + std::to_string(out.size()) + " bytes for " + std::to_string(rows) +
                         " rows of " + std::to_string(rowBytes));
    const int blockBytes = ggmlTypeInfo(type)->blockBytes;
    const bool affine = type == GgmlType::Q4_1 || type == GgmlType::Q5_1;
    for (Eigen::Index r = 0; r < rows; ++r) {
        const Eigen::Index src = rowOrder.empty() ? r : rowOrder[size_t(r)];
        for (Eigen::Index b = 0; b < t.cols() / 32; ++b) {
            const GroupParams p = t.params(src, int(b));
            uint8_t q[32];
            for (int j = 0; j < 32; ++j) { // q8_0 holds code − 128 as int8; the others the code
                const uint32_t code = t.code(src, b * 32 + j);
                q[j] = type == GgmlType::Q8_0 ? uint8_t(int8_t(int(code) - 128)) : uint8_t(code);
            }
            packGgmlBlock(type, p.scale, affine ? -p.scale * p.zero : 0.f, q,
                          out.data() + r * rowBytes + b * blockBytes);
        }
    }
    return {};
}

} // namespace ql
