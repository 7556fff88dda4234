// AWQ's per-channel scale search and the folds (awq.h; reference llm-awq auto_scale.py).
#include "quantlens/methods/awq.h"

#include "quantlens/forward/forward.h"

#include <cmath>
#include <limits>

namespace ql {

namespace {

// The linears a group scales, and the linear that absorbs 1/s (none: a norm does).
struct GroupLinears {
    std::vector<LinearKind> scaled;
};
GroupLinears linearsOf(AwqGroup g)
{
    switch (g) {
    case AwqGroup::AttnIn: return {{LinearKind::Q, LinearKind::K, LinearKind::V}};
    case AwqGroup::OIn: return {{LinearKind::O}};
    case AwqGroup::MlpIn: return {{LinearKind::Gate, LinearKind::Up}};
    case AwqGroup::DownIn: return {{LinearKind::Down}};
    }
    return {};
}

const std::vector<Eigen::MatrixXf>& siteInputs(const AwqBlockInputs& in, AwqGroup g)
{
    switch (g) {
    case AwqGroup::AttnIn: return in.attnIn;
    case AwqGroup::OIn: return in.oIn;
    case AwqGroup::MlpIn: return in.mlpIn;
    case AwqGroup::DownIn: return in.downIn;
    }
    return in.attnIn;
}

void addBias(Eigen::MatrixXf& y, const Eigen::VectorXf& b)
{
    if (b.size()) y.colwise() += b;
}

// down_proj(silu(gate·x + b_g) ⊙ (up·x + b_u)) + b_d: the MLP the forward pass computes.
Eigen::MatrixXf mlpOutput(const RowMatrix& gate, const RowMatrix& up, const RowMatrix& down, const BlockWeights& b,
                          const Eigen::MatrixXf& x)
{
    Eigen::MatrixXf g = gate * x, u = up * x;
    addBias(g, b.bias[static_cast<int>(LinearKind::Gate)]);
    addBias(u, b.bias[static_cast<int>(LinearKind::Up)]);
    g = (g.array() / (1.0f + (-g.array()).exp()) * u.array()).matrix();
    Eigen::MatrixXf y = down * g;
    addBias(y, b.bias[static_cast<int>(LinearKind::Down)]);
    return y;
}

// W·diag(s) quantized, columns divided by s again: the weight the search evaluates.
Expected<RowMatrix> scaledQuantized(const RowMatrix& w, const Eigen::VectorXf& s, const FormatSpec& spec)
{
    const RowMatrix ws = w * s.asDiagonal();
    auto q = awqFakeQuantize(ws, spec);
    if (!q) return q.error();
    return RowMatrix(*q * s.cwiseInverse().asDiagonal());
}

// Module-output MSE of one group with the trial weights `trial` (one per scaled linear).
Expected<double> groupLoss(FloatWeights& w, int layer, AwqGroup g, const AwqBlockInputs& in,
                           const std::vector<RowMatrix>& trial, const std::vector<Eigen::MatrixXf>& target, int threads)
{
    const GroupLinears gl = linearsOf(g);
    double sum = 0, count = 0;
    if (g == AwqGroup::AttnIn) {
        // The attention (RoPE, GQA, causal softmax) is the forward engine's: run the block with the
        // trial q/k/v in place and compare its attn_out with the float one.
        std::vector<RowMatrix> saved;
        for (size_t k = 0; k < gl.scaled.size(); ++k) {
            RowMatrix& dst = w.linear(layer, gl.scaled[k]);
            saved.push_back(dst);
            dst = trial[k]; // same shape: no reallocation, the block views stay valid
        }
        ForwardEngine engine(w.config(), w);
        engine.setObserver([&](const Activation& a) {
            if (a.layer != layer || a.point != BlockPoint::AttnOut) return;
            sum += double((a.x - target[size_t(a.sequence)]).squaredNorm());
            count += double(a.x.size());
        });
        std::vector<Eigen::MatrixXf> states = in.input;
        ForwardOptions fo;
        fo.threads = threads;
        fo.computeLogits = false;
        auto ran = engine.runLayers(layer, layer + 1, states, fo);
        for (size_t k = 0; k < gl.scaled.size(); ++k) w.linear(layer, gl.scaled[k]) = saved[k];
        if (!ran) return ran.error();
    } else if (g == AwqGroup::MlpIn) {
        const BlockWeights& b = w.blockWeights(layer);
        const RowMatrix& down = w.linear(layer, LinearKind::Down);
        for (size_t s = 0; s < in.mlpIn.size(); ++s) {
            const Eigen::MatrixXf y = mlpOutput(trial[0], trial[1], down, b, in.mlpIn[s]);
            sum += double((y - target[s]).squaredNorm());
            count += double(y.size());
        }
    } else {
        // A lone linear: the bias cancels in the difference of outputs.
        const RowMatrix d = trial[0] - w.linear(layer, gl.scaled[0]);
        for (const Eigen::MatrixXf& x : siteInputs(in, g)) {
            sum += double((d * x).squaredNorm());
            count += double(d.rows()) * double(x.cols());
        }
    }
    if (count == 0) return makeError("awq: no calibration tokens reached layer " + std::to_string(layer));
    return sum / count;
}

} // namespace

const char* awqGroupSite(AwqGroup g)
{
    switch (g) {
    case AwqGroup::AttnIn: return pointName(BlockPoint::AttnIn);
    case AwqGroup::OIn: return pointName(BlockPoint::OIn);
    case AwqGroup::MlpIn: return pointName(BlockPoint::MlpIn);
    case AwqGroup::DownIn: return pointName(BlockPoint::DownIn);
    }
    return "?";
}

Eigen::VectorXf awqActivationScale(const std::vector<Eigen::MatrixXf>& inputs)
{
    if (inputs.empty()) return {};
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(inputs[0].rows());
    double n = 0;
    for (const Eigen::MatrixXf& x : inputs) {
        sum += x.cwiseAbs().rowwise().sum().cast<double>();
        n += double(x.cols());
    }
    return n > 0 ? Eigen::VectorXf((sum / n).cast<float>()) : Eigen::VectorXf(Eigen::VectorXf::Zero(sum.size()));
}

Eigen::VectorXf awqScales(const Eigen::Ref<const Eigen::VectorXf>& sx, double alpha)
{
    Eigen::VectorXf s(sx.size());
    // The 1e-4 floor (the reference's clamp) keeps dead channels from giving zero scales.
    for (Eigen::Index j = 0; j < sx.size(); ++j) s[j] = std::max(float(std::pow(double(sx[j]), alpha)), 1e-4f);
    if (s.size()) s /= std::sqrt(s.maxCoeff() * s.minCoeff());
    return s;
}

Expected<AwqGroupResult> awqSearchGroup(FloatWeights& w, int layer, AwqGroup group, const AwqBlockInputs& in,
                                        const AwqOptions& o)
{
    if (o.grid < 1) return makeError("awq: alpha_grid must be at least 1, got " + std::to_string(o.grid));
    if (layer < 0 || layer >= w.layers()) return makeError("awq: no layer " + std::to_string(layer));
    AwqGroupResult r;
    r.group = group;
    if (group == AwqGroup::OIn && w.linear(layer, LinearKind::V).rows() != w.linear(layer, LinearKind::O).cols()) {
        r.skipReason = "v_proj and o_proj shapes differ (grouped-query attention): one v row feeds several heads";
        return r;
    }
    if (group == AwqGroup::DownIn && w.blockWeights(layer).downInputRotation) {
        r.skipReason = "down_proj's input is rotated online; a row scale of up_proj cannot pass the rotation";
        return r;
    }
    const GroupLinears gl = linearsOf(group);
    const Eigen::VectorXf sx = awqActivationScale(siteInputs(in, group));
    if (sx.size() != w.linear(layer, gl.scaled[0]).cols())
        return makeError(std::string("awq: layer ") + std::to_string(layer) + " site " + awqGroupSite(group) +
                         " has no calibration inputs of the right size");
    if (!sx.allFinite())
        return makeError(std::string("awq: layer ") + std::to_string(layer) + " site " + awqGroupSite(group) +
                         " has non-finite activations");

    // The float module output every trial is compared with.
    std::vector<Eigen::MatrixXf> target;
    if (group == AwqGroup::AttnIn) {
        target = in.attnOut;
    } else if (group == AwqGroup::MlpIn) {
        const BlockWeights& b = w.blockWeights(layer);
        for (const Eigen::MatrixXf& x : in.mlpIn)
            target.push_back(mlpOutput(w.linear(layer, LinearKind::Gate), w.linear(layer, LinearKind::Up),
                                       w.linear(layer, LinearKind::Down), b, x));
    }

    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < o.grid; ++i) {
        const double alpha = double(i) / o.grid;
        const Eigen::VectorXf s = awqScales(sx, alpha);
        std::vector<RowMatrix> trial;
        for (LinearKind k : gl.scaled) {
            auto q = scaledQuantized(w.linear(layer, k), s, o.weight);
            if (!q) return q.error();
            trial.push_back(std::move(*q));
        }
        auto loss = groupLoss(w, layer, group, in, trial, target, o.threads);
        if (!loss) return loss.error();
        r.losses.push_back(*loss);
        if (i == 0) r.lossPlain = *loss;
        if (*loss < best) {
            best = *loss;
            r.alpha = alpha;
            r.scales = s;
        }
    }
    if (!std::isfinite(best))
        return makeError(std::string("awq: layer ") + std::to_string(layer) + " site " + awqGroupSite(group) +
                         ": every scale candidate gave a non-finite loss");
    r.lossBest = best;
    r.applied = true;
    return r;
}

void awqFoldGroup(FloatWeights& w, int layer, const AwqGroupResult& r)
{
    if (!r.applied) return;
    const Eigen::VectorXf& s = r.scales;
    for (LinearKind k : linearsOf(r.group).scaled) {
        RowMatrix& m = w.linear(layer, k);
        m = m * s.asDiagonal();
    }
    BlockWeights& b = w.blockWeights(layer);
    // What produced the site's input absorbs 1/s, so W·diag(s)·(x/s) = W·x.
    auto divideRows = [&](LinearKind prev) {
        RowMatrix& m = w.linear(layer, prev);
        m = s.cwiseInverse().asDiagonal() * m;
        Eigen::VectorXf& bias = b.bias[static_cast<int>(prev)];
        if (bias.size()) bias = bias.cwiseQuotient(s);
    };
    switch (r.group) {
    case AwqGroup::AttnIn: b.attnNorm = b.attnNorm.cwiseQuotient(s); break;
    case AwqGroup::MlpIn: b.mlpNorm = b.mlpNorm.cwiseQuotient(s); break;
    case AwqGroup::OIn: divideRows(LinearKind::V); break;
    case AwqGroup::DownIn: divideRows(LinearKind::Up); break;
    }
}

} // namespace ql
