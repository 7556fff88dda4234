#pragma once

// Independent references for tst_gptq: the published GPTQ algorithm written column by column
// (no lazy batches; each column's error goes straight onto every later column; group parameters
// from the weights at the start of the published loop's block, or from the updated ones), the Hessian
// inverted explicitly and then factored, GPTQ quant.py's integer rule and MSE grid reimplemented,
// and correlated calibration inputs with outlier channels. Nothing here calls the library.
#include "fixturemodel.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace gptqref {

using MatD = Eigen::MatrixXd;
using RowF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct IntRule {
    int bits = 4;
    bool sym = false;
    float maxq() const { return float((1 << bits) - 1); }
};
struct Params {
    float scale = 1, zero = 0;
};

// quant.py's find_params with the library's documented symmetric variant (2·absmax always).
inline Params intParams(const std::vector<float>& v, IntRule r, float clip = 1.f)
{
    float lo = 0, hi = 0;
    for (float x : v) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    if (r.sym) {
        hi = std::max(-lo, hi);
        lo = -hi;
    }
    if (lo == 0 && hi == 0) {
        lo = -1;
        hi = 1;
    }
    lo *= clip;
    hi *= clip;
    const float scale = (hi - lo) / r.maxq();
    return {scale, r.sym ? float(1 << (r.bits - 1)) : std::nearbyint(-lo / scale)};
}

inline float fakeQuant(float x, Params p, IntRule r)
{
    const float q = std::clamp(std::nearbyint(x / p.scale) + p.zero, 0.f, r.maxq());
    return p.scale * (q - p.zero);
}

// quant.py's mse search: shrink 1 - i/100 for i < 80, error Σ|Q(x) - x|^2.4, strictly better wins.
inline Params searchParams(const std::vector<float>& v, IntRule r, bool mse)
{
    Params best = intParams(v, r);
    if (!mse) return best;
    double bestErr = INFINITY;
    for (int i = 0; i < 80; ++i) {
        const Params p = intParams(v, r, float(1.0 - i / 100.0));
        double err = 0;
        for (float x : v) err += std::pow(std::abs(double(fakeQuant(x, p, r)) - double(x)), 2.4);
        if (err < bestErr) {
            bestErr = err;
            best = p;
        }
    }
    return best;
}

struct Config {
    IntRule rule;
    int group = 128; // > 0: columns per group; 0: per channel; -1: per tensor
    bool actOrder = false, staticGroups = false, mse = false;
    double damp = 0.01;
    // > 0: the published loop's lazy blocks of this many columns, whose group parameters are read
    // from W as it stood when the block began (gptq.py: find_params(W[:, i1+i : i1+i+g]) while
    // the block's updates go to its copy W1). 0: from the fully updated columns.
    int blockSize = 0;
};

struct Result {
    MatD q;                // dequantized, original column order
    std::vector<int> perm; // processing position -> column
    double loss = 0;       // ½ Σ err²
    double lambda = 0;
};

