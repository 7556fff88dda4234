#include "quantlens/grad/let.h"

#include "quantlens/grad/blockgrad.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

constexpr int kAttnIn = 0, kOIn = 1, kMlpIn = 2; // site indices (kSitePoints)

int group(const ModelConfig& c)
{
    return c.heads / c.kvHeads;
}

// The qk scale of each q row (heads·headDim) or k row (kvHeads·headDim): its kv head's scale of
// the rotary pair the row belongs to.
Eigen::VectorXf qkRows(const ModelConfig& c, const Eigen::VectorXf& qk, bool queries)
{
    const int hd = c.headDim, half = hd / 2, heads = queries ? c.heads : c.kvHeads;
    Eigen::VectorXf r(Eigen::Index(heads) * hd);
    for (int h = 0; h < heads; ++h) {
        const int kvh = queries ? h / group(c) : h;
        for (int d = 0; d < hd; ++d) r(Eigen::Index(h) * hd + d) = qk(Eigen::Index(kvh) * half + d % half);
    }
    return r;
}

// The out scale of each o column (heads·headDim): the scale of the v row that head reads.
Eigen::VectorXf outColumns(const ModelConfig& c, const Eigen::VectorXf& out)
{
    const int hd = c.headDim;
    Eigen::VectorXf r(Eigen::Index(c.heads) * hd);
    for (int h = 0; h < c.heads; ++h)
        r.segment(Eigen::Index(h) * hd, hd) = out.segment(Eigen::Index(h / group(c)) * hd, hd);
    return r;
}

// Per linear, the factor of each row and of each column (empty: 1).
struct Factors {
    std::array<Eigen::VectorXf, kLinearCount> row, col;
};

Factors factorsOf(const ModelConfig& c, const LetScales& s)
{
    Factors f;
    auto col = [&](LinearKind k) -> Eigen::VectorXf& { return f.col[size_t(k)]; };
    auto row = [&](LinearKind k) -> Eigen::VectorXf& { return f.row[size_t(k)]; };
    if (s.qkv.size())
        for (LinearKind k : {LinearKind::Q, LinearKind::K, LinearKind::V}) col(k) = s.qkv;
    if (s.fc1.size())
        for (LinearKind k : {LinearKind::Gate, LinearKind::Up}) col(k) = s.fc1;
    if (s.out.size()) {
        row(LinearKind::V) = s.out.cwiseInverse();
        col(LinearKind::O) = outColumns(c, s.out);
    }
    if (s.qk.size()) {
        row(LinearKind::Q) = qkRows(c, s.qk, true).cwiseInverse();
        row(LinearKind::K) = qkRows(c, s.qk, false);
    }
    return f;
}

// Column-wise maximum (signed, as torch's weight.max(dim=0)) clamped below at 1e-5.
Eigen::VectorXf columnMax(const ConstRowMap& w)
{
    return w.colwise().maxCoeff().transpose().cwiseMax(1e-5f);
}

Eigen::VectorXf smoothScale(const Eigen::VectorXf& act, const Eigen::VectorXf& weight, float alpha)
{
    return (act.cwiseMax(1e-5f).array().pow(alpha) / weight.array().pow(1.f - alpha)).matrix().cwiseMax(1e-5f);
}

} // namespace

LetScales initialLetScales(const ModelConfig& c, const BlockWeights& block,
                           const std::array<bool, kLinearCount>& trained, const SiteAbsmax& absmax, float alpha)
{
    auto all = [&](std::initializer_list<LinearKind> ks) {
        return std::all_of(ks.begin(), ks.end(), [&](LinearKind k) { return trained[size_t(k)]; });
    };
    LetScales s;
    const Eigen::Index hidden = c.hidden, kvRows = Eigen::Index(c.kvHeads) * c.headDim;
    if (all({LinearKind::Q, LinearKind::K, LinearKind::V}))
        s.qkv = absmax[kAttnIn].size() == hidden ? smoothScale(absmax[kAttnIn], columnMax(block[LinearKind::Q]), alpha)
                                                 : Eigen::VectorXf::Ones(hidden);
    if (all({LinearKind::Gate, LinearKind::Up}))
        s.fc1 = absmax[kMlpIn].size() == hidden ? smoothScale(absmax[kMlpIn], columnMax(block[LinearKind::Up]), alpha)
                                                : Eigen::VectorXf::Ones(hidden);
    if (all({LinearKind::V, LinearKind::O})) {
        s.out = Eigen::VectorXf::Ones(kvRows);
        if (absmax[kOIn].size() == Eigen::Index(c.heads) * c.headDim) {
            const Eigen::VectorXf m = columnMax(block[LinearKind::O]);
            Eigen::VectorXf a = Eigen::VectorXf::Zero(kvRows), w = Eigen::VectorXf::Constant(kvRows, -INFINITY);
            for (int h = 0; h < c.heads; ++h) {
                const Eigen::Index src = Eigen::Index(h) * c.headDim, dst = Eigen::Index(h / group(c)) * c.headDim;
                a.segment(dst, c.headDim) = a.segment(dst, c.headDim).cwiseMax(absmax[kOIn].segment(src, c.headDim));
                w.segment(dst, c.headDim) = w.segment(dst, c.headDim).cwiseMax(m.segment(src, c.headDim));
            }
            s.out = smoothScale(a, w, alpha);
        }
    }
    // qk stays unused: with q and k entering the attention product unquantized the loss does
    // not depend on it (row-wise grids scale with their rows and q·k is unchanged), so training
    // would only move it by AdamW's normalised noise.
    return s;
}

