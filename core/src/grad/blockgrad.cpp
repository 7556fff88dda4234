#include "quantlens/grad/blockgrad.h"

#include "quantlens/forward/blockops.h"
#include "quantlens/forward/rotation.h"
#include "quantlens/quant/actquant.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

constexpr int kAttnIn = 0, kOIn = 1, kMlpIn = 2, kDownIn = 3; // site indices (kSitePoints)

} // namespace

void BlockGradients::reset(const BlockWeights& w, bool withOutputs)
{
    attnNorm = Eigen::VectorXf::Zero(w.attnNorm.size());
    mlpNorm = Eigen::VectorXf::Zero(w.mlpNorm.size());
    for (int k = 0; k < kLinearCount; ++k) {
        const ConstRowMap wk = w[LinearKind(k)];
        weight[size_t(k)] = RowMatrix::Zero(wk.rows(), wk.cols());
        bias[size_t(k)] = Eigen::VectorXf::Zero(w.bias[size_t(k)].size());
        outputSq[size_t(k)] = withOutputs ? Eigen::VectorXf::Zero(wk.rows()) : Eigen::VectorXf();
    }
}

Eigen::VectorXf inverseRms(const Eigen::MatrixXf& x, float eps)
{
    Eigen::VectorXf r(x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j)
        r(j) = 1.0f / std::sqrt(x.col(j).squaredNorm() / static_cast<float>(x.rows()) + eps);
    return r;
}

void rmsNormBackward(const Eigen::MatrixXf& x, const Eigen::VectorXf& r, const Eigen::VectorXf& w,
                     const Eigen::MatrixXf& dy, Eigen::MatrixXf& dx, Eigen::VectorXf* dw)
{
    const Eigen::Index n = x.cols();
    const float invDim = 1.0f / static_cast<float>(x.rows());
    // y = w ⊙ x·r with r = (mean(x²) + eps)^(-1/2): ∂r/∂x = -r³·x/dim, so with g = w ⊙ dy,
    // dx = r·g - (r³/dim)·(x·g)·x.
#pragma omp parallel for schedule(static)
    for (Eigen::Index j = 0; j < n; ++j) {
        const float rj = r(j);
        const float xg = x.col(j).dot(w.cwiseProduct(dy.col(j)));
        dx.col(j) += rj * w.cwiseProduct(dy.col(j)) - (rj * rj * rj * invDim * xg) * x.col(j);
    }
    if (dw) *dw += (dy.array() * x.array() * r.transpose().replicate(x.rows(), 1).array()).rowwise().sum().matrix();
}

BlockBackward::BlockBackward(const ModelConfig& config) : m_config(config)
{
    m_probs.resize(size_t(std::max(config.heads, 0)));
}

const Eigen::MatrixXf& BlockBackward::linearInput(LinearKind k) const
{
    return *m_input[size_t(k)];
}

Expected<void> BlockBackward::forward(const BlockWeights& w, const Eigen::MatrixXf& x, Eigen::MatrixXf& y)
{
    const ModelConfig& c = m_config;
    for (int k = 0; k < kLinearCount; ++k)
        if (w.q8_1Mins[size_t(k)])
            return makeError("backward pass: " + std::string(linearShortName(LinearKind(k))) +
                             " carries a runtime's q8_1 correction, which has no gradient here");
    if (x.rows() != c.hidden || x.cols() == 0)
        return makeError("backward pass: block input has " + std::to_string(x.rows()) + " rows and " +
                         std::to_string(x.cols()) + " tokens, expected " + std::to_string(c.hidden) + " rows");
    const Eigen::Index n = x.cols();
    ropeTables(c, n, m_cos, m_sin);
    // The input linear k multiplies: its site, or a fake-quantized copy of it.
    auto input = [&](LinearKind k) -> const Eigen::MatrixXf& {
        const Eigen::MatrixXf& site = m_site[size_t(siteIndex(siteOf(k)))];
        const ActQuantSpec& a = w.actQuant[size_t(k)];
        if (!a.active()) return *(m_input[size_t(k)] = &site);
        fakeQuantizeActivations(site, a, m_quantInput[size_t(k)]);
        return *(m_input[size_t(k)] = &m_quantInput[size_t(k)]);
    };
    auto project = [&](LinearKind k, Eigen::MatrixXf& out) {
        out.noalias() = w[k] * input(k);
        const Eigen::VectorXf& b = w.bias[size_t(k)];
        if (b.size()) out.colwise() += b;
    };

    m_x = x;
    m_r1 = inverseRms(x, c.rmsEps);
    rmsNorm(x, w.attnNorm, c.rmsEps, m_site[kAttnIn]);
    project(LinearKind::Q, m_q);
    project(LinearKind::K, m_k);
    project(LinearKind::V, m_v);
    applyRope(m_q, c.headDim, m_cos, m_sin);
    applyRope(m_k, c.headDim, m_cos, m_sin);
    attentionForward(n);

    Eigen::MatrixXf o;
    project(LinearKind::O, o);
    m_mid = x + o;
    m_r2 = inverseRms(m_mid, c.rmsEps);
    rmsNorm(m_mid, w.mlpNorm, c.rmsEps, m_site[kMlpIn]);
    project(LinearKind::Gate, m_g);
    project(LinearKind::Up, m_u);
    Eigen::MatrixXf& a = m_site[kDownIn];
    a = (m_g.array() / (1.0f + (-m_g.array()).exp()) * m_u.array()).matrix();
    if (w.downInputRotation) w.downInputRotation->leftMultiply(a);
    project(LinearKind::Down, o);
    y = m_mid + o;
    return {};
}