inline Result naiveGptq(const RowF& w0, MatD h, const Config& c)
{
    const int rows = int(w0.rows()), n = int(w0.cols());
    MatD w = w0.cast<double>();
    for (int j = 0; j < n; ++j)
        if (h(j, j) == 0) {
            h(j, j) = 1;
            w.col(j).setZero();
        }
    Result out;
    out.perm.resize(size_t(n));
    std::iota(out.perm.begin(), out.perm.end(), 0);
    if (c.actOrder) std::stable_sort(out.perm.begin(), out.perm.end(), [&](int a, int b) { return h(a, a) > h(b, b); });
    MatD wp(rows, n), hp(n, n);
    for (int a = 0; a < n; ++a) {
        wp.col(a) = w.col(out.perm[size_t(a)]);
        for (int b = 0; b < n; ++b) hp(a, b) = h(out.perm[size_t(a)], out.perm[size_t(b)]);
    }
    out.lambda = c.damp * hp.diagonal().mean();
    hp.diagonal().array() += out.lambda;
    const MatD hinv = hp.inverse();
    const MatD u = hinv.llt().matrixU();

    const int g = c.group > 0 ? c.group : n;
    const int groups = (n + g - 1) / g;
    std::vector<std::vector<Params>> params(static_cast<size_t>(rows),
                                            std::vector<Params>(static_cast<size_t>(groups)));
    auto values = [](const MatD& m, int r, int c0, int len) {
        std::vector<float> v;
        for (int k = 0; k < len; ++k) v.push_back(float(m(r, c0 + k)));
        return v;
    };
    if (c.group == -1) {
        std::vector<float> all;
        for (int r = 0; r < rows; ++r)
            for (float x : values(w, r, 0, n)) all.push_back(x);
        const Params p = searchParams(all, c.rule, c.mse);
        for (auto& row : params) row[0] = p;
    } else if (c.group == 0 || c.staticGroups) { // fixed up front from the original weight
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k < groups; ++k)
                params[size_t(r)][size_t(k)] = searchParams(values(w, r, k * g, std::min(g, n - k * g)), c.rule, c.mse);
    }
    const bool dynamic = c.group > 0 && !c.staticGroups;
    MatD qp(rows, n);
    // Column by column every update lands at once, so at a block's first column wp holds what
    // the blocked loop's W holds for the whole block: every earlier block's updates, none of its own.
    MatD blockStart = wp;
    for (int j = 0; j < n; ++j) {
        const int k = c.group <= 0 ? 0 : dynamic ? j / g : out.perm[size_t(j)] / g;
        if (c.blockSize > 0 && j % c.blockSize == 0) blockStart = wp;
        const MatD& groupSource = c.blockSize > 0 ? blockStart : wp;
        for (int r = 0; r < rows; ++r) {
            if (dynamic && j % g == 0)
                params[size_t(r)][size_t(k)] = searchParams(values(groupSource, r, j, std::min(g, n - j)), c.rule,
                                                            c.mse);
            const double x = wp(r, j);
            const double q = fakeQuant(float(x), params[size_t(r)][size_t(k)], c.rule);
            qp(r, j) = q;
            const double e = (x - q) / u(j, j);
            out.loss += 0.5 * e * e;
            wp.row(r).tail(n - j - 1) -= e * u.row(j).tail(n - j - 1);
        }
    }
    out.q.resize(rows, n);
    for (int a = 0; a < n; ++a) out.q.col(out.perm[size_t(a)]) = qp.col(a);
    return out;
}

// X [channels, tokens]: 8 shared latent factors plus noise, so channels correlate; every 16th
// channel (from 3) is an outlier scaled by 10..50, as LLM activations have.
inline MatD correlatedInputs(int channels, int tokens, uint64_t seed)
{
    qlfix::Gaussian g(seed);
    const int k = 8;
    MatD b(channels, k), z(k, tokens), x(channels, tokens);
    for (int i = 0; i < b.size(); ++i) b.data()[i] = g.next();
    for (int i = 0; i < z.size(); ++i) z.data()[i] = g.next();
    x = b * z;
    for (int i = 0; i < x.size(); ++i) x.data()[i] += 0.5 * g.next();
    for (int c = 3; c < channels; c += 16) x.row(c) *= 10.0 + 40.0 * double(c % 7) / 6.0;
    return x;
}

inline RowF randomWeight(int rows, int cols, uint64_t seed)
{
    qlfix::Gaussian g(seed);
    RowF w(rows, cols);
    for (int r = 0; r < rows; ++r) {
        const double rowScale = 0.02 * (1.0 + 0.5 * std::abs(g.next()));
        for (int c = 0; c < cols; ++c) w(r, c) = float(rowScale * g.next());
    }
    return w;
}

// ‖ΔW X‖²_F, the quantity GPTQ minimises.
inline double outputError(const MatD& dw, const MatD& x)
{
    return (dw * x).squaredNorm();
}

} // namespace gptqref
