#include "quantlens/quant/groupparams.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace ql {

namespace {

float intMaxCode(const WeightFormat& f)
{
    return float((1u << f.bits) - 1u);
}
float symZero(const WeightFormat& f)
{
    return float(1u << (f.bits - 1));
}

Expected<GroupParams> intParams(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> v, float clip)
{
    // GPTQ's find_params: the range always contains 0, so zero lies in [0, 2^b - 1].
    float lo = std::min(0.f, v.minCoeff()), hi = std::max(0.f, v.maxCoeff());
    const bool sym = f.kind == FormatKind::IntSym;
    if (sym) {
        hi = std::max(-lo, hi);
        lo = -hi; // see the header: the reference leaves lo = 0 for groups without negatives
    }
    if (lo == 0.f && hi == 0.f) { // all zero: any scale reproduces the zeros; keep it non-zero
        lo = -1.f;
        hi = 1.f;
    }
    lo *= clip;
    hi *= clip;
    const float maxq = intMaxCode(f);
    float scale = (hi - lo) / maxq;
    if (scale == 0.f) { // a range of a few subnormals: quantize the group to zero instead
        lo = -clip;
        hi = clip;
        scale = (hi - lo) / maxq;
    }
    if (!std::isfinite(scale))
        return makeError("the value range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "] overflows a float scale; expected weights well inside the float range");
    return GroupParams{scale, sym ? symZero(f) : float(std::nearbyint(-lo / scale))};
}

} // namespace

GroupParams defaultParams(const WeightFormat& f)
{
    switch (f.kind) {
    case FormatKind::IntSym: return {1.f, symZero(f)};
    case FormatKind::Binary:
    case FormatKind::Ternary: return {0.f, 0.f};
    default: return {1.f, 0.f};
    }
}

