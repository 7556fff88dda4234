#include "quantlens/grad/fisher.h"

#include "quantlens/base/threadscope.h"
#include "quantlens/grad/blockgrad.h"
#include "quantlens/grad/headgrad.h"

#include <algorithm>

namespace ql {

namespace {

constexpr size_t kBatch = 4; // windows whose block inputs are kept together (each block loaded once per batch)

} // namespace

double DiagonalFisher::sensitivity(int layer, LinearKind k, const Eigen::Ref<const RowMatrix>& weight,
                                   const Eigen::Ref<const RowMatrix>& quantized) const
{
    const RowMatrix& f = of(layer, k);
    return 0.5 * (f.cast<double>().array() * (quantized - weight).cast<double>().array().square()).sum();
}

Expected<DiagonalFisher> DiagonalFisher::compute(const ModelConfig& c, const WeightSource& weights,
                                                 const std::vector<std::vector<int32_t>>& windows, int threads,
                                                 Feedback* fb)
{
    const ThreadScope scope(threads);
    if (windows.empty()) return makeError("Fisher: no calibration windows");
    for (size_t w = 0; w < windows.size(); ++w)
        if (windows[w].size() < 2)
            return makeError("Fisher: window " + std::to_string(w) + " has fewer than two tokens, nothing to predict");
    DiagonalFisher out;
    out.m_f.resize(size_t(c.layers));
    out.m_out.resize(size_t(c.layers));
    BlockWeights block;
    for (int l = 0; l < c.layers; ++l) {
        QL_TRY(weights.block(l, block));
        for (int k = 0; k < kLinearCount; ++k) {
            const ConstRowMap wk = block[LinearKind(k)];
            out.m_f[size_t(l)][size_t(k)] = RowMatrix::Zero(wk.rows(), wk.cols());
            out.m_out[size_t(l)][size_t(k)] = Eigen::VectorXf::Zero(wk.rows());
        }
    }
    auto norm = weights.finalNorm();
    if (!norm) return norm.error();
    auto view = weights.lmHeadView();
    if (!view) return view.error();
    RowMatrix ownedHead;
    if (!*view) {
        auto h = weights.lmHead();
        if (!h) return h.error();
        ownedHead = std::move(*h);
    }
    const ConstRowMap head = *view ? **view : ConstRowMap(ownedHead.data(), ownedHead.rows(), ownedHead.cols());

    BlockBackward bb(c);
    HeadBackward hb;
    BlockGradients g;
    double lossSum = 0;
    // Per batch: every block's input for every window (hidden × T each).
    std::vector<std::vector<Eigen::MatrixXf>> inputs(size_t(c.layers));
    std::vector<Eigen::MatrixXf> dx;
    Eigen::MatrixXf y, dPrev;
    const double units = double(windows.size()) * 2 * c.layers;
    double done = 0;
    for (size_t b0 = 0; b0 < windows.size(); b0 += kBatch) {
        const size_t nb = std::min(kBatch, windows.size() - b0);
        std::vector<Eigen::MatrixXf> xs(nb);
        for (size_t s = 0; s < nb; ++s) QL_TRY(weights.embed(windows[b0 + s], xs[s]));
        for (int l = 0; l < c.layers; ++l) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            QL_TRY(weights.block(l, block));
            inputs[size_t(l)].resize(nb);
            for (size_t s = 0; s < nb; ++s) {
                inputs[size_t(l)][s] = xs[s];
                QL_TRY(bb.forward(block, xs[s], y));
                std::swap(xs[s], y);
            }
            if (fb) fb->progress((done += double(nb)) / units);
        }
        dx.resize(nb);
        std::vector<double> counts(nb);
        for (size_t s = 0; s < nb; ++s) {
            const std::vector<int32_t>& ids = windows[b0 + s];
            std::vector<int32_t> targets(ids.begin() + 1, ids.end());
            targets.push_back(-1);
            auto loss = hb.lossAndGradient(*norm, head, c.rmsEps, xs[s], targets, dx[s], nullptr);
            if (!loss) return loss.error();
            counts[s] = double(ids.size() - 1);
            lossSum += *loss * counts[s];
            out.m_tokens += int64_t(ids.size() - 1);
            dx[s] *= float(counts[s]); // the gradient of the window's summed loss
        }
        for (int l = c.layers - 1; l >= 0; --l) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            QL_TRY(weights.block(l, block));
            for (size_t s = 0; s < nb; ++s) {
                QL_TRY(bb.forward(block, inputs[size_t(l)][s], y)); // recompute the block's tape
                g.reset(block, true);
                bb.backward(block, dx[s], dPrev, &g);
                std::swap(dx[s], dPrev);
                for (int k = 0; k < kLinearCount; ++k) {
                    out.m_f[size_t(l)][size_t(k)].array() += g.weight[size_t(k)].array().square();
                    out.m_out[size_t(l)][size_t(k)] += g.outputSq[size_t(k)];
                }
            }
            if (fb) fb->progress((done += double(nb)) / units);
        }
    }
    const float inv = 1.0f / float(out.m_tokens);
    for (auto& layer : out.m_f)
        for (RowMatrix& f : layer) f *= inv;
    for (auto& layer : out.m_out)
        for (Eigen::VectorXf& f : layer) f *= inv;
    out.m_loss = lossSum / double(out.m_tokens);
    return out;
}

} // namespace ql