void BlockBackward::attentionForward(Eigen::Index n)
{
    const ModelConfig& c = m_config;
    const int hd = c.headDim, group = c.heads / c.kvHeads, window = c.slidingWindow;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Eigen::MatrixXf& out = m_site[kOIn];
    out.resize(Eigen::Index(c.heads) * hd, n);
#pragma omp parallel for schedule(dynamic)
    for (int head = 0; head < c.heads; ++head) {
        const int kvh = head / group;
        Eigen::MatrixXf& p = m_probs[size_t(head)];
        p.noalias() = m_k.middleRows(Eigen::Index(kvh) * hd, hd).transpose() *
                      m_q.middleRows(Eigen::Index(head) * hd, hd);
        for (Eigen::Index j = 0; j < n; ++j) {
            const Eigen::Index lo = window > 0 ? std::max<Eigen::Index>(0, j - window + 1) : 0;
            maskedSoftmax(p.col(j).data(), lo, j, n, scale);
        }
        out.middleRows(Eigen::Index(head) * hd, hd).noalias() = m_v.middleRows(Eigen::Index(kvh) * hd, hd) * p;
    }
}

void BlockBackward::attentionBackward(const Eigen::MatrixXf& dOut, Eigen::MatrixXf& dq, Eigen::MatrixXf& dk,
                                      Eigen::MatrixXf& dv) const
{
    const ModelConfig& c = m_config;
    const int hd = c.headDim, group = c.heads / c.kvHeads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const Eigen::Index n = dOut.cols();
    dq.resize(m_q.rows(), n);
    dk = Eigen::MatrixXf::Zero(m_k.rows(), n);
    dv = Eigen::MatrixXf::Zero(m_v.rows(), n);
    // One thread per kv head: the heads of its group add into the same rows of dk and dv.
#pragma omp parallel for schedule(dynamic)
    for (int kvh = 0; kvh < c.kvHeads; ++kvh) {
        Eigen::MatrixXf dp;
        const auto kh = m_k.middleRows(Eigen::Index(kvh) * hd, hd);
        const auto vh = m_v.middleRows(Eigen::Index(kvh) * hd, hd);
        for (int head = kvh * group; head < (kvh + 1) * group; ++head) {
            const Eigen::MatrixXf& p = m_probs[size_t(head)];
            const auto dOutH = dOut.middleRows(Eigen::Index(head) * hd, hd);
            dv.middleRows(Eigen::Index(kvh) * hd, hd).noalias() += dOutH * p.transpose();
            // Softmax backward per query column: dS = P ⊙ (dP − Σ_keys P ⊙ dP), then the scale.
            dp.noalias() = vh.transpose() * dOutH;
            const Eigen::RowVectorXf dot = (p.array() * dp.array()).colwise().sum();
            dp = (p.array() * (dp.array().rowwise() - dot.array())).matrix() * scale;
            dq.middleRows(Eigen::Index(head) * hd, hd).noalias() = kh * dp;
            dk.middleRows(Eigen::Index(kvh) * hd, hd).noalias() += m_q.middleRows(Eigen::Index(head) * hd, hd) *
                                                                   dp.transpose();
        }
    }
}

