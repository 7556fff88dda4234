#include "export/ggmlkquants.h"

#include "quantlens/model/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

// Bit-exact agreement with llama.cpp needs every product rounded before it is added: no fused
// multiply-add (GCC contracts across statements by default for C++, and -march=native offers FMA).
// Scoped to this file, so the other sources of a unity batch keep their flags.
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace ql {

namespace {

// Sub-block groups whose largest magnitude is below this count as all zero (llama.cpp's
// GROUP_MAX_EPS).
constexpr float kKqZeroEps = 1e-15f;

// Round to nearest, ties to even, the way llama.cpp's nearest_int does it: adding 1.5·2^23 leaves
// the rounded integer in the low mantissa bits. Exact for |v| < 2^22; beyond that it wraps the
// same way the reference does, which keeps even degenerate inputs byte-identical.
inline int kqRound(float v)
{
    const uint32_t bits = std::bit_cast<uint32_t>(v + 12582912.f);
    return int(bits & 0x7fffffu) - 0x400000;
}

inline int kqClamp(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

// The weighted error sums of a symmetric fit with codes l ∈ [−nmax, nmax−1] at inverse scale iscale.
struct KqSums {
    float lx = 0.f; // Σ w·x·l
    float l2 = 0.f; // Σ w·l²
};

KqSums kqSymmetricSums(int n, int nmax, const float* x, const float* w, float iscale, int8_t* codes)
{
    KqSums s;
    for (int i = 0; i < n; ++i) {
        const int l = kqClamp(kqRound(iscale * x[i]), -nmax, nmax - 1);
        if (codes) codes[i] = int8_t(l + nmax);
        const float wi = w ? w[i] : x[i] * x[i];
        s.lx += wi * x[i] * float(l);
        s.l2 += wi * float(l) * float(l);
    }
    return s;
}

// Symmetric codes L ∈ [0, 2·nmax) (value scale·(L − nmax)) for n elements, minimising the error
// weighted by w (null: x²): the grid through the element of largest magnitude, then 18 nearby
// grids (nmax ± 0.1·k), each with its least-squares scale; the best one wins (llama.cpp's
// make_qx_quants, error weighting 1).
float kqFitSymmetric(int n, int nmax, const float* x, const float* w, int8_t* codes)
{
    const float max = ggmlSignedAbsMax(x, n), amax = std::fabs(max);
    if (amax < kKqZeroEps) {
        std::fill(codes, codes + n, int8_t(0));
        return 0.f;
    }
    KqSums s = kqSymmetricSums(n, nmax, x, w, float(-nmax) / max, codes);
    float scale = s.l2 != 0.f ? s.lx / s.l2 : 0.f;
    float best = scale * s.lx;
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        const float iscale = -(float(nmax) + 0.1f * float(k)) / max;
        const KqSums t = kqSymmetricSums(n, nmax, x, w, iscale, nullptr);
        if (t.l2 > 0.f && t.lx * t.lx > best * t.l2) {
            kqSymmetricSums(n, nmax, x, w, iscale, codes);
            scale = t.lx / t.l2;
            best = scale * t.lx;
        }
    }
    return scale;
}

// Q3_K's reference sub-block fit: symmetric codes weighted by x², then up to five passes that move
// single codes to where the least-squares optimum puts them while that lowers the error
// (llama.cpp's make_q3_quants with its RMSE refinement). Codes L ∈ [0, 2·nmax).
float kqFitSymmetricRefined(int n, int nmax, const float* x, int8_t* codes)
{
    const float max = ggmlSignedAbsMax(x, n), amax = std::fabs(max);
    if (amax < kKqZeroEps) {
        std::fill(codes, codes + n, int8_t(0));
        return 0.f;
    }
    const float iscale = float(-nmax) / max;
    float sumlx = 0.f, suml2 = 0.f;
    for (int i = 0; i < n; ++i) {
        const int l = kqClamp(kqRound(iscale * x[i]), -nmax, nmax - 1);
        codes[i] = int8_t(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * float(l);
        suml2 += w * float(l) * float(l);
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const float cur = float(codes[i]);
            float lx = sumlx - w * x[i] * cur;
            if (!(lx > 0.f)) continue;
            float l2 = suml2 - w * cur * cur;
            const int l = kqClamp(kqRound(x[i] * l2 / lx), -nmax, nmax - 1);
            if (l == codes[i]) continue;
            lx += w * x[i] * float(l);
            l2 += w * float(l) * float(l);
            if (l2 > 0.f && lx * lx * suml2 > sumlx * sumlx * l2) {
                codes[i] = int8_t(l);
                sumlx = lx;
                suml2 = l2;
                ++changed;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; ++i) codes[i] = int8_t(codes[i] + nmax);
    return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

// Affine codes L ∈ [0, nmax] (value scale·L − theMin, theMin ≥ 0) for n elements, minimising the
// w-weighted absolute (useMad) or squared error: the min–max grid, then nstep + 1 grids of
// (nmax + rmin + rdelta·k) steps over the range, each with its weighted least-squares scale and
// offset (llama.cpp's make_qkx2_quants / make_qkx3_quants, which agree when weights are given).
float kqFitAffine(int n, int nmax, const float* x, const float* w, uint8_t* codes, float& theMin, float rmin,
                  float rdelta, int nstep, bool useMad)
{
    float min = x[0], max = x[0];
    float sumW = w[0];
    float sumX = sumW * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sumW += w[i];
        sumX += w[i] * x[i];
    }
    if (min > 0.f) min = 0.f;
    if (max <= min) {
        std::fill(codes, codes + n, uint8_t(0));
        theMin = -min;
        return 0.f;
    }
    auto error = [&](float scale, float offset, const uint8_t* l) {
        float e = 0.f;
        for (int i = 0; i < n; ++i) {
            float diff = scale * float(l[i]) + offset - x[i];
            diff = useMad ? std::fabs(diff) : diff * diff;
            e += w[i] * diff;
        }
        return e;
    };
    float iscale = float(nmax) / (max - min);
    float scale = 1.f / iscale;
    for (int i = 0; i < n; ++i) codes[i] = uint8_t(kqClamp(kqRound(iscale * (x[i] - min)), 0, nmax));
    float bestError = error(scale, min, codes);
    uint8_t trial[32];
    for (int k = 0; k <= nstep; ++k) {
        iscale = (rmin + rdelta * float(k) + float(nmax)) / (max - min);
        float sumL = 0.f, sumL2 = 0.f, sumXL = 0.f;
        for (int i = 0; i < n; ++i) {
            const int l = kqClamp(kqRound(iscale * (x[i] - min)), 0, nmax);
            trial[i] = uint8_t(l);
            sumL += w[i] * float(l);
            sumL2 += w[i] * float(l) * float(l);
            sumXL += w[i] * float(l) * x[i];
        }
        const float det = sumW * sumL2 - sumL * sumL;
        if (!(det > 0.f)) continue;
        float thisScale = (sumW * sumXL - sumX * sumL) / det;
        float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
        if (thisMin > 0.f) {
            thisMin = 0.f;
            thisScale = sumXL / sumL2;
        }
        const float e = error(thisScale, thisMin, trial);
        if (e < bestError) {
            std::copy(trial, trial + n, codes);
            bestError = e;
            scale = thisScale;
            min = thisMin;
        }
    }
    theMin = -min;
    return scale;
}

// Codes L ∈ [0, nmax] (value scale·L, no offset) for the n non-negative sub-block scales or mins
// of a super-block, weighted by w: the best of nine grids near max/nmax, then up to five passes of
// single-code moves (llama.cpp's make_qp_quants). The intermediate codes keep the reference's
// integer types, wrap-arounds included.
float kqFitPositive(int n, int nmax, const float* x, const float* w, uint8_t* codes)
{
    float max = 0.f;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max < kKqZeroEps) {
        std::fill(codes, codes + n, uint8_t(0));
        return 0.f;
    }
    float iscale = float(nmax) / max;
    for (int i = 0; i < n; ++i) codes[i] = uint8_t(kqRound(iscale * x[i]));
    const float scale0 = 1.f / iscale;
    float bestMse = 0.f;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale0 * float(codes[i]);
        bestMse += w[i] * diff * diff;
    }
    for (int k = -4; k <= 4; ++k) {
        if (k == 0) continue;
        const float iscaleK = (0.1f * float(k) + float(nmax)) / max;
        const float scaleK = 1.f / iscaleK;
        float mse = 0.f;
        for (int i = 0; i < n; ++i) {
            const int l = std::min(nmax, kqRound(iscaleK * x[i]));
            const float diff = x[i] - scaleK * float(l);
            mse += w[i] * diff * diff;
        }
        if (mse < bestMse) {
            bestMse = mse;
            iscale = iscaleK;
        }
    }
    float sumlx = 0.f, suml2 = 0.f;
    for (int i = 0; i < n; ++i) {
        const int l = std::min(nmax, kqRound(iscale * x[i]));
        codes[i] = uint8_t(l);
        sumlx += w[i] * x[i] * float(l);
        suml2 += w[i] * float(l) * float(l);
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float cur = float(codes[i]);
            float lx = sumlx - w[i] * x[i] * cur;
            float l2 = suml2 - w[i] * cur * cur;
            if (!(lx > 0.f && l2 > 0.f)) continue;
            const int l = std::min(nmax, kqRound(x[i] * l2 / lx));
            if (l == int(codes[i])) continue;
            lx += w[i] * x[i] * float(l);
            l2 += w[i] * float(l) * float(l);
            if (lx * lx * suml2 > sumlx * sumlx * l2) {
                codes[i] = uint8_t(l);
                sumlx = lx;
                suml2 = l2;
                ++changed;
            }
        }
        if (!changed) break;
    }
    return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

// Σ x² / 256 · factor over a super-block: the variance term llama.cpp mixes into imatrix weights.
float kqSigma2(const float* x, float factor)
{
    float sum = 0.f;
    for (int j = 0; j < kKQuantBlock; ++j) sum += x[j] * x[j];
    return factor * sum / float(kKQuantBlock);
}

// Four 2-bit codes per byte: byte l of each 32-byte half holds elements l, l+32, l+64, l+96 of
// that half's 128 (lowest bits first). Q2_K's and Q3_K's qs.
void kqPack2Bit(const uint8_t* codes, uint8_t* qs)
{
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t* c = codes + 128 * h + l;
            qs[32 * h + l] = uint8_t(c[0] | (c[32] << 2) | (c[64] << 4) | (c[96] << 6));
        }
}

// The 6-bit scale and min of sub-block j (of 8) in Q4_K/Q5_K's 12 scale bytes: sub-blocks 0–3 in
// the low 6 bits of bytes j (scale) and j+4 (min); sub-blocks 4–7 in the nibbles of byte j+4
// with their top two bits in the high bits of bytes j−4 (scale) and j (min).
void kqPackScaleMin6(const uint8_t* ls, const uint8_t* lm, uint8_t* scales)
{
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = uint8_t((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
            scales[j - 4] |= uint8_t((ls[j] >> 4) << 6);
            scales[j] |= uint8_t((lm[j] >> 4) << 6);
        }
    }
}

void kqUnpackScaleMin6(const uint8_t* scales, int j, int& sc, int& m)
{
    if (j < 4) {
        sc = scales[j] & 63;
        m = scales[j + 4] & 63;
    } else {
        sc = (scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4);
        m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Q3_K's 16 signed 6-bit sub-block scales (stored + 32) in 12 bytes: low nibbles of scales 0–7 and
// high nibbles of 8–15 in bytes 0–7, the top two bits of scale j in byte 8 + j%4 at bit 2·(j/4).
void kqPackScale3(const int* stored, uint8_t* scales)
{
    std::memset(scales, 0, 12);
    for (int j = 0; j < 16; ++j) {
        const int l = stored[j];
        if (j < 8)
            scales[j] = uint8_t(l & 0xf);
        else
            scales[j - 8] |= uint8_t((l & 0xf) << 4);
        scales[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
    }
}

int kqUnpackScale3(const uint8_t* scales, int j)
{
    const int low = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
    return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// Codes of an affine super-block (Q2_K, Q4_K, Q5_K) recomputed from the stored fp16 scales:
// round((x + m)/d) into [0, nmax] for each sub-block of `sub` elements; a sub-block whose
// effective scale is zero keeps the codes of its fit.
void kqRequantizeAffine(const float* x, int sub, int nmax, const float* d, const float* m, uint8_t* codes)
{
    for (int j = 0; j < kKQuantBlock / sub; ++j) {
        if (d[j] == 0.f) continue;
        for (int i = 0; i < sub; ++i)
            codes[sub * j + i] = uint8_t(kqClamp(kqRound((x[sub * j + i] + m[j]) / d[j]), 0, nmax));
    }
}

// ---- Q2_K: {u8 scales[16] (low nibble scale, high nibble min); u8 qs[64]; f16 d; f16 dmin} ----

void kqEncodeQ2K(const float* x, const float* imp, uint8_t* out)
{
    uint8_t* scales = out;
    uint8_t* qs = out + 16;
    uint8_t codes[kKQuantBlock];
    float sc[16], mn[16], w[16];
    if (!imp) {
        float maxScale = 0.f, maxMin = 0.f;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
            sc[j] = kqFitAffine(16, 3, x + 16 * j, w, codes + 16 * j, mn[j], -0.5f, 0.1f, 15, true);
            if (sc[j] > maxScale) maxScale = sc[j];
            if (mn[j] > maxMin) maxMin = mn[j];
        }
        if (maxScale > 0.f) {
            const float iscale = 15.f / maxScale;
            for (int j = 0; j < 16; ++j) scales[j] = uint8_t(kqRound(iscale * sc[j]));
            ggmlPutHalf(out + 80, maxScale / 15.f);
        } else {
            std::memset(scales, 0, 16);
            ggmlPutHalf(out + 80, 0.f);
        }
        if (maxMin > 0.f) {
            const float iscale = 15.f / maxMin;
            for (int j = 0; j < 16; ++j) scales[j] = uint8_t(scales[j] | (kqRound(iscale * mn[j]) << 4));
            ggmlPutHalf(out + 82, maxMin / 15.f);
        } else {
            ggmlPutHalf(out + 82, 0.f);
        }
    } else {
        const float sigma2 = kqSigma2(x, 1.f);
        float sw[16];
        for (int j = 0; j < 16; ++j) {
            sw[j] = 0.f;
            for (int l = 0; l < 16; ++l) {
                const float v = x[16 * j + l];
                w[l] = imp[16 * j + l] * std::sqrt(sigma2 + v * v);
            }
            for (int l = 0; l < 16; ++l) sw[j] += w[l];
            sc[j] = kqFitAffine(16, 3, x + 16 * j, w, codes + 16 * j, mn[j], -0.9f, 0.05f, 36, false);
        }
        uint8_t ls[16], lm[16];
        const float dScale = kqFitPositive(16, 15, sc, sw, ls);
        const float dMin = kqFitPositive(16, 15, mn, sw, lm);
        ggmlPutHalf(out + 80, dScale);
        ggmlPutHalf(out + 82, dMin);
        for (int j = 0; j < 16; ++j) scales[j] = uint8_t(ls[j] | (lm[j] << 4));
    }
    const float d = ggmlGetHalf(out + 80), dmin = ggmlGetHalf(out + 82);
    float dj[16], mj[16];
    for (int j = 0; j < 16; ++j) {
        dj[j] = d * float(scales[j] & 0xf);
        mj[j] = dmin * float(scales[j] >> 4);
    }
    kqRequantizeAffine(x, 16, 3, dj, mj, codes);
    kqPack2Bit(codes, qs);
}

void kqDecodeQ2K(const uint8_t* in, float* y)
{
    const uint8_t* scales = in;
    const uint8_t* qs = in + 16;
    const float d = ggmlGetHalf(in + 80), dmin = ggmlGetHalf(in + 82);
    for (int i = 0; i < kKQuantBlock; ++i) {
        const int half = i / 128, group = (i % 128) / 32, l = i % 32;
        const uint8_t sc = scales[i / 16];
        const float dl = d * float(sc & 0xf), ml = dmin * float(sc >> 4);
        y[i] = dl * float((qs[32 * half + l] >> (2 * group)) & 3) - ml;
    }
}

// ---- Q3_K: {u8 hmask[32]; u8 qs[64] (low 2 bits); u8 scales[12]; f16 d} ----
// Code c ∈ [0, 8) of element i: low two bits in qs as Q2_K, bit 2 in hmask[i % 32] at bit i / 32;
// value d·scale·(c − 4).

void kqEncodeQ3K(const float* x, const float* imp, uint8_t* out)
{
    uint8_t* hmask = out;
    uint8_t* qs = out + 32;
    uint8_t* scales = out + 96;
    int8_t codes[kKQuantBlock];
    float sc[16];
    int stored[16];
    if (!imp) {
        float amax = 0.f, maxScale = 0.f;
        for (int j = 0; j < 16; ++j) {
            sc[j] = kqFitSymmetricRefined(16, 4, x + 16 * j, codes + 16 * j);
            if (std::fabs(sc[j]) > amax) {
                amax = std::fabs(sc[j]);
                maxScale = sc[j];
            }
        }
        if (maxScale != 0.f) {
            const float iscale = -32.f / maxScale;
            for (int j = 0; j < 16; ++j) {
                const int8_t l = int8_t(kqRound(iscale * sc[j]));
                stored[j] = kqClamp(l, -32, 31) + 32;
            }
            kqPackScale3(stored, scales);
            ggmlPutHalf(out + 108, 1.f / iscale);
        } else {
            std::memset(scales, 0, 12);
            ggmlPutHalf(out + 108, 0.f);
        }
    } else {
        const float sigma2 = kqSigma2(x, 2.f);
        float w[16], sw[16];
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) {
                const float v = x[16 * j + l];
                w[l] = imp[16 * j + l] * std::sqrt(sigma2 + v * v);
            }
            float sum = 0.f;
            for (int l = 0; l < 16; ++l) sum += w[l];
            sw[j] = sum;
            sc[j] = kqFitSymmetric(16, 4, x + 16 * j, w, codes + 16 * j);
        }
        int8_t ls[16];
        const float dBlock = kqFitSymmetric(16, 32, sc, sw, ls);
        for (int j = 0; j < 16; ++j) stored[j] = ls[j];
        kqPackScale3(stored, scales);
        ggmlPutHalf(out + 108, dBlock);
    }
    const float d = ggmlGetHalf(out + 108);
    for (int j = 0; j < 16; ++j) {
        const float dj = d * float(int8_t(kqUnpackScale3(scales, j)));
        if (dj == 0.f) continue;
        for (int i = 0; i < 16; ++i) codes[16 * j + i] = int8_t(kqClamp(kqRound(x[16 * j + i] / dj), -4, 3) + 4);
    }
    std::memset(hmask, 0, 32);
    uint8_t low[kKQuantBlock];
    for (int i = 0; i < kKQuantBlock; ++i) {
        int c = codes[i];
        if (c > 3) {
            hmask[i % 32] |= uint8_t(1 << (i / 32));
            c -= 4;
        }
        low[i] = uint8_t(c);
    }
    kqPack2Bit(low, qs);
}

void kqDecodeQ3K(const uint8_t* in, float* y)
{
    const uint8_t* hmask = in;
    const uint8_t* qs = in + 32;
    const uint8_t* scales = in + 96;
    const float d = ggmlGetHalf(in + 108);
    for (int i = 0; i < kKQuantBlock; ++i) {
        const int half = i / 128, group = (i % 128) / 32, l = i % 32;
        const float dl = d * float(kqUnpackScale3(scales, i / 16));
        const int low = (qs[32 * half + l] >> (2 * group)) & 3;
        const int high = (hmask[l] >> (i / 32)) & 1;
        y[i] = dl * float(low - (high ? 0 : 4));
    }
}

// ---- Q4_K: {f16 d; f16 dmin; u8 scales[12] (6-bit scale and min per 32); u8 qs[128]} ----
// ---- Q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} ----
// Byte l of each 32-byte stripe of qs holds elements l (low nibble) and l+32 (high) of that
// stripe's 64; Q5_K's fifth bit of element i is bit i / 32 of qh[i % 32].

void kqEncodeQ45K(const float* x, const float* imp, int bits, uint8_t* out)
{
    const int nmax = (1 << bits) - 1;
    uint8_t* scales = out + 4;
    uint8_t codes[kKQuantBlock];
    float sc[8], mn[8], w[32];
    uint8_t ls[8], lm[8];
    if (!imp) {
        float maxScale = 0.f, maxMin = 0.f;
        for (int j = 0; j < 8; ++j) {
            const float* xj = x + 32 * j;
            float sumX2 = 0.f;
            for (int l = 0; l < 32; ++l) sumX2 += xj[l] * xj[l];
            const float avX = std::sqrt(sumX2 / 32.f);
            for (int l = 0; l < 32; ++l) w[l] = avX + std::fabs(xj[l]);
            sc[j] = bits == 4 ? kqFitAffine(32, nmax, xj, w, codes + 32 * j, mn[j], -1.f, 0.1f, 20, false)
                              : kqFitAffine(32, nmax, xj, w, codes + 32 * j, mn[j], -0.5f, 0.1f, 15, false);
            if (sc[j] > maxScale) maxScale = sc[j];
            if (mn[j] > maxMin) maxMin = mn[j];
        }
        const float invScale = maxScale > 0.f ? 63.f / maxScale : 0.f;
        const float invMin = maxMin > 0.f ? 63.f / maxMin : 0.f;
        for (int j = 0; j < 8; ++j) {
            ls[j] = std::min<uint8_t>(63, uint8_t(kqRound(invScale * sc[j])));
            lm[j] = std::min<uint8_t>(63, uint8_t(kqRound(invMin * mn[j])));
        }
        ggmlPutHalf(out, maxScale / 63.f);
        ggmlPutHalf(out + 2, maxMin / 63.f);
    } else {
        const float sigma2 = kqSigma2(x, 2.f);
        float sw[8];
        for (int j = 0; j < 8; ++j) {
            for (int l = 0; l < 32; ++l) {
                const float v = x[32 * j + l];
                w[l] = imp[32 * j + l] * std::sqrt(sigma2 + v * v);
            }
            float sum = 0.f;
            for (int l = 0; l < 32; ++l) sum += w[l];
            sw[j] = sum;
            sc[j] = kqFitAffine(32, nmax, x + 32 * j, w, codes + 32 * j, mn[j], -0.9f, 0.05f, 36, false);
        }
        const float dScale = kqFitPositive(8, 63, sc, sw, ls);
        const float dMin = kqFitPositive(8, 63, mn, sw, lm);
        // llama.cpp caps the 6-bit codes at 63 for Q5_K only; Q4_K stores them as they come.
        if (bits == 5)
            for (int j = 0; j < 8; ++j) {
                ls[j] = std::min<uint8_t>(63, ls[j]);
                lm[j] = std::min<uint8_t>(63, lm[j]);
            }
        ggmlPutHalf(out, dScale);
        ggmlPutHalf(out + 2, dMin);
    }
    kqPackScaleMin6(ls, lm, scales);
    const float d = ggmlGetHalf(out), dmin = ggmlGetHalf(out + 2);
    float dj[8], mj[8];
    for (int j = 0; j < 8; ++j) {
        int s, m;
        kqUnpackScaleMin6(scales, j, s, m);
        dj[j] = d * float(s);
        mj[j] = dmin * float(m);
    }
    kqRequantizeAffine(x, 32, nmax, dj, mj, codes);
    uint8_t* qs = out + (bits == 4 ? 16 : 48);
    uint8_t* qh = out + 16;
    if (bits == 5) std::memset(qh, 0, 32);
    for (int s = 0; s < 4; ++s)
        for (int l = 0; l < 32; ++l) {
            int lo = codes[64 * s + l], hi = codes[64 * s + l + 32];
            if (bits == 5) {
                if (lo > 15) {
                    lo -= 16;
                    qh[l] |= uint8_t(1 << (2 * s));
                }
                if (hi > 15) {
                    hi -= 16;
                    qh[l] |= uint8_t(2 << (2 * s));
                }
            }
            qs[32 * s + l] = uint8_t(lo | (hi << 4));
        }
}

void kqDecodeQ45K(const uint8_t* in, int bits, float* y)
{
    const float d = ggmlGetHalf(in), dmin = ggmlGetHalf(in + 2);
    const uint8_t* scales = in + 4;
    const uint8_t* qh = in + 16;
    const uint8_t* qs = in + (bits == 4 ? 16 : 48);
    for (int i = 0; i < kKQuantBlock; ++i) {
        const int stripe = i / 64, l = i % 32, upper = (i % 64) / 32;
        int s, m;
        kqUnpackScaleMin6(scales, i / 32, s, m);
        const float dl = d * float(s), ml = dmin * float(m);
        int q = upper ? qs[32 * stripe + l] >> 4 : qs[32 * stripe + l] & 0xf;
        if (bits == 5 && ((qh[l] >> (i / 32)) & 1)) q += 16;
        y[i] = dl * float(q) - ml;
    }
}

// ---- Q6_K: {u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits); i8 scales[16]; f16 d} ----
// Per 128-element half h: ql[64h + l] holds elements l (low nibble) and l+64 (high), ql[64h+32+l]
// elements l+32 and l+96; qh[32h + l] the top two bits of l, l+32, l+64, l+96 (two bits each,
// lowest first). Value d·scale·(c − 32).

void kqEncodeQ6K(const float* x, const float* imp, uint8_t* out)
{
    int8_t codes[kKQuantBlock];
    float sc[16];
    float maxScale = 0.f, maxAbsScale = 0.f;
    for (int j = 0; j < 16; ++j) {
        sc[j] = kqFitSymmetric(16, 32, x + 16 * j, imp ? imp + 16 * j : nullptr, codes + 16 * j);
        if (std::fabs(sc[j]) > maxAbsScale) {
            maxAbsScale = std::fabs(sc[j]);
            maxScale = sc[j];
        }
    }
    if (maxAbsScale < kKqZeroEps) {
        std::memset(out, 0, 210);
        return;
    }
    int8_t* scales = reinterpret_cast<int8_t*>(out + 192);
    const float iscale = -128.f / maxScale;
    ggmlPutHalf(out + 208, 1.f / iscale);
    for (int j = 0; j < 16; ++j) scales[j] = int8_t(std::min(127, kqRound(iscale * sc[j])));
    const float d = ggmlGetHalf(out + 208);
    for (int j = 0; j < 16; ++j) {
        const float dj = d * float(scales[j]);
        if (dj == 0.f) continue;
        for (int i = 0; i < 16; ++i) codes[16 * j + i] = int8_t(kqClamp(kqRound(x[16 * j + i] / dj), -32, 31) + 32);
    }
    uint8_t* ql = out;
    uint8_t* qh = out + 128;
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const int8_t* c = codes + 128 * h + l;
            ql[64 * h + l] = uint8_t((c[0] & 0xf) | ((c[64] & 0xf) << 4));
            ql[64 * h + 32 + l] = uint8_t((c[32] & 0xf) | ((c[96] & 0xf) << 4));
            qh[32 * h + l] = uint8_t((c[0] >> 4) | ((c[32] >> 4) << 2) | ((c[64] >> 4) << 4) | ((c[96] >> 4) << 6));
        }
}

void kqDecodeQ6K(const uint8_t* in, float* y)
{
    const uint8_t* ql = in;
    const uint8_t* qh = in + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(in + 192);
    const float d = ggmlGetHalf(in + 208);
    for (int i = 0; i < kKQuantBlock; ++i) {
        const int h = i / 128, quarter = (i % 128) / 32, l = i % 32;
        const uint8_t lowByte = ql[64 * h + 32 * (quarter & 1) + l];
        const int low = quarter < 2 ? lowByte & 0xf : lowByte >> 4;
        const int high = (qh[32 * h + l] >> (2 * quarter)) & 3;
        y[i] = d * float(scales[i / 16]) * float((low | (high << 4)) - 32);
    }
}

} // namespace

