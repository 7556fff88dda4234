#include "quantlens/methods/autoround.h"

#include "quantlens/grad/blockgrad.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace ql {

namespace {

void signStep(float* p, const float* g, Eigen::Index n, float lr)
{
    for (Eigen::Index i = 0; i < n; ++i) p[i] -= g[i] > 0.f ? lr : (g[i] < 0.f ? -lr : 0.f);
}

// The learned parameters of every quantized linear.
struct Params {
    std::array<RowMatrix, kLinearCount> v;
    std::array<Eigen::MatrixXf, kLinearCount> minScale, maxScale;
};

} // namespace

void applyRounding(const BlockWeights& block, const BlockRounding& r, const AutoRoundOptions& o, BlockWeights& out)
{
    std::array<bool, kLinearCount> trained{};
    for (int k = 0; k < kLinearCount; ++k) trained[size_t(k)] = o.specs[size_t(k)].has_value();
    fillTrainedBlock(block, trained, out, [&](int k, const ConstRowMap& w, RowMatrix& q) {
        RoundingFakeQuant::forward(w, *o.specs[size_t(k)], r.v[size_t(k)], r.minScale[size_t(k)], r.maxScale[size_t(k)],
                                   q);
    });
}

Expected<BlockRounding> trainBlockRounding(const ModelConfig& c, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& inputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const AutoRoundOptions& o,
                                           Feedback* fb)
{
    if (inputs.empty() || inputs.size() != targets.size())
        return makeError("AutoRound: " + std::to_string(inputs.size()) + " input windows for " +
                         std::to_string(targets.size()) + " targets");
    if (o.iters < 0 || o.batch < 1 || o.lr < 0 || o.minmaxLr < 0)
        return makeError("AutoRound: iterations must be ≥ 0, the batch ≥ 1 and the learning rates ≥ 0");
    BlockRounding r;
    for (int k = 0; k < kLinearCount; ++k) {
        if (!o.specs[size_t(k)]) continue;
        const RoundQuantSpec& spec = *o.specs[size_t(k)];
        const ConstRowMap w = block[LinearKind(k)];
        if (!RoundingFakeQuant::fits(spec, w.cols()))
            return makeError("AutoRound: " + std::string(linearShortName(LinearKind(k))) + ": a grid of " +
                             std::to_string(spec.bits) + " bits in groups of " + std::to_string(spec.group) +
                             " (bits 2..8, group ≥ 0) over " + std::to_string(w.cols()) + " inputs");
        const Eigen::Index g = RoundingFakeQuant::groups(spec, w.cols());
        r.v[size_t(k)] = RowMatrix::Zero(w.rows(), w.cols());
        r.minScale[size_t(k)] = Eigen::MatrixXf::Ones(w.rows(), g);
        r.maxScale[size_t(k)] = Eigen::MatrixXf::Ones(w.rows(), g);
    }
    const double lr = o.lr > 0 ? o.lr : 1.0 / std::max(1, o.iters), mmLr = o.minmaxLr > 0 ? o.minmaxLr : lr;

    BlockBackward bb(c);
    BlockWeights q;
    BlockGradients grads;
    Eigen::MatrixXf y, dy, dx;
    auto evaluate = [&]() -> Expected<double> {
        applyRounding(block, r, o, q);
        return meanBlockMse(bb, q, inputs, targets);
    };
    auto before = evaluate();
    if (!before) return before.error();
    r.lossBefore = *before;

    std::mt19937_64 rng(o.seed);
    std::vector<size_t> order(inputs.size());
    const size_t pick = std::min(inputs.size(), size_t(o.batch));
    Params best;
    double bestLoss = INFINITY;
    RowMatrix dV;
    for (int it = 0; it < o.iters; ++it) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        // A fresh random permutation's first `pick` windows (AutoRound's rand sampler).
        std::iota(order.begin(), order.end(), size_t(0));
        if (pick < order.size())
            for (size_t i = 0; i < pick; ++i)
                std::swap(order[i], order[i + std::uniform_int_distribution<size_t>(0, order.size() - 1 - i)(rng)]);
        double elements = 0;
        for (size_t i = 0; i < pick; ++i) elements += double(targets[order[i]].size());
        applyRounding(block, r, o, q);
        grads.reset(q);
        double loss = 0;
        for (size_t i = 0; i < pick; ++i) {
            const size_t w = order[i];
            QL_TRY(bb.forward(q, inputs[w], y));
            dy = y - targets[w];
            loss += dy.cast<double>().squaredNorm();
            dy *= float(2.0 / elements); // torch's MSELoss over the whole batch, mean reduction
            bb.backward(q, dy, dx, &grads);
        }
        loss /= elements;
        r.iterLoss.push_back(loss);
        if ((o.keepBest && loss < bestLoss) || (!o.keepBest && it == o.iters - 1)) {
            bestLoss = loss;
            r.bestIter = it;
            best = Params{r.v, r.minScale, r.maxScale};
        }
        const float step = float(lr * (1.0 - double(it) / o.iters)),
                    mmStep = float(mmLr * (1.0 - double(it) / o.iters));
        for (int k = 0; k < kLinearCount; ++k) {
            if (!o.specs[size_t(k)]) continue;
            const RowMatrix& dW = grads.weight[size_t(k)];
            Eigen::MatrixXf dMin = Eigen::MatrixXf::Zero(r.minScale[size_t(k)].rows(), r.minScale[size_t(k)].cols());
            Eigen::MatrixXf dMax = dMin;
            RoundingFakeQuant::backward(block[LinearKind(k)], *o.specs[size_t(k)], r.v[size_t(k)],
                                        r.minScale[size_t(k)], r.maxScale[size_t(k)],
                                        ConstRowMap(dW.data(), dW.rows(), dW.cols()), dV, dMin, dMax);
            signStep(r.v[size_t(k)].data(), dV.data(), dV.size(), step);
            signStep(r.minScale[size_t(k)].data(), dMin.data(), dMin.size(), mmStep);
            signStep(r.maxScale[size_t(k)].data(), dMax.data(), dMax.size(), mmStep);
            r.minScale[size_t(k)] = r.minScale[size_t(k)].cwiseMax(0.f).cwiseMin(1.f);
            r.maxScale[size_t(k)] = r.maxScale[size_t(k)].cwiseMax(0.f).cwiseMin(1.f);
        }
        if (fb) fb->progress(double(it + 1) / o.iters);
    }
    if (r.bestIter >= 0) {
        r.v = std::move(best.v);
        r.minScale = std::move(best.minScale);
        r.maxScale = std::move(best.maxScale);
    }
    auto after = evaluate();
    if (!after) return after.error();
    r.lossAfter = *after;
    return r;
}

} // namespace ql
