#include "quantlens/methods/omniquant.h"

#include "quantlens/grad/blockgrad.h"

#include <cmath>

namespace ql {

namespace {

// torch.optim.AdamW's update of one parameter tensor (betas 0.9 and 0.999, eps 1e-8).
struct AdamW {
    Eigen::MatrixXf m, v;
    void step(Eigen::MatrixXf& p, const Eigen::MatrixXf& g, float lr, float wd, int t)
    {
        constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
        if (m.size() == 0) {
            m = Eigen::MatrixXf::Zero(p.rows(), p.cols());
            v = m;
        }
        p *= 1.f - lr * wd;
        m = b1 * m + (1.f - b1) * g;
        v = b2 * v + (1.f - b2) * g.cwiseAbs2();
        const float c1 = 1.f - std::pow(b1, float(t)), c2 = 1.f - std::pow(b2, float(t));
        p.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
    }
};

double meanSquare(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b)
{
    return (a - b).cast<double>().squaredNorm() / double(a.size());
}

} // namespace

void applyClipping(const BlockWeights& block, const BlockClipping& clip, const OmniQuantOptions& o, BlockWeights& out)
{
    std::array<bool, kLinearCount> trained{};
    for (int k = 0; k < kLinearCount; ++k) trained[size_t(k)] = o.specs[size_t(k)].has_value();
    fillTrainedBlock(block, trained, out, [&](int k, const ConstRowMap& w, RowMatrix& q) {
        ClippedFakeQuant::forward(w, *o.specs[size_t(k)], clip.gamma[size_t(k)], clip.beta[size_t(k)], q);
    });
}

Expected<BlockClipping> trainBlockClipping(const ModelConfig& c, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& quantInputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const OmniQuantOptions& o,
                                           Feedback* fb)
{
    if (quantInputs.empty() || quantInputs.size() != targets.size())
        return makeError("OmniQuant: " + std::to_string(quantInputs.size()) + " input windows for " +
                         std::to_string(targets.size()) + " targets");
    if (o.epochs < 0 || !(o.lwcLr > 0)) return makeError("OmniQuant: epochs must be ≥ 0 and the learning rate > 0");
    BlockClipping clip;
    for (int k = 0; k < kLinearCount; ++k) {
        const ConstRowMap w = block[LinearKind(k)];
        if (!o.specs[size_t(k)]) continue;
        const ClipQuantSpec& spec = *o.specs[size_t(k)];
        if (!ClippedFakeQuant::fits(spec, w.cols()))
            return makeError("OmniQuant: " + std::string(linearShortName(LinearKind(k))) + ": a grid of " +
                             std::to_string(spec.bits) + " bits in groups of " + std::to_string(spec.group) +
                             " (bits 2..16, group ≥ 0) over " + std::to_string(w.cols()) + " inputs");
        const Eigen::Index g = ClippedFakeQuant::groups(spec, w.cols());
        clip.gamma[size_t(k)] = Eigen::MatrixXf::Constant(w.rows(), g, o.initValue);
        clip.beta[size_t(k)] = Eigen::MatrixXf::Constant(w.rows(), g, o.initValue);
    }
    BlockBackward bb(c);
    BlockWeights q;
    BlockGradients grads;
    Eigen::MatrixXf y, dy, dx;
    auto evaluate = [&]() -> Expected<double> {
        applyClipping(block, clip, o, q);
        return meanBlockMse(bb, q, quantInputs, targets);
    };
    auto before = evaluate();
    if (!before) return before.error();
    clip.lossBefore = *before;
    std::array<AdamW, kLinearCount> gammaOpt, betaOpt;
    int t = 0;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        double epochSum = 0;
        for (size_t w = 0; w < quantInputs.size(); ++w) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            applyClipping(block, clip, o, q);
            QL_TRY(bb.forward(q, quantInputs[w], y));
            epochSum += meanSquare(y, targets[w]);
            dy = (y - targets[w]) * (2.0f / float(y.size())); // torch's MSELoss, mean over elements
            grads.reset(q);
            bb.backward(q, dy, dx, &grads);
            ++t;
            for (int k = 0; k < kLinearCount; ++k) {
                if (!o.specs[size_t(k)]) continue;
                const RowMatrix& dWq = grads.weight[size_t(k)];
                Eigen::MatrixXf dg = Eigen::MatrixXf::Zero(clip.gamma[size_t(k)].rows(), clip.gamma[size_t(k)].cols());
                Eigen::MatrixXf db = dg;
                ClippedFakeQuant::backward(block[LinearKind(k)], *o.specs[size_t(k)], clip.gamma[size_t(k)],
                                           clip.beta[size_t(k)], ConstRowMap(dWq.data(), dWq.rows(), dWq.cols()), dg,
                                           db, nullptr);
                gammaOpt[size_t(k)].step(clip.gamma[size_t(k)], dg, o.lwcLr, o.weightDecay, t);
                betaOpt[size_t(k)].step(clip.beta[size_t(k)], db, o.lwcLr, o.weightDecay, t);
            }
        }
        clip.epochLoss.push_back(epochSum / double(quantInputs.size()));
        if (fb) fb->progress(double(epoch + 1) / double(o.epochs));
    }
    auto after = evaluate();
    if (!after) return after.error();
    clip.lossAfter = *after;
    return clip;
}

} // namespace ql
