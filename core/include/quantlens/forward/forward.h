#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/bf16gemm.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"
#include "quantlens/quant/actquant.h"

#include <Eigen/Core>

#include <array>
#include <functional>
#include <string>
#include <vector>

namespace ql {

/// One named intermediate of the forward pass, features × tokens (a column per token).
struct Activation {
    const std::string& name; ///< e.g. "layers.3.down_in"; see ForwardEngine for the list
    int layer;               ///< block index, -1 for the final norm output
    int sequence;            ///< index of the sequence in the batch passed to run()
    const Eigen::MatrixXf& x;
    BlockPoint point; ///< the point of the block (Output for the final norm)
};

/// Receives every named intermediate; statistics, Hessians and the pipeline subscribe here.
using ActivationObserver = std::function<void(const Activation&)>;

/// Receives a sequence's logits, vocab × (tokens from ForwardOptions::logitsFrom on).
using LogitsSink = std::function<Expected<void>(int sequence, const Eigen::MatrixXf& logits)>;

/// A runtime's numerics beyond its weights' formats (what `eval --runtime llamacpp` simulates);
/// all off by default, and the forward pass is then unchanged.
struct RuntimeNumerics {
    /// llama.cpp's attention numerics: k (after RoPE) and v rounded to fp16, as its F16 KV cache
    /// stores them; its CPU flash attention reads them back in fp32 with an fp32 query.
    bool kvCacheF16 = false;
    /// With kvCacheF16: llama.cpp's per-query CPU flash attention (what it runs when head_dim is
    /// not a multiple of its SIMD width): the query rounded to fp16, keys visited in order with an
    /// online softmax, and the output accumulated in fp16, rounded after every key.
    bool flashAttentionF16 = false;
    /// Simulated quantization of the lm_head's input (what a runtime does for its output weight).
    ActQuantSpec lmHeadInput;
    /// Every linear and the lm_head multiply bf16-rounded weights and inputs, accumulating in
    /// fp32, as a bf16 runtime does (and about three times as fast here; needs bf16::supported()).
    bool bf16Products = false;
};

/// Settings of one forward run.
struct ForwardOptions {
    int threads = 0;    ///< OpenMP threads; 0 keeps the current setting
    int logitsFrom = 0; ///< first position whose logits are computed (negative: from the end)
    bool computeLogits = true;
    /// runLayers only: in its last block, return as soon as this site ("attn_in", "o_in",
    /// "mlp_in" or "down_in") is published; the states are then left unfinished. For callers
    /// that only need a site's inputs.
    std::string stopAfterSite;
    RuntimeNumerics runtime; ///< a runtime's numerics to simulate (none by default)
};

/// Where a partial run of one block stopped: each sequence's value at a site. The residual
/// stream at that point stays in the caller's states.
struct BlockCheckpoint {
    int layer = -1;                      ///< -1: no checkpoint
    std::string site;                    ///< "attn_in", "o_in", "mlp_in" or "down_in"
    std::vector<Eigen::MatrixXf> values; ///< per sequence, features × tokens
};

/// fp32 decoder forward pass (RMSNorm, RoPE, GQA causal attention, SwiGLU), run block by
/// block over a batch of sequences so each block's weights are converted once per batch.
///
/// Intermediates emitted per block i (prefix "layers.i."): input, attn_in, q, k, v (after
/// projection, before RoPE), o_in, attn_out, mlp_in, gate, up, down_in, mlp_out, output;
/// then "final_norm" (layer -1).
///
/// Hooks of BlockWeights: with BlockWeights::actQuant set, a linear multiplies a fake-quantized
/// copy of its input, while the site (attn_in, o_in, mlp_in, down_in) is published unquantized.
/// With BlockWeights::downInputRotation set, down_in is published after the rotation, i.e. as
/// the input down_proj actually reads.
class ForwardEngine {
public:
    ForwardEngine(const ModelConfig& config, const WeightSource& weights);

