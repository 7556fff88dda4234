#pragma once

// Independent references for the weight-format tests: each format recomputed from its
// definition (GPTQ quant.py, OCP MX v1.0 element encodings, QLoRA NF4, PB-LLM, TWN) in plain
// loops, plus the test weights and a bit-by-bit packer. Shared by tst_formats and
// tst_quantizedtensor; nothing here calls the library.
#include <Eigen/Core>

#include <QString>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qlref {

// The table as the issue names it, independent of the library's own list.
inline const std::vector<std::string> kIds = {
    "int2_sym",  "int3_sym",  "int4_sym",  "int5_sym",  "int6_sym",  "int7_sym",  "int8_sym", "int2_asym",
    "int3_asym", "int4_asym", "int5_asym", "int6_asym", "int7_asym", "int8_asym", "fp8_e4m3", "fp8_e5m2",
    "fp6_e3m2",  "fp6_e2m3",  "fp4_e2m1",  "nf4",       "binary",    "ternary"};

inline bool isInt(const std::string& id)
{
    return id.rfind("int", 0) == 0;
}
inline bool isFp(const std::string& id)
{
    return id.rfind("fp", 0) == 0;
}
inline int idBits(const std::string& id)
{
    if (isInt(id) || isFp(id)) return (isInt(id) ? id[3] : id[2]) - '0';
    return id == "nf4" ? 4 : id == "binary" ? 1 : 2;
}

// OCP MX element layout: E exponent bits, M mantissa bits, bias 2^(E-1) - 1; E4M3 has no inf and
// one NaN pattern per sign, E5M2 is IEEE-like, FP6 / FP4 have no special values.
struct FpRef {
    int e = 0, m = 0, bias = 0;
    bool ieee = false, nanOnly = false;
    double max = 0;
};
inline FpRef fpRef(const std::string& id)
{
    FpRef r;
    r.e = id[id.size() - 3] - '0';
    r.m = id[id.size() - 1] - '0';
    r.bias = (1 << (r.e - 1)) - 1;
    r.ieee = id == "fp8_e5m2";
    r.nanOnly = id == "fp8_e4m3";
    r.max = id == "fp8_e4m3" ? 448 : id == "fp8_e5m2" ? 57344 : id == "fp6_e3m2" ? 28 : id == "fp6_e2m3" ? 7.5 : 6;
    return r;
}
inline double fpValue(const FpRef& f, uint32_t code)
{
    const uint32_t man = code & ((1u << f.m) - 1), exp = (code >> f.m) & ((1u << f.e) - 1), top = (1u << f.e) - 1;
    const double sign = (code >> (f.e + f.m)) & 1 ? -1 : 1;
    if (f.ieee && exp == top) return man ? std::nan("") : sign * INFINITY;
    if (f.nanOnly && exp == top && man == (1u << f.m) - 1) return std::nan("");
    if (exp == 0) return sign * std::ldexp(double(man), 1 - f.bias - f.m);
    return sign * std::ldexp(1.0 + double(man) / double(1u << f.m), int(exp) - f.bias);
}
// Nearest finite value after saturating to ±max; ties to the even mantissa, zero as code 0.
inline uint32_t fpEncode(const FpRef& f, double x)
{
    x = std::clamp(x, -f.max, f.max);
    uint32_t best = 0;
    double bestD = INFINITY;
    for (uint32_t c = 0; c < (1u << (1 + f.e + f.m)); ++c) {
        const double v = fpValue(f, c);
        if (!std::isfinite(v)) continue;
        const double d = std::abs(x - v);
        if (d < bestD || (d == bestD && (best & 1) && !(c & 1) && fpValue(f, best) != 0)) {
            best = c;
            bestD = d;
        }
    }
    return fpValue(f, best) == 0 ? 0 : best;
}

// QLoRA's published NF4 values (bitsandbytes kernels.cu).
inline constexpr double kNf4[16] = {-1.0,
                                    -0.6961928009986877,
                                    -0.5250730514526367,
                                    -0.39491748809814453,
                                    -0.28444138169288635,
                                    -0.18477343022823334,
                                    -0.09105003625154495,
                                    0.0,
                                    0.07958029955625534,
                                    0.16093020141124725,
                                    0.24611230194568634,
                                    0.33791524171829224,
                                    0.44070982933044434,
                                    0.5626170039176941,
                                    0.7229568362236023,
                                    1.0};
inline uint32_t nf4Encode(double x)
{
    uint32_t best = 0;
    for (uint32_t c = 1; c < 16; ++c)
        if (std::abs(x - double(float(kNf4[c]))) < std::abs(x - double(float(kNf4[best])))) best = c;
    return best;
}