Expected<GroupParams> computeParams(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> values, float clip)
{
    if (values.size() == 0)
        return makeError(std::string("cannot compute ") + f.id +
                         " parameters of an empty group; expected at least one value");
    if (!(clip > 0.f && clip <= 1.f)) return makeError("clip ratio " + std::to_string(clip) + " is outside (0, 1]");
    for (Eigen::Index i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            return makeError("value " + std::to_string(i) + " of the group is " + std::to_string(values[i]) +
                             "; expected finite weights");
    if ((f.kind == FormatKind::Binary || f.kind == FormatKind::Ternary) && clip != 1.f)
        return makeError(std::string(f.id) + " has no range to clip; expected clip = 1");

    switch (f.kind) {
    case FormatKind::IntAsym:
    case FormatKind::IntSym: return intParams(f, values, clip);
    case FormatKind::Float:
    case FormatKind::NormalFloat: {
        float absmax = values.cwiseAbs().maxCoeff();
        if (absmax == 0.f) absmax = 1.f; // all zero: any non-zero scale reproduces them
        absmax *= clip;
        const float top = f.kind == FormatKind::Float ? floatMaxFinite(f) : 1.f;
        float scale = absmax / top;
        if (scale == 0.f) scale = clip / top; // subnormal absmax: quantize the group to zero
        return GroupParams{scale, 0.f};
    }
    case FormatKind::Binary: {
        // Sums in double so the statistics do not depend on the group's length or order.
        double sum = 0;
        for (Eigen::Index i = 0; i < values.size(); ++i) sum += values[i];
        const double mu = sum / double(values.size());
        double dev = 0;
        for (Eigen::Index i = 0; i < values.size(); ++i) dev += std::abs(double(values[i]) - mu);
        return GroupParams{float(dev / double(values.size())), float(mu)};
    }
    case FormatKind::Ternary: {
        double sumAbs = 0;
        for (Eigen::Index i = 0; i < values.size(); ++i) sumAbs += std::abs(double(values[i]));
        // The stored float threshold decides membership, so α matches what quantizeValue encodes.
        const float delta = float(kTernaryThreshold * sumAbs / double(values.size()));
        double sumKept = 0;
        Eigen::Index kept = 0;
        for (Eigen::Index i = 0; i < values.size(); ++i)
            if (std::abs(values[i]) > delta) {
                sumKept += std::abs(double(values[i]));
                ++kept;
            }
        return GroupParams{kept ? float(sumKept / double(kept)) : 0.f, delta};
    }
    }
    return makeError("unhandled format kind");
}

Expected<void> checkParams(const WeightFormat& f, const GroupParams& p)
{
    // Formatted only on failure: this runs once per group of every weight a run reads.
    auto what = [&] {
        return std::string(f.id) + " parameters (scale " + std::to_string(p.scale) + ", zero " +
               std::to_string(p.zero) + ")";
    };
    if (!std::isfinite(p.scale) || !std::isfinite(p.zero)) return makeError(what() + ": expected finite values");
    switch (f.kind) {
    case FormatKind::IntSym:
        if (p.zero != symZero(f)) return makeError(what() + ": a symmetric format's zero is 2^(bits-1)");
        [[fallthrough]];
    case FormatKind::IntAsym:
        if (!(p.scale > 0.f)) return makeError(what() + ": expected a positive scale");
        break;
    case FormatKind::Float:
    case FormatKind::NormalFloat:
        if (!(p.scale > 0.f)) return makeError(what() + ": expected a positive scale");
        if (p.zero != 0.f) return makeError(what() + ": this format has no zero point; expected 0");
        break;
    case FormatKind::Binary:
        if (p.scale < 0.f) return makeError(what() + ": expected α >= 0");
        break;
    case FormatKind::Ternary:
        if (p.scale < 0.f || p.zero < 0.f) return makeError(what() + ": expected α >= 0 and threshold >= 0");
        break;
    }
    return {};
}

uint32_t quantizeValue(const WeightFormat& f, const GroupParams& p, float w)
{
    switch (f.kind) {
    case FormatKind::IntAsym:
    case FormatKind::IntSym: {
        // Division (not multiplication by 1/scale) and ties-to-even, as the reference does.
        const float q = std::nearbyint(w / p.scale) + p.zero, maxq = intMaxCode(f);
        return q >= maxq ? uint32_t(maxq) : q > 0.f ? uint32_t(q) : 0u; // NaN fails both: 0
    }
    case FormatKind::Float: return encodeFloatElement(f, w / p.scale);
    case FormatKind::NormalFloat: return encodeNf4(w / p.scale);
    case FormatKind::Binary: return w >= p.zero ? 1u : 0u;
    case FormatKind::Ternary: return w > p.zero ? 2u : w < -p.zero ? 0u : 1u;
    }
    return 0;
}

float dequantizeCode(const WeightFormat& f, const GroupParams& p, uint32_t code)
{
    switch (f.kind) {
    case FormatKind::IntAsym:
    case FormatKind::IntSym: return p.scale * (float(code) - p.zero);
    case FormatKind::Float: return p.scale * floatElementValue(f, code);
    case FormatKind::NormalFloat: return p.scale * kNf4Codebook[code & 15u];
    // Additions rather than (2q - 1)·α + μ so no compiler contracts them into an FMA.
    case FormatKind::Binary: return code ? p.zero + p.scale : p.zero - p.scale;
    case FormatKind::Ternary: return code == 2 ? p.scale : code == 0 ? -p.scale : 0.f;
    }
    return 0.f;
}

Eigen::VectorXf fakeQuantize(const WeightFormat& f, const GroupParams& p, Eigen::Ref<const Eigen::VectorXf> values)
{
    Eigen::VectorXf out(values.size());
    for (Eigen::Index i = 0; i < values.size(); ++i) out[i] = dequantizeCode(f, p, quantizeValue(f, p, values[i]));
    return out;
}

Expected<QuantizedColumn> quantizeColumn(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> w,
                                         Eigen::Ref<const Eigen::VectorXf> scales,
                                         Eigen::Ref<const Eigen::VectorXf> zeros)
{
    if (scales.size() != w.size() || zeros.size() != w.size())
        return makeError("column of " + std::to_string(w.size()) + " values got " + std::to_string(scales.size()) +
                         " scales and " + std::to_string(zeros.size()) + " zeros; expected one of each per row");
    QuantizedColumn out{std::vector<uint32_t>(size_t(w.size())), Eigen::VectorXf(w.size())};
    for (Eigen::Index r = 0; r < w.size(); ++r) {
        const GroupParams p{scales[r], zeros[r]};
        if (auto ok = checkParams(f, p); !ok) return makeError("row " + std::to_string(r) + ": " + ok.message());
        out.codes[size_t(r)] = quantizeValue(f, p, w[r]);
        out.values[r] = dequantizeCode(f, p, out.codes[size_t(r)]);
    }
    return out;
}

} // namespace ql