void truncateLetScales(LetScales& s)
{
    for (Eigen::VectorXf* v : s.all())
        for (float& x : *v)
            if (std::abs(x) < 1e-2f) x = x > 0 ? 1e-2f : x < 0 ? -1e-2f : 0.f;
}

void applyLet(const ModelConfig& c, const BlockWeights& block, const LetScales& s, BlockWeights& out)
{
    copyBlockFrame(block, out);
    if (s.qkv.size()) out.attnNorm = block.attnNorm.cwiseQuotient(s.qkv);
    if (s.fc1.size()) out.mlpNorm = block.mlpNorm.cwiseQuotient(s.fc1);
    const Factors f = factorsOf(c, s);
    for (int k = 0; k < kLinearCount; ++k) {
        const ConstRowMap w = block[LinearKind(k)];
        const Eigen::VectorXf &row = f.row[size_t(k)], &col = f.col[size_t(k)];
        if (!row.size() && !col.size()) {
            out.setView(LinearKind(k), w.data(), w.rows(), w.cols());
            continue;
        }
        RowMatrix& t = out.storage[size_t(k)];
        t = w;
        if (col.size()) t = t * col.asDiagonal();
        if (row.size()) t = row.asDiagonal() * t;
        if (row.size() && out.bias[size_t(k)].size()) out.bias[size_t(k)] = out.bias[size_t(k)].cwiseProduct(row);
        out.useStorage(LinearKind(k));
    }
}

void letBackward(const ModelConfig& c, const BlockWeights& block, const BlockWeights& transformed, const LetScales& s,
                 const Eigen::VectorXf& dAttnNorm, const Eigen::VectorXf& dMlpNorm,
                 const std::array<RowMatrix, kLinearCount>& dWeight,
                 const std::array<Eigen::VectorXf, kLinearCount>& dBias, LetScales& grad)
{
    // Each transformed weight is W·(row and column factors), linear in each scale: its gradient
    // with respect to a scale that multiplies it is Σ dW' ⊙ W' / s, and minus that where it divides.
    std::array<RowMatrix, kLinearCount> p;
    for (int k = 0; k < kLinearCount; ++k)
        if (dWeight[size_t(k)].size())
            p[size_t(k)] = dWeight[size_t(k)].cwiseProduct(RowMatrix(transformed[LinearKind(k)]));
    auto colSum = [&](LinearKind k) -> Eigen::VectorXf { return p[size_t(k)].colwise().sum().transpose(); };
    // A row factor also scales the row's bias.
    auto rowSum = [&](LinearKind k) -> Eigen::VectorXf {
        Eigen::VectorXf r = p[size_t(k)].rowwise().sum();
        const Eigen::VectorXf& b = transformed.bias[size_t(k)];
        if (b.size() && dBias[size_t(k)].size()) r += dBias[size_t(k)].cwiseProduct(b);
        return r;
    };
    auto norm = [](const Eigen::VectorXf& g, const Eigen::VectorXf& d, const Eigen::VectorXf& sc) -> Eigen::VectorXf {
        return -(d.array() * g.array() / sc.array().square()).matrix();
    };
    grad = LetScales{};
    if (s.qkv.size())
        grad.qkv = (colSum(LinearKind::Q) + colSum(LinearKind::K) + colSum(LinearKind::V)).cwiseQuotient(s.qkv) +
                   norm(block.attnNorm, dAttnNorm, s.qkv);
    if (s.fc1.size())
        grad.fc1 = (colSum(LinearKind::Gate) + colSum(LinearKind::Up)).cwiseQuotient(s.fc1) +
                   norm(block.mlpNorm, dMlpNorm, s.fc1);
    const int hd = c.headDim, half = hd / 2;
    if (s.out.size()) {
        Eigen::VectorXf g = -rowSum(LinearKind::V);
        const Eigen::VectorXf o = colSum(LinearKind::O);
        for (int h = 0; h < c.heads; ++h)
            g.segment(Eigen::Index(h / group(c)) * hd, hd) += o.segment(Eigen::Index(h) * hd, hd);
        grad.out = g.cwiseQuotient(s.out);
    }
    if (s.qk.size()) {
        const Eigen::VectorXf q = rowSum(LinearKind::Q), k = rowSum(LinearKind::K);
        Eigen::VectorXf g = Eigen::VectorXf::Zero(s.qk.size());
        for (int kvh = 0; kvh < c.kvHeads; ++kvh)
            for (int d = 0; d < hd; ++d) g(Eigen::Index(kvh) * half + d % half) += k(Eigen::Index(kvh) * hd + d);
        for (int h = 0; h < c.heads; ++h)
            for (int d = 0; d < hd; ++d) g(Eigen::Index(h / group(c)) * half + d % half) -= q(Eigen::Index(h) * hd + d);
        grad.qk = g.cwiseQuotient(s.qk);
    }
}

} // namespace ql
