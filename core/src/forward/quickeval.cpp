#include "quantlens/forward/quickeval.h"

#include "quantlens/base/threadscope.h"
#include "quantlens/forward/forward.h"

#include <chrono>
#include <cmath>

namespace ql {

Expected<QuickEvaluator> QuickEvaluator::prepare(const Model& model, const std::vector<int32_t>& tokens, int bos,
                                                 const EvalOptions& opt, Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    QL_TRY(checkSequenceLength(model.config(), opt.ctx, opt.beyondTrainedPositions, "context"));
    auto windows = makeWindows(tokens, bos, opt);
    if (!windows) return windows.error();
    QuickEvaluator q;
    q.m_config = model.config();
    q.m_opt = opt;
    q.m_windows = std::move(*windows);
    q.m_first = q.m_windows[0].firstScored;
    q.m_scored = opt.ctx - 1 - q.m_first;
    q.m_refs.resize(q.m_windows.size());
    q.m_inputs.resize(size_t(q.m_config.layers) + 1);
    std::vector<std::vector<int32_t>> seqs;
    for (const EvalWindow& w : q.m_windows) seqs.push_back(w.tokens);
    ForwardEngine engine(q.m_config, model);
    ForwardOptions fo;
    fo.threads = opt.threads;
    fo.logitsFrom = q.m_first;
    QL_TRY(engine.run(
        seqs,
        [&](int s, const Eigen::MatrixXf& l) -> Expected<void> {
            q.m_refs[size_t(s)] = KlReference::fromLogits(l, q.m_scored, q.m_windows[size_t(s)].tokens, q.m_first);
            return {};
        },
        fo, fb));
    return q;
}

Expected<KlResult> QuickEvaluator::measure(const WeightSource& plan, int firstChanged, Feedback* fb)
{
    const ThreadScope threadScope(m_opt.threads);
    const auto t0 = std::chrono::steady_clock::now();
    const int layers = m_config.layers;
    const int start = std::clamp(std::min(firstChanged, m_validBlocks), 0, layers);
    std::vector<Eigen::MatrixXf> states;
    if (start == 0) {
        states.resize(m_windows.size());
        for (size_t w = 0; w < m_windows.size(); ++w) QL_TRY(plan.embed(m_windows[w].tokens, states[w]));
    } else {
        states = m_inputs[size_t(start)];
    }
    ForwardEngine engine(m_config, plan);
    ForwardOptions fo;
    fo.threads = m_opt.threads;
    fo.logitsFrom = m_first;
    fo.runtime = m_opt.runtime;
    for (int b = start; b < layers; ++b) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        m_inputs[size_t(b)] = states;
        m_validBlocks = b;
        QL_TRY(engine.runLayers(b, b + 1, states, fo));
        if (fb) fb->progress(double(b - start + 1) / double(layers - start + 1));
    }
    m_inputs[size_t(layers)] = states;
    m_validBlocks = layers;
    m_blocksRun = layers - start;

    KlAccumulator acc;
    QL_TRY(engine.runFrom(
        layers, states,
        [&](int s, const Eigen::MatrixXf& l) -> Expected<void> {
            acc.add(m_refs[size_t(s)], l, m_windows[size_t(s)].tokens, m_first);
            return {};
        },
        fo));
    KlResult r = acc.result();
    r.chunks = int(m_windows.size());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

} // namespace ql
