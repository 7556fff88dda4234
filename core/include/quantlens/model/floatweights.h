#pragma once

#include "quantlens/model/model.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <vector>

namespace ql {

class Feedback;

/// Every float weight of a model held in memory (fp32) and editable: what function-preserving
/// transforms rewrite, and a WeightSource the forward pass, the pipeline and exporters can read.
///
/// Each linear lives in its block's BlockWeights::storage[k]; edit it there. block() serves views
/// of that storage (valid while this object lives and the linear is not replaced) and copies of
/// norms, biases and forward hooks. The whole model is resident: about 4 bytes per parameter.
class FloatWeights final : public WeightSource {
public:
    /// Converts every tensor of the model to fp32 (each linear into its own storage).
    static Expected<FloatWeights> load(const Model& model, Feedback* feedback = nullptr);

    FloatWeights() = default;
    FloatWeights(const FloatWeights& other);
    FloatWeights& operator=(const FloatWeights& other);
    FloatWeights(FloatWeights&&) = default;
    FloatWeights& operator=(FloatWeights&&) = default;

    /// The model's configuration (tieEmbeddings turns false once the lm_head is untied). Keep
    /// this object in place while a ForwardEngine built on config() uses it.
    const ModelConfig& config() const { return m_config; }
    /// Number of decoder blocks.
    int layers() const { return static_cast<int>(m_blocks.size()); }
    /// Block i's weights and hooks, mutable; the linear views are refreshed to the storage.
    BlockWeights& blockWeights(int i);
    /// Linear k of block i, [out, in].
    RowMatrix& linear(int i, LinearKind k) { return m_blocks[size_t(i)].storage[static_cast<int>(k)]; }
    /// Linear k of block i, [out, in] (read-only).
    const RowMatrix& linear(int i, LinearKind k) const { return m_blocks[size_t(i)].storage[static_cast<int>(k)]; }
    /// Token embeddings [vocab, hidden].
    RowMatrix& embedding() { return m_embedding; }
    /// Token embeddings [vocab, hidden] (read-only).
    const RowMatrix& embedding() const { return m_embedding; }
    /// The final RMSNorm weight [hidden].
    Eigen::VectorXf& finalNormWeight() { return m_finalNorm; }
    /// The final RMSNorm weight [hidden] (read-only).
    const Eigen::VectorXf& finalNormWeight() const { return m_finalNorm; }
    /// True while the lm_head is the embedding matrix.
    bool lmHeadTied() const { return m_tied; }
    /// Gives the lm_head its own copy of the embedding (no-op when already untied).
    void untieLmHead();
    /// The output projection [vocab, hidden], mutable: unties it first.
    RowMatrix& lmHeadWeight();
    /// The output projection [vocab, hidden] (the embedding while tied).
    const RowMatrix& lmHeadWeight() const { return m_tied ? m_embedding : m_lmHead; }
    /// Checks every shape against config() and that no weight is NaN or infinite: the test a
    /// transform's result must pass.
    Expected<void> validate() const;

    Expected<void> block(int i, BlockWeights& out) const override;
    Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const override;
    Expected<Eigen::VectorXf> finalNorm() const override { return m_finalNorm; }
    Expected<RowMatrix> lmHead() const override { return lmHeadWeight(); }
    Expected<std::optional<ConstRowMap>> lmHeadView() const override
    {
        const RowMatrix& h = lmHeadWeight();
        return std::optional<ConstRowMap>(ConstRowMap(h.data(), h.rows(), h.cols()));
    }

private:
    void refreshViews();

    ModelConfig m_config;
    std::vector<BlockWeights> m_blocks;
    RowMatrix m_embedding;
    RowMatrix m_lmHead; ///< empty while tied
    Eigen::VectorXf m_finalNorm;
    bool m_tied = false;
};

} // namespace ql
