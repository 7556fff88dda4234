#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/forward/site.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <array>
#include <vector>

namespace ql {

/// Gradients of a decoder block's parameters, shaped like BlockWeights'.
struct BlockGradients {
    Eigen::VectorXf attnNorm;
    Eigen::VectorXf mlpNorm;
    std::array<RowMatrix, kLinearCount> weight;     ///< [out, in], as the weights
    std::array<Eigen::VectorXf, kLinearCount> bias; ///< empty where the layer has no bias
    /// Σ over tokens of (∂L/∂y)² per output of each linear (the diagonal Fisher of its outputs);
    /// accumulated only when reset() was asked for it, else empty.
    std::array<Eigen::VectorXf, kLinearCount> outputSq;

    /// Sets every gradient to zero with the shapes of w (and outputSq when withOutputs).
    void reset(const BlockWeights& w, bool withOutputs = false);
};

/// fp32 forward and backward of one decoder block on one sequence (hidden × tokens, positions
/// from 0): the same function as ForwardEngine's block, including its activation-quantization
/// and online-rotation hooks (a fake-quantized input is differentiated as OmniQuant's quantizer
/// is: fakeQuantizeActivationsBackward).
///
/// forward() keeps what backward() needs: the block's input, the norms' scales, the inputs of
/// the seven linears as they multiplied them, q and k after RoPE, v, the causal attention
/// probabilities of every head (heads × tokens² floats) and the MLP's pre-activations. A caller
/// short of memory keeps only block inputs and runs forward() again before backward(), which is
/// how the model-level passes recompute instead of storing.
class BlockBackward {
public:
    explicit BlockBackward(const ModelConfig& config);

    /// y = block(x); refuses hooks it has no gradient for (a runtime's q8_1 correction).
    Expected<void> forward(const BlockWeights& w, const Eigen::MatrixXf& x, Eigen::MatrixXf& y);
    /// From dy = ∂L/∂y of the last forward(), writes dx = ∂L/∂x and adds the parameter
    /// gradients to grads (null: input gradient only, the weight products are skipped).
    void backward(const BlockWeights& w, const Eigen::MatrixXf& dy, Eigen::MatrixXf& dx, BlockGradients* grads);
    /// The input linear k multiplied in the last forward() (fake-quantized where a hook says so).
    const Eigen::MatrixXf& linearInput(LinearKind k) const;

private:
    void attentionForward(Eigen::Index n);
    void attentionBackward(const Eigen::MatrixXf& dOut, Eigen::MatrixXf& dq, Eigen::MatrixXf& dk,
                           Eigen::MatrixXf& dv) const;

    const ModelConfig& m_config;
    Eigen::MatrixXf m_cos, m_sin;
    // The tape of the last forward().
    Eigen::MatrixXf m_x, m_mid;                                 // block input; residual stream after attention
    Eigen::VectorXf m_r1, m_r2;                                 // 1/rms per token of x and of mid
    std::array<Eigen::MatrixXf, kSiteCount> m_site;             // attn_in, o_in, mlp_in, down_in as published
    std::array<Eigen::MatrixXf, kLinearCount> m_quantInput;     // fake-quantized inputs where hooks ask
    std::array<const Eigen::MatrixXf*, kLinearCount> m_input{}; // what each linear multiplied
    Eigen::MatrixXf m_q, m_k, m_v, m_g, m_u;                    // q, k after RoPE; v; gate and up outputs
    std::vector<Eigen::MatrixXf> m_probs;                       // per head, keys × queries (zero above the diagonal)
};

/// Adds the RMSNorm backward: from dy = ∂L/∂(w ⊙ x·r) with r = 1/rms(x) per column, adds
/// ∂L/∂x to dx and, when dw is not null, ∂L/∂w to dw.
void rmsNormBackward(const Eigen::MatrixXf& x, const Eigen::VectorXf& r, const Eigen::VectorXf& w,
                     const Eigen::MatrixXf& dy, Eigen::MatrixXf& dx, Eigen::VectorXf* dw);

/// The mean over windows of MSE(block w (inputs[i]), targets[i]): the output error the
/// block-training methods minimise, measured on every window.
Expected<double> meanBlockMse(BlockBackward& bb, const BlockWeights& w, const std::vector<Eigen::MatrixXf>& inputs,
                              const std::vector<Eigen::MatrixXf>& targets);

/// Copies everything of block but its linear weights into out (norms, biases, forward hooks);
/// the methods that train a block's weights fill those themselves.
void copyBlockFrame(const BlockWeights& block, BlockWeights& out);

/// out = block with the linears a method trains replaced: for each k with trained[k],
/// fill(k, block[k], out.storage[k]) writes the weight; every other linear views block's own.
template <class Fill>
void fillTrainedBlock(const BlockWeights& block, const std::array<bool, kLinearCount>& trained, BlockWeights& out,
                      Fill&& fill)
{
    copyBlockFrame(block, out);
    for (int k = 0; k < kLinearCount; ++k) {
        const ConstRowMap w = block[LinearKind(k)];
        if (!trained[size_t(k)]) {
            out.setView(LinearKind(k), w.data(), w.rows(), w.cols());
            continue;
        }
        fill(k, w, out.storage[size_t(k)]);
        out.useStorage(LinearKind(k));
    }
}

/// 1/sqrt(mean(x²) + eps) of every column of x.
Eigen::VectorXf inverseRms(const Eigen::MatrixXf& x, float eps);

} // namespace ql