void BlockBackward::backward(const BlockWeights& w, const Eigen::MatrixXf& dy, Eigen::MatrixXf& dx, BlockGradients* g)
{
    const ModelConfig& c = m_config;
    // dOut of linear k → its weight and bias gradients, and Wᵀ·dOut added into dIn (through the
    // fake quantization of its input, where a hook asks for one).
    auto linearBack = [&](LinearKind k, const Eigen::MatrixXf& dOut, Eigen::MatrixXf& dIn, bool add) {
        if (g) {
            g->weight[size_t(k)].noalias() += dOut * m_input[size_t(k)]->transpose();
            if (g->bias[size_t(k)].size()) g->bias[size_t(k)] += dOut.rowwise().sum();
            if (g->outputSq[size_t(k)].size()) g->outputSq[size_t(k)] += dOut.array().square().rowwise().sum().matrix();
        }
        const ActQuantSpec& a = w.actQuant[size_t(k)];
        if (a.active()) {
            const Eigen::MatrixXf dQuant = w[k].transpose() * dOut;
            Eigen::MatrixXf dSite;
            fakeQuantizeActivationsBackward(m_site[size_t(siteIndex(siteOf(k)))], a, dQuant, dSite);
            if (add)
                dIn += dSite;
            else
                dIn = std::move(dSite);
            return;
        }
        if (add)
            dIn.noalias() += w[k].transpose() * dOut;
        else
            dIn.noalias() = w[k].transpose() * dOut;
    };

    // MLP: y = mid + down(R·(silu(gate(h)) ⊙ up(h))), h = norm(mid).
    Eigen::MatrixXf da;
    linearBack(LinearKind::Down, dy, da, false);
    if (w.downInputRotation) w.downInputRotation->leftMultiply(da, true);
    const Eigen::ArrayXXf sig = 1.0f / (1.0f + (-m_g.array()).exp());
    const Eigen::MatrixXf dg = (da.array() * m_u.array() * sig * (1.0f + m_g.array() * (1.0f - sig))).matrix();
    const Eigen::MatrixXf du = (da.array() * m_g.array() * sig).matrix();
    Eigen::MatrixXf dh;
    linearBack(LinearKind::Gate, dg, dh, false);
    linearBack(LinearKind::Up, du, dh, true);
    Eigen::MatrixXf dmid = dy;
    rmsNormBackward(m_mid, m_r2, w.mlpNorm, dh, dmid, g ? &g->mlpNorm : nullptr);

    // Attention: mid = x + o(attn(rope(q(h)), rope(k(h)), v(h))), h = norm(x).
    Eigen::MatrixXf dattn, dq, dk, dv;
    linearBack(LinearKind::O, dmid, dattn, false);
    attentionBackward(dattn, dq, dk, dv);
    applyRope(dq, c.headDim, m_cos, m_sin, true);
    applyRope(dk, c.headDim, m_cos, m_sin, true);
    linearBack(LinearKind::Q, dq, dh, false);
    linearBack(LinearKind::K, dk, dh, true);
    linearBack(LinearKind::V, dv, dh, true);
    dx = dmid;
    rmsNormBackward(m_x, m_r1, w.attnNorm, dh, dx, g ? &g->attnNorm : nullptr);
}

void copyBlockFrame(const BlockWeights& block, BlockWeights& out)
{
    out.attnNorm = block.attnNorm;
    out.mlpNorm = block.mlpNorm;
    out.bias = block.bias;
    out.downInputRotation = block.downInputRotation;
    out.actQuant = block.actQuant;
    out.q8_1Mins.fill(nullptr); // a runtime's correction, which the backward pass refuses
}

Expected<double> meanBlockMse(BlockBackward& bb, const BlockWeights& w, const std::vector<Eigen::MatrixXf>& inputs,
                              const std::vector<Eigen::MatrixXf>& targets)
{
    Eigen::MatrixXf y;
    double sum = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        QL_TRY(bb.forward(w, inputs[i], y));
        sum += (y - targets[i]).cast<double>().squaredNorm() / double(y.size());
    }
    return sum / double(inputs.size());
}

} // namespace ql
