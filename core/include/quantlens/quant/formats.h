#pragma once

// The weight-format table: every code layout a quantizer may produce, as plain constexpr data
// (ggml style), plus the element codecs of the float and NF4 formats. How a group's scale and
// zero are chosen lives in groupparams.h; the tensor container in quantizedtensor.h.
//
// Value of code q in a group with parameters (scale, zero), by kind:
//   IntAsym     scale·(q - zero), q in [0, 2^b - 1]; zero = round(-min/scale), a float holding an integer
//   IntSym      scale·(q - zero), zero = 2^(b-1) fixed
//   Float       scale·fp(q), fp = OCP MX element value of q's bits, sign | exponent | mantissa
//               from the most significant bit down; zero = 0
//   NormalFloat scale·nf4[q], scale = group absmax; zero = 0
//   Binary      q ? zero + scale : zero - scale, zero = μ = group mean, scale = α = mean|w - μ|
//   Ternary     {-scale, 0, +scale}[q]; zero holds the encode threshold Δ (TWN), decode ignores it

#include "quantlens/base/expected.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ql {

/// How a format's codes map to values; decides what a group's (scale, zero) mean.
enum class FormatKind : uint8_t { IntAsym, IntSym, Float, NormalFloat, Binary, Ternary };

/// Which top-exponent codes of a float format are not finite numbers.
enum class FloatSpecials : uint8_t {
    None,    ///< every code is a number (OCP FP6 / FP4)
    NanOnly, ///< only S.1111.111 is NaN, no infinity (OCP E4M3)
    InfNan,  ///< IEEE-like: the all-ones exponent holds ±inf and NaN (OCP E5M2)
};

/// One weight format: a row of the format table.
struct WeightFormat {
    const char* id; ///< stable name used in plans, recipes and files
    FormatKind kind;
    uint8_t bits;           ///< bits per stored code
    uint8_t expBits;        ///< Float only: exponent bits
    uint8_t manBits;        ///< Float only: mantissa bits
    int8_t expBias;         ///< Float only: exponent bias
    FloatSpecials specials; ///< Float only
};
static_assert(sizeof(WeightFormat) == sizeof(const char*) + 8 && std::is_trivially_copyable_v<WeightFormat>);

/// The format table. Integer formats follow GPTQ's quantizer; float formats have OCP MX
/// element semantics with a float scale per group instead of MX's shared power of two.
inline constexpr std::array<WeightFormat, 22> kWeightFormats{{
    {"int2_sym", FormatKind::IntSym, 2, 0, 0, 0, FloatSpecials::None},
    {"int3_sym", FormatKind::IntSym, 3, 0, 0, 0, FloatSpecials::None},
    {"int4_sym", FormatKind::IntSym, 4, 0, 0, 0, FloatSpecials::None},
    {"int5_sym", FormatKind::IntSym, 5, 0, 0, 0, FloatSpecials::None},
    {"int6_sym", FormatKind::IntSym, 6, 0, 0, 0, FloatSpecials::None},
    {"int7_sym", FormatKind::IntSym, 7, 0, 0, 0, FloatSpecials::None},
    {"int8_sym", FormatKind::IntSym, 8, 0, 0, 0, FloatSpecials::None},
    {"int2_asym", FormatKind::IntAsym, 2, 0, 0, 0, FloatSpecials::None},
    {"int3_asym", FormatKind::IntAsym, 3, 0, 0, 0, FloatSpecials::None},
    {"int4_asym", FormatKind::IntAsym, 4, 0, 0, 0, FloatSpecials::None},
    {"int5_asym", FormatKind::IntAsym, 5, 0, 0, 0, FloatSpecials::None},
    {"int6_asym", FormatKind::IntAsym, 6, 0, 0, 0, FloatSpecials::None},
    {"int7_asym", FormatKind::IntAsym, 7, 0, 0, 0, FloatSpecials::None},
    {"int8_asym", FormatKind::IntAsym, 8, 0, 0, 0, FloatSpecials::None},
    {"fp8_e4m3", FormatKind::Float, 8, 4, 3, 7, FloatSpecials::NanOnly},
    {"fp8_e5m2", FormatKind::Float, 8, 5, 2, 15, FloatSpecials::InfNan},
    {"fp6_e3m2", FormatKind::Float, 6, 3, 2, 3, FloatSpecials::None},
    {"fp6_e2m3", FormatKind::Float, 6, 2, 3, 1, FloatSpecials::None},
    {"fp4_e2m1", FormatKind::Float, 4, 2, 1, 1, FloatSpecials::None},
    {"nf4", FormatKind::NormalFloat, 4, 0, 0, 0, FloatSpecials::None},
    {"binary", FormatKind::Binary, 1, 0, 0, 0, FloatSpecials::None},
    {"ternary", FormatKind::Ternary, 2, 0, 0, 0, FloatSpecials::None},
}};

