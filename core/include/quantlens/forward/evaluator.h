#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/weights.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// Which perplexity convention to follow (REFERENCE.md, "Perplexity protocols").
enum class PplProtocol {
    LlamaCpp, ///< llama.cpp perplexity: BOS at each window start, score the second half
    Paper,    ///< GPTQ / papers: non-overlapping windows, score every token after the first
};

/// "llamacpp" or "paper".
const char* protocolName(PplProtocol p);

/// One evaluation window: its tokens and the positions whose next token is scored.
struct EvalWindow {
    std::vector<int32_t> tokens;
    int firstScored = 0; ///< logits at positions [firstScored, tokens.size()-1) predict the next token
};

/// Settings of a perplexity or KL run.
struct EvalOptions {
    PplProtocol protocol = PplProtocol::LlamaCpp;
    int ctx = 512;
    int chunks = -1; ///< windows to use; -1 = all that fit
    int threads = 0;
    int64_t maxBatchBytes = int64_t(512) << 20; ///< memory for the hidden states of a batch of windows
    bool beyondTrainedPositions = false;        ///< allow ctx > max_position_embeddings
    RuntimeNumerics runtime;                    ///< the evaluated model's runtime numerics (the reference's stay off)
};

/// Perplexity and what it was measured on.
struct PplResult {
    double ppl = 0;
    double meanNll = 0;   ///< nats per scored token
    double nllStdErr = 0; ///< standard error of meanNll over tokens
    PplProtocol protocol = PplProtocol::LlamaCpp;
    int ctx = 0;
    int chunks = 0;
    int64_t tokensScored = 0;
    int64_t tokensProcessed = 0;
    double seconds = 0;
    std::vector<double> chunkPpl;
};

/// KL divergence of a model's next-token distribution from a reference model's.
struct KlResult {
    double meanKl = 0; ///< mean over scored tokens of KL(P_ref || P_model), nats
    double maxKl = 0;
    double top1Agreement = 0; ///< fraction of tokens where both argmaxes agree
    double pplRef = 0;
    double pplModel = 0;
    int chunks = 0;
    int64_t tokensScored = 0;
    double seconds = 0;
};

/// Cuts a token stream into windows by protocol (bos < 0: the tokenizer adds none).
/// Errors when the text is too short for even one window.
Expected<std::vector<EvalWindow>> makeWindows(const std::vector<int32_t>& tokens, int bos, const EvalOptions& opt);

/// Floating-point operations of evaluating `windows` windows of opt.ctx tokens (the forward
/// pass with logits where they are scored), for an estimate before a long run.
double evaluationFlops(const ModelConfig& config, const EvalOptions& opt, int64_t windows);

/// The reference model's side of a KL measurement on one window, in the form every comparison
/// with it needs: KL(p || q) = Σ p log p − Σ p·z + lse(z)·Σ p for the model's logits z, so a
/// comparison reads the model's logits once and never forms its log-probabilities.
struct KlReference {
    Eigen::MatrixXf p;                ///< vocab × scored: probabilities (float exp of the log-softmax)
    Eigen::VectorXd pLogP;            ///< per position: Σ p·log p, log p taken in double
    Eigen::VectorXd pSum;             ///< per position: Σ p (1 up to rounding)
    Eigen::VectorXd nll;              ///< per position: −log p of the next token
    std::vector<Eigen::Index> argmax; ///< per position: the most likely token
    /// From the reference's logits [vocab, ≥ scored] at positions from `first` on (the first
    /// `scored` columns are used), each predicting the next token of `window`.
    static KlReference fromLogits(const Eigen::MatrixXf& logits, int scored, const std::vector<int32_t>& window,
                                  int first);
};

/// Running sums of a KL measurement over scored positions, shared by evaluateKl and the quick
/// evaluator so that both compute the same numbers.
struct KlAccumulator {
    double klSum = 0, nllRef = 0, nllModel = 0, maxKl = 0;
    int64_t agree = 0, tokens = 0;
    /// Adds a window: the model's logits [vocab, ≥ ref's positions] at the reference's positions
    /// (log-sum-exp and sums in double; the result does not depend on the thread count).
    void add(const KlReference& ref, const Eigen::MatrixXf& logits, const std::vector<int32_t>& window, int first);
    /// Means, perplexities and agreement so far (chunks and seconds left to the caller).
    KlResult result() const;
};

/// Perplexity of a model on tokens (the tokenized evaluation text, no special tokens).
Expected<PplResult> evaluatePerplexity(const ModelConfig& config, const WeightSource& weights,
                                       const std::vector<int32_t>& tokens, int bos, const EvalOptions& opt,
                                       Feedback* feedback = nullptr);

/// KL(reference || model) on the same windows; both models must share the vocabulary.
Expected<KlResult> evaluateKl(const ModelConfig& refConfig, const WeightSource& reference, const ModelConfig& config,
                              const WeightSource& model, const std::vector<int32_t>& tokens, int bos,
                              const EvalOptions& opt, Feedback* feedback = nullptr);

} // namespace ql