    /// Calls observer for every intermediate of every sequence; pass nullptr to stop.
    void setObserver(ActivationObserver observer) { m_observer = std::move(observer); }
    /// Runs the sequences; logits go to sink (may be empty when logits are not wanted).
    Expected<void> run(const std::vector<std::vector<int32_t>>& sequences, const LogitsSink& sink,
                       const ForwardOptions& options = {}, Feedback* feedback = nullptr);
    /// Runs blocks firstLayer.. on hidden states (hidden × tokens each, the inputs of block
    /// firstLayer, updated in place), then the head; positions start at 0 in every sequence.
    Expected<void> runFrom(int firstLayer, std::vector<Eigen::MatrixXf>& states, const LogitsSink& sink,
                           const ForwardOptions& options = {}, Feedback* feedback = nullptr);
    /// Runs blocks [first, last) on hidden states in place (no head, no logits).
    Expected<void> runLayers(int first, int last, std::vector<Eigen::MatrixXf>& states,
                             const ForwardOptions& options = {}, Feedback* feedback = nullptr);
    /// Runs part of block `layer` on states: from the block's input, or from checkpoint when it
    /// holds this block (then states hold the residual stream it stopped at), up to
    /// options.stopAfterSite (the checkpoint then holds that site) or to the block's end (states
    /// then hold the block's output and the checkpoint is cleared). The block's weights are read
    /// again, so layers quantized since the checkpoint take part: how the pipeline runs each part
    /// of a block once instead of re-running it from the input for every site.
    Expected<void> runBlockPart(int layer, std::vector<Eigen::MatrixXf>& states, BlockCheckpoint& checkpoint,
                                const ForwardOptions& options = {}, Feedback* feedback = nullptr);
    /// Keeps the fp32 lm_head between runs (it is the largest single conversion).
    void setCacheLmHead(bool on) { m_cacheLmHead = on; }
    /// Number of floating-point operations run() performs for one sequence of n tokens
    /// with logits for `logitTokens` positions (attention counted as computed).
    double flopsPerSequence(int n, int logitTokens) const;
    /// The same for any model configuration, without an engine.
    static double flops(const ModelConfig& config, int n, int logitTokens);

private:
    Expected<void> layers(int first, int last, std::vector<Eigen::MatrixXf>& xs, const ForwardOptions& opt,
                          Feedback* fb, double units);
    void runBlock(int layer, const BlockWeights& w, Eigen::MatrixXf& x, int seq);
    /// Causal attention of every head as llama.cpp's per-query flash attention computes it
    /// (RuntimeNumerics::flashAttentionF16); q, k, v are features × tokens after RoPE.
    void flashAttentionF16(const Eigen::MatrixXf& q, const Eigen::MatrixXf& k, const Eigen::MatrixXf& v,
                           Eigen::MatrixXf& out, float scale) const;
    bool stopHere(int layer, int slot) const { return layer == m_stopLayer && slot == m_stopSlot; }
    void publish(int layer, int slot, int seq, const Eigen::MatrixXf& x);
    /// Takes RuntimeNumerics::bf16Products; an error when this CPU cannot run it.
    Expected<void> useBf16(const RuntimeNumerics& runtime);

    const ModelConfig& m_config;
    const WeightSource& m_weights;
    ActivationObserver m_observer;
    std::vector<std::vector<std::string>> m_names;
    std::string m_finalName = "final_norm";
    bool m_cacheLmHead = false;
    int m_stopLayer = -1, m_stopSlot = -1;                  ///< see ForwardOptions::stopAfterSite
    bool m_kvF16 = false;                                   ///< see RuntimeNumerics::kvCacheF16
    bool m_flashF16 = false;                                ///< see RuntimeNumerics::flashAttentionF16
    int m_startSlot = 0;                                    ///< runBlockPart: the slot the block resumes after
    BlockCheckpoint* m_checkpoint = nullptr;                ///< runBlockPart: read at the start, written at the stop
    bool m_bf16 = false;                                    ///< see RuntimeNumerics::bf16Products
    std::array<bf16::PackedWeights, kLinearCount> m_packed; ///< the block's weights, with m_bf16
    bf16::PackedInput m_packedIn;
    RowMatrix m_lmHead;
    Eigen::VectorXf m_finalNorm;
    BlockWeights m_block;
    // Scratch reused across sequences and blocks.
    Eigen::MatrixXf m_h, m_q, m_k, m_v, m_attn, m_o, m_g, m_u;
    Eigen::MatrixXf m_xq;  // fake-quantized linear input (activation-quantization hook)
    Eigen::MatrixXf m_q81; // q8_1 block-sum correction (BlockWeights::q8_1Mins)
    Eigen::MatrixXf m_cos, m_sin;
    Eigen::MatrixXf m_logits; // kept: a vocabulary-sized allocation per sequence costs page faults
};

} // namespace ql
