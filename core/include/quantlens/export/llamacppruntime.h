#pragma once

// llama.cpp's CPU numerics around a GGUF model's weights (docs/gguf.md): each matrix product
// reads its input in the format the weight's type asks for (q8_0, q8_K, f16), and attention
// runs on an F16 KV cache. Evaluating through it predicts the perplexity llama.cpp reports.

#include "quantlens/export/ggmltype.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <array>
#include <memory>
#include <vector>

namespace ql {

/// The input format llama.cpp gives a matrix product whose weight has type t.
ActQuantSpec ggmlInputGrid(GgmlType t);

/// A GGUF model's weights with llama.cpp's input formats installed on every linear.
class LlamaCppRuntime final : public WeightSource {
public:
    /// weights is the file's model (OpenedModel) with its config; the types come from the file's
    /// tensor table.
    static Expected<LlamaCppRuntime> make(const WeightSource& weights, const GgufFile& file, const ModelConfig& config);

    /// Turns on the runtime's attention numerics and the lm_head's input format in opt.
    void apply(EvalOptions& opt) const;

    Expected<void> block(int i, BlockWeights& out) const override;
    Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const override
    {
        return m_weights->embed(ids, out);
    }
    Expected<Eigen::VectorXf> finalNorm() const override { return m_weights->finalNorm(); }
    Expected<RowMatrix> lmHead() const override { return m_weights->lmHead(); }
    Expected<std::optional<ConstRowMap>> lmHeadView() const override { return m_weights->lmHeadView(); }

private:
    const WeightSource* m_weights = nullptr;
    std::vector<std::array<ActQuantSpec, kLinearCount>> m_inputs; ///< per block and linear
    /// per block and linear: a q4_1/q5_1 weight's block minimums, in HF row order (else null)
    std::vector<std::array<std::shared_ptr<const RowMatrix>, kLinearCount>> m_mins;
    ActQuantSpec m_lmHeadInput;
    bool m_flashF16 = false;
};

} // namespace ql
