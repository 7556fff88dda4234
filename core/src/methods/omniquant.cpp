#include "quantlens/methods/omniquant.h"

#include "quantlens/grad/blockgrad.h"

#include <cmath>
#include <utility>

namespace ql {

namespace {

// torch.optim.AdamW's update of one parameter tensor (betas 0.9 and 0.999, eps 1e-8).
template <class M>
struct AdamW {
    M m, v;
    void step(M& p, const M& g, float lr, float wd, int t)
    {
        constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
        if (m.size() == 0) {
            m = M::Zero(p.rows(), p.cols());
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

std::array<bool, kLinearCount> trainedLinears(const OmniQuantOptions& o)
{
    std::array<bool, kLinearCount> trained{};
    for (int k = 0; k < kLinearCount; ++k) trained[size_t(k)] = o.specs[size_t(k)].has_value();
    return trained;
}

bool usesLet(const LetScales& s)
{
    for (const Eigen::VectorXf* v : s.all())
        if (v->size()) return true;
    return false;
}

// out = the clipped weights of `from` (block, or its LET transform), with from's norms.
void clipFrom(const BlockWeights& from, const BlockClipping& clip, const OmniQuantOptions& o, BlockWeights& out)
{
    fillTrainedBlock(from, trainedLinears(o), out, [&](int k, const ConstRowMap& w, RowMatrix& q) {
        ClippedFakeQuant::forward(w, *o.specs[size_t(k)], clip.gamma[size_t(k)], clip.beta[size_t(k)], q);
    });
}

} // namespace

void applyClipping(const ModelConfig& c, const BlockWeights& block, const BlockClipping& clip,
                   const OmniQuantOptions& o, BlockWeights& out)
{
    if (!usesLet(clip.let)) return clipFrom(block, clip, o, out);
    BlockWeights t; // linears LET leaves alone stay views of block, so out may outlive t
    applyLet(c, block, clip.let, t);
    clipFrom(t, clip, o, out);
}

namespace {

// The float block without activation quantization run on the quantized stream: the second
// target of the reference's augmented loss.
Expected<std::vector<Eigen::MatrixXf>> augmentedTargets(const ModelConfig& c, const BlockWeights& block,
                                                        const std::vector<Eigen::MatrixXf>& inputs)
{
    BlockWeights plain;
    copyBlockFrame(block, plain);
    plain.actQuant.fill(ActQuantSpec{});
    for (int k = 0; k < kLinearCount; ++k) {
        const ConstRowMap w = block[LinearKind(k)];
        plain.setView(LinearKind(k), w.data(), w.rows(), w.cols());
    }
    BlockBackward bb(c);
    std::vector<Eigen::MatrixXf> out(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) QL_TRY(bb.forward(plain, inputs[i], out[i]));
    return out;
}

} // namespace

Expected<BlockClipping> trainBlockClipping(const ModelConfig& c, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& quantInputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const OmniQuantOptions& o,
                                           Feedback* fb)
{
    if (quantInputs.empty() || quantInputs.size() != targets.size())
        return makeError("OmniQuant: " + std::to_string(quantInputs.size()) + " input windows for " +
                         std::to_string(targets.size()) + " targets");
    if (o.epochs < 0 || !(o.lwcLr > 0) || (o.let && !(o.letLr > 0)))
        return makeError("OmniQuant: epochs must be ≥ 0 and the learning rates > 0");
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
    if (o.let) {
        if (c.headDim % 2 || c.kvHeads <= 0 || c.heads % c.kvHeads)
            return makeError("OmniQuant: LET needs an even head dimension and heads a multiple of the kv heads");
        clip.let = initialLetScales(c, block, trainedLinears(o), o.actAbsmax, o.alpha);
    }
    std::vector<Eigen::MatrixXf> augTargets;
    if (o.augLoss) {
        auto t = augmentedTargets(c, block, quantInputs);
        if (!t) return t.error();
        augTargets = std::move(*t);
    }
    BlockBackward bb(c);
    BlockWeights q, transformed;
    BlockGradients grads;
    std::array<RowMatrix, kLinearCount> dTransformed; // ∂L/∂(transformed weight before quantization)
    LetScales dLet;
    Eigen::MatrixXf y, dy, dx;
    auto evaluate = [&]() -> Expected<double> {
        truncateLetScales(clip.let);
        applyClipping(c, block, clip, o, q);
        return meanBlockMse(bb, q, quantInputs, targets);
    };
    auto before = evaluate();
    if (!before) return before.error();
    clip.lossBefore = *before;
    std::array<AdamW<Eigen::MatrixXf>, kLinearCount> gammaOpt, betaOpt;
    std::array<AdamW<Eigen::VectorXf>, 4> letOpt;
    const bool let = usesLet(clip.let);
    int t = 0;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        double epochSum = 0;
        for (size_t w = 0; w < quantInputs.size(); ++w) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            // The reference truncates the scales in place before every use.
            truncateLetScales(clip.let);
            if (let) applyLet(c, block, clip.let, transformed);
            const BlockWeights& from = let ? transformed : block;
            clipFrom(from, clip, o, q);
            QL_TRY(bb.forward(q, quantInputs[w], y));
            const float k2 = 2.0f / float(y.size()); // torch's MSELoss, mean over elements
            epochSum += meanSquare(y, targets[w]);
            dy = (y - targets[w]) * k2;
            if (o.augLoss) {
                epochSum += meanSquare(y, augTargets[w]);
                dy += (y - augTargets[w]) * k2;
            }
            grads.reset(q);
            bb.backward(q, dy, dx, &grads);
            ++t;
            for (int k = 0; k < kLinearCount; ++k) {
                if (!o.specs[size_t(k)]) continue;
                const RowMatrix& dWq = grads.weight[size_t(k)];
                Eigen::MatrixXf dg = Eigen::MatrixXf::Zero(clip.gamma[size_t(k)].rows(), clip.gamma[size_t(k)].cols());
                Eigen::MatrixXf db = dg;
                ClippedFakeQuant::backward(from[LinearKind(k)], *o.specs[size_t(k)], clip.gamma[size_t(k)],
                                           clip.beta[size_t(k)], ConstRowMap(dWq.data(), dWq.rows(), dWq.cols()), dg,
                                           db, let ? &dTransformed[size_t(k)] : nullptr, true);
                gammaOpt[size_t(k)].step(clip.gamma[size_t(k)], dg, o.lwcLr, o.weightDecay, t);
                betaOpt[size_t(k)].step(clip.beta[size_t(k)], db, o.lwcLr, o.weightDecay, t);
            }
            if (let) {
                letBackward(c, block, transformed, clip.let, grads.attnNorm, grads.mlpNorm, dTransformed, grads.bias,
                            dLet);
                const auto scales = clip.let.all();
                const auto dScales = std::as_const(dLet).all();
                for (size_t i = 0; i < scales.size(); ++i)
                    if (scales[i]->size()) letOpt[i].step(*scales[i], *dScales[i], o.letLr, o.weightDecay, t);
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
