#include "quantlens/export/ggmltype.h"

#include "export/ggmlkquants.h"
#include "quantlens/model/safetensors.h"

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace ql {

namespace {

constexpr std::array<GgmlTypeInfo, 13> kGgmlTypes{{
    {GgmlType::F32, "f32", 1, 4},
    {GgmlType::F16, "f16", 1, 2},
    {GgmlType::BF16, "bf16", 1, 2},
    {GgmlType::Q8_0, "q8_0", 32, 34},
    {GgmlType::Q4_0, "q4_0", 32, 18},
    {GgmlType::Q4_1, "q4_1", 32, 20},
    {GgmlType::Q5_0, "q5_0", 32, 22},
    {GgmlType::Q5_1, "q5_1", 32, 24},
    {GgmlType::Q2_K, "q2_k", 256, 84},
    {GgmlType::Q3_K, "q3_k", 256, 110},
    {GgmlType::Q4_K, "q4_k", 256, 144},
    {GgmlType::Q5_K, "q5_k", 256, 176},
    {GgmlType::Q6_K, "q6_k", 256, 210},
}};

void ggmlMinMax(const float* x, int n, float& lo, float& hi)
{
    lo = FLT_MAX;
    hi = -FLT_MAX;
    for (int j = 0; j < n; ++j) {
        lo = std::min(lo, x[j]);
        hi = std::max(hi, x[j]);
    }
}

// Codes of one 32-element block with `bits` (4 or 5) bits: low nibbles of elements j and
// j + 16 share byte j of qs; the fifth bits go to qh, bit j for element j.
void ggmlPackNibbles(const uint8_t* q, int bits, uint8_t* qh, uint8_t* qs)
{
    uint32_t high = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        if (bits == 5) high |= uint32_t((q[j] >> 4) & 1) << j | uint32_t((q[j + 16] >> 4) & 1) << (j + 16);
    }
    if (bits == 5)
        for (int b = 0; b < 4; ++b) qh[b] = uint8_t(high >> (8 * b));
}

void ggmlUnpackNibbles(const uint8_t* qh, const uint8_t* qs, int bits, uint8_t* q)
{
    uint32_t high = 0;
    if (bits == 5)
        for (int b = 0; b < 4; ++b) high |= uint32_t(qh[b]) << (8 * b);
    for (int j = 0; j < 16; ++j) {
        q[j] = uint8_t(qs[j] & 0x0f);
        q[j + 16] = uint8_t(qs[j] >> 4);
        if (bits == 5) {
            q[j] |= uint8_t(((high >> j) & 1) << 4);
            q[j + 16] |= uint8_t(((high >> (j + 16)) & 1) << 4);
        }
    }
}

// The encoders below round each product before adding, as llama.cpp's reference quantizers do:
// a fused multiply-add (which GCC forms across statements when -march=native offers FMA) moves
// codes that sit on a rounding boundary. Scoped, so the rest of a unity batch keeps its flags.
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

// Symmetric 4/5-bit blocks (Q4_0, Q5_0): d = max / -2^(b-1), codes truncated after adding
// 2^(b-1) + 0.5, as the reference does (not round-to-nearest for negative products).
void ggmlEncodeSymmetric(const float* x, int bits, uint8_t* out)
{
    const float half = float(1 << (bits - 1));
    const int top = (1 << bits) - 1;
    const float d = ggmlSignedAbsMax(x, 32) / -half;
    const float id = d != 0.f ? 1.f / d : 0.f;
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = uint8_t(std::min(top, int(int8_t(x[j] * id + (half + 0.5f)))));
    packGgmlBlock(bits == 4 ? GgmlType::Q4_0 : GgmlType::Q5_0, d, 0.f, q, out);
}

// Affine 4/5-bit blocks (Q4_1, Q5_1): d = (max - min) / (2^b - 1), m = min.
void ggmlEncodeAffine(const float* x, int bits, uint8_t* out)
{
    const int top = (1 << bits) - 1;
    float lo, hi;
    ggmlMinMax(x, 32, lo, hi);
    const float d = (hi - lo) / float(top);
    const float id = d != 0.f ? 1.f / d : 0.f;
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = uint8_t(std::min(top, int(uint8_t((x[j] - lo) * id + 0.5f))));
    packGgmlBlock(bits == 4 ? GgmlType::Q4_1 : GgmlType::Q5_1, d, lo, q, out);
}

#if defined(__clang__)
#pragma float_control(pop)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

} // namespace