/// The NF4 code book of QLoRA (Dettmers et al. 2023), bitsandbytes' published constants.
// clang-format off
inline constexpr std::array<float, 16> kNf4Codebook{
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
// clang-format on

/// TWN's ternary threshold factor: Δ = 0.7·mean|w| (Li & Liu 2016, the Gaussian-optimal
/// approximation of argmax Δ of (Σ_{|w|>Δ}|w|)² / |{|w|>Δ}|).
inline constexpr double kTernaryThreshold = 0.7;

/// Number of distinct codes a format stores (2^bits).
constexpr uint32_t codeCount(const WeightFormat& f)
{
    return 1u << f.bits;
}

/// Largest code an encoder of this format emits: 2^bits - 1, or 2 for ternary.
constexpr uint32_t maxCode(const WeightFormat& f)
{
    return f.kind == FormatKind::Ternary ? 2u : codeCount(f) - 1u;
}

namespace detail {

constexpr float pow2(int e)
{
    float v = 1.f;
    for (; e > 0; --e) v *= 2.f;
    for (; e < 0; ++e) v *= 0.5f;
    return v;
}

constexpr bool sameId(const char* a, std::string_view b)
{
    return std::string_view(a) == b;
}

// Compile-time lookup for the static_asserts below; the first row when the id is missing,
// which then fails the assertion that names it.
constexpr const WeightFormat& tableEntry(std::string_view id)
{
    for (const WeightFormat& f : kWeightFormats)
        if (sameId(f.id, id)) return f;
    return kWeightFormats[0];
}

} // namespace detail

/// Value of a Float-kind element code with unit scale: OCP MX semantics, NaN for NaN codes.
constexpr float floatElementValue(const WeightFormat& f, uint32_t code)
{
    const uint32_t manMask = (1u << f.manBits) - 1u, expMask = (1u << f.expBits) - 1u;
    const uint32_t man = code & manMask, exp = (code >> f.manBits) & expMask;
    const bool negative = (code >> (f.expBits + f.manBits)) & 1u;
    if (f.specials == FloatSpecials::InfNan && exp == expMask) {
        if (man != 0) return std::numeric_limits<float>::quiet_NaN();
        return negative ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    }
    if (f.specials == FloatSpecials::NanOnly && exp == expMask && man == manMask)
        return std::numeric_limits<float>::quiet_NaN();
    // Subnormals (exp 0) share the smallest normal exponent 1 - bias, without the implicit 1.
    const float mag = exp == 0 ? float(man) * detail::pow2(1 - f.expBias - f.manBits)
                               : float((1u << f.manBits) + man) * detail::pow2(int(exp) - f.expBias - f.manBits);
    return negative ? -mag : mag;
}

/// Largest finite magnitude of a Float-kind format.
constexpr float floatMaxFinite(const WeightFormat& f)
{
    float best = 0.f;
    for (uint32_t c = 0; c < codeCount(f) / 2; ++c) {
        const float v = floatElementValue(f, c);
        if (v == v && v != std::numeric_limits<float>::infinity() && v > best) best = v;
    }
    return best;
}

/// True when `code` is one an encoder of format f may emit (in range, finite for floats).
constexpr bool isValidCode(const WeightFormat& f, uint32_t code)
{
    if (code > maxCode(f)) return false;
    if (f.kind != FormatKind::Float) return true;
    const float v = floatElementValue(f, code);
    return v == v && v != std::numeric_limits<float>::infinity() && v != -std::numeric_limits<float>::infinity();
}

// Pins of the table against the OCP MX v1.0 element definitions and the code book.
static_assert(floatMaxFinite(detail::tableEntry("fp8_e4m3")) == 448.f);
static_assert(floatMaxFinite(detail::tableEntry("fp8_e5m2")) == 57344.f);
static_assert(floatMaxFinite(detail::tableEntry("fp6_e3m2")) == 28.f);
static_assert(floatMaxFinite(detail::tableEntry("fp6_e2m3")) == 7.5f);
static_assert(floatMaxFinite(detail::tableEntry("fp4_e2m1")) == 6.f);
static_assert(floatElementValue(detail::tableEntry("fp4_e2m1"), 1) == 0.5f); // the one subnormal
static_assert(floatElementValue(detail::tableEntry("fp8_e4m3"), 1) == detail::pow2(-9));
static_assert(floatElementValue(detail::tableEntry("fp8_e5m2"), 1) == detail::pow2(-16));
static_assert(!isValidCode(detail::tableEntry("fp8_e4m3"), 0x7f) && isValidCode(detail::tableEntry("fp8_e4m3"), 0x7e));
static_assert(!isValidCode(detail::tableEntry("fp8_e5m2"), 0x7c) && isValidCode(detail::tableEntry("fp8_e5m2"), 0x7b));
static_assert(detail::tableEntry("nf4").kind == FormatKind::NormalFloat && detail::tableEntry("ternary").bits == 2);
static_assert(kNf4Codebook[0] == -1.f && kNf4Codebook[7] == 0.f && kNf4Codebook[15] == 1.f);
static_assert([] {
    for (const WeightFormat& f : kWeightFormats) {
        if (f.bits < 1 || f.bits > 8) return false; // codes fit a byte; packing relies on it
        if (f.kind == FormatKind::Float && f.bits != 1 + f.expBits + f.manBits) return false;
    }
    for (size_t i = 0; i < kWeightFormats.size(); ++i)
        for (size_t j = i + 1; j < kWeightFormats.size(); ++j)
            if (detail::sameId(kWeightFormats[i].id, kWeightFormats[j].id)) return false;
    for (size_t i = 1; i < kNf4Codebook.size(); ++i)
        if (!(kNf4Codebook[i - 1] < kNf4Codebook[i])) return false;
    return true;
}());

/// The format with this id, or an error listing the known ids.
Expected<const WeightFormat*> findFormat(std::string_view id);

/// All format ids, in table order.
std::vector<std::string> formatIds();

/// Id of the integer format with `bits` (2..8) and the given symmetry, e.g. "int4_asym".
Expected<std::string> intFormatId(int bits, bool symmetric);

/// Nearest Float-kind code to x (unit scale): round to nearest, ties to even mantissa,
/// saturating to ±max finite; ±0 and values rounding to zero give code 0; NaN gives code 0.
uint32_t encodeFloatElement(const WeightFormat& f, float x);

/// Nearest NF4 code to x (unit scale), ties to the lower code as bitsandbytes' decision tree;
/// NaN gives code 7 (zero).
uint32_t encodeNf4(float x);

/// Unit-scale value of every code of a Float or NormalFloat format (NaN for NaN codes, 0 past
/// the format's codes and for other kinds), for table-driven decoders.
std::array<float, 256> elementTable(const WeightFormat& f);

} // namespace ql
