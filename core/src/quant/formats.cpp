#include "quantlens/quant/formats.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// Closed form of floatMaxFinite, cheap enough for the per-element encoder: the top exponent
// field and mantissa that are still numbers under the format's special-value rule.
float maxFinite(const WeightFormat& f)
{
    const int expMask = (1 << f.expBits) - 1, manMask = (1 << f.manBits) - 1;
    int topExp = expMask, topMan = manMask;
    if (f.specials == FloatSpecials::InfNan) topExp = expMask - 1;
    if (f.specials == FloatSpecials::NanOnly) topMan = manMask - 1;
    return std::ldexp(float((1 << f.manBits) + topMan), topExp - f.expBias - f.manBits);
}

// Decision boundaries between neighbouring NF4 values; a value above boundary i takes code i+1.
std::array<float, 15> nf4Midpoints()
{
    std::array<float, 15> m{};
    for (size_t i = 0; i < m.size(); ++i) m[i] = float((double(kNf4Codebook[i]) + double(kNf4Codebook[i + 1])) / 2.0);
    return m;
}

} // namespace

Expected<const WeightFormat*> findFormat(std::string_view id)
{
    for (const WeightFormat& f : kWeightFormats)
        if (id == f.id) return &f;
    std::string known;
    for (const WeightFormat& f : kWeightFormats) {
        if (!known.empty()) known += ", ";
        known += f.id;
    }
    return makeError("unknown weight format '" + std::string(id) + "'; expected one of: " + known);
}

std::vector<std::string> formatIds()
{
    std::vector<std::string> ids;
    ids.reserve(kWeightFormats.size());
    for (const WeightFormat& f : kWeightFormats) ids.emplace_back(f.id);
    return ids;
}

Expected<std::string> intFormatId(int bits, bool symmetric)
{
    if (bits < 2 || bits > 8) return makeError("integer weight formats have 2 to 8 bits, got " + std::to_string(bits));
    return "int" + std::to_string(bits) + (symmetric ? "_sym" : "_asym");
}

uint32_t encodeFloatElement(const WeightFormat& f, float x)
{
    if (std::isnan(x)) return 0;
    const int M = f.manBits, minExp = 1 - f.expBias; // minExp: exponent of the smallest normal
    const float a = std::min(std::fabs(x), maxFinite(f));
    if (a == 0.f) return 0;
    // The grid spacing at a is 2^(e - M) with e the binade of a, floored at the subnormal range,
    // so rounding a / spacing to an integer is rounding to the format's grid; a / spacing is exact.
    int e = std::max(std::ilogb(a), minExp);
    uint32_t r = uint32_t(std::nearbyint(std::ldexp(a, M - e))); // ties to even = even mantissa
    if (r == 0) return 0;                                        // rounds to zero: one code for zero, whatever the sign
    uint32_t expField = 0, man = r;
    if (r >= (1u << M)) {     // normal (a subnormal may round up into the smallest normal)
        if (r == (2u << M)) { // rounded up into the next binade; a <= max keeps it finite
            ++e;
            r = 1u << M;
        }
        expField = uint32_t(e + f.expBias);
        man = r - (1u << M);
    }
    const uint32_t sign = std::signbit(x) ? 1u : 0u;
    return (sign << (f.expBits + M)) | (expField << M) | man;
}

uint32_t encodeNf4(float x)
{
    static const std::array<float, 15> mid = nf4Midpoints();
    if (std::isnan(x)) return 7; // the code of 0
    // Number of boundaries strictly below x: equal to a boundary goes to the lower code.
    return uint32_t(std::lower_bound(mid.begin(), mid.end(), x) - mid.begin());
}

std::array<float, 256> elementTable(const WeightFormat& f)
{
    std::array<float, 256> t{};
    if (f.kind == FormatKind::Float)
        for (uint32_t c = 0; c < codeCount(f); ++c) t[c] = floatElementValue(f, c);
    else if (f.kind == FormatKind::NormalFloat)
        std::copy(kNf4Codebook.begin(), kNf4Codebook.end(), t.begin());
    return t;
}

} // namespace ql