void packGgmlBlock(GgmlType t, float d, float m, const uint8_t* q, uint8_t* out)
{
    ggmlPutHalf(out, d);
    switch (t) {
    case GgmlType::Q8_0: std::memcpy(out + 2, q, 32); break;
    case GgmlType::Q4_0: ggmlPackNibbles(q, 4, nullptr, out + 2); break;
    case GgmlType::Q5_0: ggmlPackNibbles(q, 5, out + 2, out + 6); break;
    case GgmlType::Q4_1:
        ggmlPutHalf(out + 2, m);
        ggmlPackNibbles(q, 4, nullptr, out + 4);
        break;
    case GgmlType::Q5_1:
        ggmlPutHalf(out + 2, m);
        ggmlPackNibbles(q, 5, out + 4, out + 8);
        break;
    default: break;
    }
}

float ggmlSignedAbsMax(const float* x, int n)
{
    // Two passes, the first one branch-free (it vectorises): the largest magnitude, then the
    // first element that has it, which is the element the one-pass reference keeps.
    if (n <= 0) return 0.f;
    const float amax = Eigen::Map<const Eigen::ArrayXf>(x, n).abs().maxCoeff();
    if (!(amax > 0.f)) return 0.f;
    for (int j = 0; j < n; ++j)
        if (std::fabs(x[j]) == amax) return x[j];
    return 0.f;
}

const GgmlTypeInfo* ggmlTypeInfo(GgmlType t)
{
    for (const GgmlTypeInfo& i : kGgmlTypes)
        if (i.type == t) return &i;
    return nullptr;
}

Expected<GgmlType> parseGgmlType(std::string_view name)
{
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    std::string known;
    for (const GgmlTypeInfo& i : kGgmlTypes) {
        if (lower == i.name) return i.type;
        known += (known.empty() ? "" : ", ") + std::string(i.name);
    }
    return makeError("unknown GGUF tensor type '" + std::string(name) + "'; expected one of " + known);
}

int64_t ggmlRowBytes(GgmlType t, int64_t n)
{
    const GgmlTypeInfo* i = ggmlTypeInfo(t);
    return i ? n / i->blockSize * i->blockBytes : 0;
}

