#pragma once

// The plan editor's quick measure. A plan's KL to the float model on a few windows is measured
// again after every edit; most edits change one block, so the blocks before it need not run
// again: the evaluator keeps the float model's log-probabilities and the last measured plan's
// input to every block, and restarts from the first block an edit changed.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/model/model.h"

#include <Eigen/Core>

#include <vector>

namespace ql {

/// KL to the float model, top-1 agreement and perplexity of plans on fixed windows, recomputed
/// from the first changed block. Equals evaluateKl on the same windows (the same forward pass
/// and formulas), whichever block it restarts from.
class QuickEvaluator {
public:
    /// Cuts tokens into windows as evaluateKl does (opt.ctx, opt.chunks, opt.protocol) and runs
    /// the float model once over them, keeping its log-probabilities at the scored positions.
    static Expected<QuickEvaluator> prepare(const Model& model, const std::vector<int32_t>& tokens, int bos,
                                            const EvalOptions& opt, Feedback* feedback = nullptr);
    /// Measures plan (weights of the same architecture). Blocks before firstChanged are taken to
    /// be those of the plan measured last and are not run again (0: everything runs, as it does
    /// on the first call and whenever embeddings or norms may differ).
    Expected<KlResult> measure(const WeightSource& plan, int firstChanged = 0, Feedback* feedback = nullptr);
    /// Blocks the last measure ran (the rest came from the previous plan).
    int blocksRun() const { return m_blocksRun; }

private:
    QuickEvaluator() = default;

    ModelConfig m_config;
    EvalOptions m_opt;
    std::vector<EvalWindow> m_windows;
    int m_first = 0, m_scored = 0;
    std::vector<KlReference> m_refs;                    ///< per window
    std::vector<std::vector<Eigen::MatrixXf>> m_inputs; ///< per block, per window: the last plan's block input
    int m_validBlocks = 0;                              ///< m_inputs[0 .. m_validBlocks] hold the last plan's
    int m_blocksRun = 0;
};

} // namespace ql