void encodeKQuantBlock(GgmlType t, const float* x, const float* importance, uint8_t* out)
{
    switch (t) {
    case GgmlType::Q2_K: kqEncodeQ2K(x, importance, out); break;
    case GgmlType::Q3_K: kqEncodeQ3K(x, importance, out); break;
    case GgmlType::Q4_K: kqEncodeQ45K(x, importance, 4, out); break;
    case GgmlType::Q5_K: kqEncodeQ45K(x, importance, 5, out); break;
    case GgmlType::Q6_K: kqEncodeQ6K(x, importance, out); break;
    default: break;
    }
}

void decodeKQuantBlock(GgmlType t, const uint8_t* in, float* out)
{
    switch (t) {
    case GgmlType::Q2_K: kqDecodeQ2K(in, out); break;
    case GgmlType::Q3_K: kqDecodeQ3K(in, out); break;
    case GgmlType::Q4_K: kqDecodeQ45K(in, 4, out); break;
    case GgmlType::Q5_K: kqDecodeQ45K(in, 5, out); break;
    case GgmlType::Q6_K: kqDecodeQ6K(in, out); break;
    default: break;
    }
}

void encodeWeightedLegacyRow(GgmlType t, const float* x, int64_t n, const float* importance, uint8_t* out)
{
    const GgmlTypeInfo* info = ggmlTypeInfo(t);
    if (!info) return;
    // The variance term comes from the whole row here (the K-types take their super-block's).
    float sumX2 = 0.f;
    for (int64_t j = 0; j < n; ++j) sumX2 += x[j] * x[j];
    const float sigma2 = sumX2 / float(n);
    const bool affine = t == GgmlType::Q4_1 || t == GgmlType::Q5_1;
    const int nmax = t == GgmlType::Q4_0 || t == GgmlType::Q4_1 ? (affine ? 15 : 8) : (affine ? 31 : 16);
    float w[32];
    uint8_t q[32];
    for (int64_t b = 0; b < n / 32; ++b) {
        const float* xb = x + 32 * b;
        const float* qw = importance + 32 * b;
        for (int j = 0; j < 32; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        uint8_t* o = out + int64_t(info->blockBytes) * b;
        if (affine) {
            float min;
            const float d = kqFitAffine(32, nmax, xb, w, q, min, -0.9f, 0.05f, 36, false);
            packGgmlBlock(t, d, -min, q, o);
        } else {
            int8_t l[32];
            const float d = kqFitSymmetric(32, nmax, xb, w, l);
            for (int j = 0; j < 32; ++j) q[j] = uint8_t(l[j]);
            packGgmlBlock(t, d, 0.f, q, o);
        }
    }
}

} // namespace ql

#if defined(__clang__)
#pragma float_control(pop)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