Expected<void> encodeGgmlRow(GgmlType t, std::span<const float> row, std::span<uint8_t> out,
                             std::span<const float> importance)
{
    const GgmlTypeInfo* info = ggmlTypeInfo(t);
    if (!info) return makeError("GGUF tensor type " + std::to_string(uint32_t(t)) + " is not supported");
    const int64_t n = int64_t(row.size());
    if (n % info->blockSize != 0)
        return makeError(std::string(info->name) + " needs rows that are a multiple of " +
                         std::to_string(info->blockSize) + " elements, got " + std::to_string(n));
    if (int64_t(out.size()) != ggmlRowBytes(t, n))
        return makeError("output of " + std::to_string(out.size()) + " bytes for a " + info->name + " row of " +
                         std::to_string(n) + " elements; expected " + std::to_string(ggmlRowBytes(t, n)));
    if (!importance.empty() && int64_t(importance.size()) != n)
        return makeError("importance of " + std::to_string(importance.size()) + " weights for a row of " +
                         std::to_string(n) + " elements");
    const float* x = row.data();
    uint8_t* o = out.data();
    const float* imp = importance.empty() ? nullptr : importance.data();
    if (imp && (t == GgmlType::Q4_0 || t == GgmlType::Q4_1 || t == GgmlType::Q5_0 || t == GgmlType::Q5_1)) {
        encodeWeightedLegacyRow(t, x, n, imp, o);
        return {};
    }
    switch (t) {
    case GgmlType::F32: std::memcpy(o, x, size_t(n) * 4); break;
    case GgmlType::F16:
        for (int64_t j = 0; j < n; ++j) ggmlPutHalf(o + 2 * j, x[j]);
        break;
    case GgmlType::BF16:
        for (int64_t j = 0; j < n; ++j) {
            uint32_t u;
            std::memcpy(&u, &x[j], 4);
            // Round to nearest even on the upper half; a NaN stays a (quiet) NaN.
            const uint16_t b = (u & 0x7fffffffu) > 0x7f800000u ? uint16_t((u >> 16) | 64)
                                                               : uint16_t((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
            o[2 * j] = uint8_t(b & 0xff);
            o[2 * j + 1] = uint8_t(b >> 8);
        }
        break;
    case GgmlType::Q8_0:
        for (int64_t b = 0; b < n / 32; ++b, x += 32, o += 34) {
            float amax = 0.f;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
            const float d = amax / 127.f;
            const float id = d != 0.f ? 1.f / d : 0.f;
            ggmlPutHalf(o, d);
            for (int j = 0; j < 32; ++j) o[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
        }
        break;
    case GgmlType::Q4_0:
        for (int64_t b = 0; b < n / 32; ++b) ggmlEncodeSymmetric(x + 32 * b, 4, o + 18 * b);
        break;
    case GgmlType::Q5_0:
        for (int64_t b = 0; b < n / 32; ++b) ggmlEncodeSymmetric(x + 32 * b, 5, o + 22 * b);
        break;
    case GgmlType::Q4_1:
        for (int64_t b = 0; b < n / 32; ++b) ggmlEncodeAffine(x + 32 * b, 4, o + 20 * b);
        break;
    case GgmlType::Q5_1:
        for (int64_t b = 0; b < n / 32; ++b) ggmlEncodeAffine(x + 32 * b, 5, o + 24 * b);
        break;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
        for (int64_t b = 0; b < n / kKQuantBlock; ++b)
            encodeKQuantBlock(t, x + kKQuantBlock * b, imp ? imp + kKQuantBlock * b : nullptr,
                              o + int64_t(info->blockBytes) * b);
        break;
    }
    return {};
}

Expected<void> decodeGgmlRow(GgmlType t, std::span<const uint8_t> in, std::span<float> out)
{
    const GgmlTypeInfo* info = ggmlTypeInfo(t);
    if (!info) return makeError("GGUF tensor type " + std::to_string(uint32_t(t)) + " is not supported");
    const int64_t n = int64_t(out.size());
    if (n % info->blockSize != 0 || int64_t(in.size()) != ggmlRowBytes(t, n))
        return makeError(std::to_string(in.size()) + " bytes do not hold a " + info->name + " row of " +
                         std::to_string(n) + " elements");
    const uint8_t* p = in.data();
    float* y = out.data();
    uint8_t q[32];
    switch (t) {
    case GgmlType::F32: std::memcpy(y, p, size_t(n) * 4); break;
    case GgmlType::F16:
        for (int64_t j = 0; j < n; ++j) y[j] = ggmlGetHalf(p + 2 * j);
        break;
    case GgmlType::BF16:
        for (int64_t j = 0; j < n; ++j) {
            const uint32_t u = uint32_t(p[2 * j] | (p[2 * j + 1] << 8)) << 16;
            std::memcpy(&y[j], &u, 4);
        }
        break;
    case GgmlType::Q8_0:
        for (int64_t b = 0; b < n / 32; ++b, p += 34, y += 32) {
            const float d = ggmlGetHalf(p);
            for (int j = 0; j < 32; ++j) y[j] = d * float(int8_t(p[2 + j]));
        }
        break;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0: {
        const int bits = t == GgmlType::Q4_0 ? 4 : 5;
        for (int64_t b = 0; b < n / 32; ++b, p += info->blockBytes, y += 32) {
            const float d = ggmlGetHalf(p);
            ggmlUnpackNibbles(p + 2, bits == 4 ? p + 2 : p + 6, bits, q);
            for (int j = 0; j < 32; ++j) y[j] = d * float(int(q[j]) - (1 << (bits - 1)));
        }
        break;
    }
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: {
        const int bits = t == GgmlType::Q4_1 ? 4 : 5;
        for (int64_t b = 0; b < n / 32; ++b, p += info->blockBytes, y += 32) {
            const float d = ggmlGetHalf(p), m = ggmlGetHalf(p + 2);
            ggmlUnpackNibbles(p + 4, bits == 4 ? p + 4 : p + 8, bits, q);
            for (int j = 0; j < 32; ++j) y[j] = d * float(q[j]) + m;
        }
        break;
    }
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
        for (int64_t b = 0; b < n / kKQuantBlock; ++b)
            decodeKQuantBlock(t, p + int64_t(info->blockBytes) * b, y + kKQuantBlock * b);
        break;
    }
    return {};
}

} // namespace ql