// Parameters by the definitions (see groupparams.h); float where the library stores floats.
struct RefParams {
    double scale = 0, zero = 0;
};
inline RefParams refParams(const std::string& id, const std::vector<float>& v)
{
    double sum = 0, sumAbs = 0;
    float absmax = 0, xmin = 0, xmax = 0;
    for (float x : v) {
        sum += x;
        sumAbs += std::abs(double(x));
        absmax = std::max(absmax, std::abs(x));
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
    }
    if (isInt(id)) { // GPTQ quant.py find_params, with a symmetric range for every group
        const int bits = idBits(id);
        const bool sym = id.ends_with("_sym");
        if (sym) {
            xmax = std::max(-xmin, xmax);
            xmin = -xmax;
        }
        if (xmin == 0 && xmax == 0) {
            xmin = -1;
            xmax = 1;
        }
        const float scale = (xmax - xmin) / float((1 << bits) - 1);
        return {scale, sym ? double(1 << (bits - 1)) : double(std::nearbyint(-xmin / scale))};
    }
    if (absmax == 0) absmax = 1;
    if (isFp(id)) return {absmax / float(fpRef(id).max), 0};
    if (id == "nf4") return {absmax, 0};
    const double n = double(v.size());
    if (id == "binary") {
        const double mu = sum / n;
        double dev = 0;
        for (float x : v) dev += std::abs(double(x) - mu);
        return {dev / n, mu};
    }
    const double delta = 0.7 * sumAbs / n; // ternary
    double kept = 0, count = 0;
    for (float x : v)
        if (std::abs(double(x)) > delta) {
            kept += std::abs(double(x));
            ++count;
        }
    return {count ? kept / count : 0, delta};
}
inline uint32_t refCode(const std::string& id, const RefParams& p, float w)
{
    if (isInt(id)) {
        const float maxq = float((1 << idBits(id)) - 1);
        return uint32_t(std::clamp(std::nearbyint(w / float(p.scale)) + float(p.zero), 0.f, maxq));
    }
    if (isFp(id)) return fpEncode(fpRef(id), double(w / float(p.scale)));
    if (id == "nf4") return nf4Encode(double(w / float(p.scale)));
    if (id == "binary") return double(w) >= p.zero ? 1 : 0;
    return std::abs(double(w)) <= p.zero ? 1 : w > 0 ? 2 : 0;
}
inline double refValue(const std::string& id, const RefParams& p, uint32_t q)
{
    if (isInt(id)) return p.scale * (double(q) - p.zero);
    if (isFp(id)) return p.scale * fpValue(fpRef(id), q);
    if (id == "nf4") return p.scale * double(float(kNf4[q]));
    if (id == "binary") return q ? p.zero + p.scale : p.zero - p.scale;
    return q == 2 ? p.scale : q == 0 ? -p.scale : 0.0;
}
inline bool refValidCode(const std::string& id, uint32_t q)
{
    if (q >= (1u << idBits(id))) return false;
    if (id == "ternary") return q <= 2;
    return !isFp(id) || std::isfinite(fpValue(fpRef(id), q));
}

// LLM-like weights plus the awkward rows: outliers, all zero, all positive, constant.
inline Eigen::MatrixXf makeWeight(int rows, int cols, unsigned seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 0.02f);
    Eigen::MatrixXf w(rows, cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) w(r, c) = normal(rng);
    for (int c = 3; c < cols; c += 17) w(0, c) *= 20.f;
    if (rows >= 3) {
        w.row(1).setZero();
        w.row(2) = w.row(2).cwiseAbs();
    }
    if (rows >= 4) w.row(3).setConstant(0.013f);
    return w;
}

// Row-major bit stream per row, padded to 32-bit words, built one bit at a time.
inline std::vector<uint32_t> packNaive(const std::vector<std::vector<uint32_t>>& codes, int bits)
{
    const size_t cols = codes[0].size(), wpr = (cols * size_t(bits) + 31) / 32;
    std::vector<uint32_t> words(codes.size() * wpr, 0);
    for (size_t r = 0; r < codes.size(); ++r)
        for (size_t c = 0; c < cols; ++c)
            for (int i = 0; i < bits; ++i)
                if ((codes[r][c] >> i) & 1u) {
                    const size_t k = c * size_t(bits) + size_t(i);
                    words[r * wpr + k / 32] |= 1u << (k % 32);
                }
    return words;
}

inline QString at(Eigen::Index r, Eigen::Index c)
{
    return QStringLiteral(" at (%1, %2)").arg(r).arg(c);
}

} // namespace qlref
