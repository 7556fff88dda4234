#pragma once

#include <Eigen/Core>

#include <array>

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// Statistics of one activation site (the input of a linear layer) over the calibration tokens.
/// Sites: layers.<i>.attn_in (q/k/v), layers.<i>.o_in, layers.<i>.mlp_in (gate/up), layers.<i>.down_in.
struct SiteStats {
    std::string name;
    int layer = 0;
    int64_t nTokens = 0;
    // Per channel, float32 [in_features]; moments are population moments.
    Eigen::VectorXf absmax, mean, var, kurtosis, min, max, p01, p25, p75, p99;
    /// Per channel E|x|, the activation salience AWQ ranks channels by; empty when read from a
    /// store written before it was kept.
    Eigen::VectorXf meanAbs;
    /// Per token: max |x| over channels, in calibration order (sample-major).
    std::vector<float> tokenAbsmax;
    /// Histogram of all values of the site: counts [bins], edges [bins + 1].
    std::vector<double> histCounts;
    std::vector<float> histEdges;
    double energyEntropyBits = 0; ///< llama.cpp imatrix estimator: p_c = E[x_c²] / Σ E[x_k²]
    double valueEntropyBits = 0;  ///< Shannon entropy of the value histogram
    double kurtosisSite = 0;      ///< excess kurtosis of all values of the site
    double absmaxSite = 0;
    double outlierThreshold = 20; ///< absmax / median absmax above which a channel is an outlier
    std::vector<int32_t> outlierChannels;
    /// Σ x xᵀ over tokens (not divided by n), double; empty unless requested.
    Eigen::MatrixXd hessian;
};

/// The residual stream after block `layer`.
struct ResidualStats {
    int layer = 0;
    Eigen::VectorXf absmax;         ///< per channel
    std::vector<float> tokenAbsmax; ///< per token
    /// The three largest |a| over all tokens and channels, descending (Sun et al.'s top-1/2/3).
    std::array<float, 3> top3{};
    /// Median over every 8th token (calibration order) of that token's median |a| across channels.
    float medianAbs = 0;
};

/// One massive activation (Sun et al. 2024): |a| > 100 and > 1000x the median |a| of its hidden state.
struct MassiveActivation {
    int layer = 0;
    int64_t token = 0; ///< index in calibration order (sample * seqlen + position)
    int32_t tokenId = 0;
    int32_t channel = 0;
    float value = 0;
};

/// Statistics of one weight matrix [out, in].
struct WeightStats {
    std::string name; ///< HF tensor name, e.g. model.layers.0.mlp.down_proj.weight
    Eigen::VectorXf rowAbsmax, rowStd;
    double kurtosis = 0;         ///< excess kurtosis of all weights
    double fracBeyond3Sigma = 0; ///< fraction of |w - mean| > 3 std
    /// Histogram of all weights: counts [bins], edges [bins + 1] (uniform over [min, max]).
    std::vector<double> histCounts;
    std::vector<float> histEdges;
};

/// One quantization a sensitivity measures: asymmetric integers of a width, by a method, in
/// groups along the input (0: one group per row; a group longer than the row is the row).
struct SensitivityOption {
    std::string method = "rtn"; ///< "rtn" or "gptq"
    int bits = 4;
    int group = 128;
    bool operator==(const SensitivityOption&) const = default;
};

/// E[x²] averaged over a site's channels (var + mean²): the input Hessian's mean diagonal over
/// the token count, HAWQ's trace per weight.
double inputMeanSquare(const SiteStats& site);

/// "rtn w3 g128", "gptq w4 row": how options are named in tables, plots and errors.
std::string sensitivityOptionLabel(const SensitivityOption& option);

/// Per-layer sensitivity to quantization options (method × width × group), parallel arrays.
struct LayerSensitivity {
    std::string name; ///< HF module name, e.g. model.layers.0.mlp.down_proj
    std::vector<int32_t> bits;
    std::vector<double> proxy;  ///< tr(ΔW H ΔWᵀ) / n_tokens
    std::vector<double> relMse; ///< ||Y - Ŷ||² / ||Y||² on calibration inputs
    std::vector<double> sqnrDb;
    std::vector<double> kl;           ///< end-to-end KL, empty when not computed
    std::vector<std::string> methods; ///< per option; stores without them measured RTN only
    std::vector<int32_t> groups;      ///< per option; stores without them measured groups of 128
    std::vector<double> weightSq;     ///< ||ΔW||²_F (HAWQ's perturbation); empty in older stores
    std::vector<double> fisher;       ///< ½·Σ F·ΔW² with F the diagonal empirical Fisher; empty when not computed
    std::vector<double> fisherOut; ///< ½·Σ_i F_out,i·(ΔW H ΔWᵀ)_ii / n, the output Fisher's; empty when not computed
    /// Option k (method and group default to RTN, 128 where the store has none).
    SensitivityOption option(size_t k) const;
};

/// Where an analysis came from; stored as root attributes of the analysis file.
struct AnalysisMeta {
    int schemaVersion = 1;
    std::string quantlensVersion;
    std::string modelDir;
    std::string modelSha256;
    std::string calibSha256;
    int samples = 0;
    int seqlen = 0;
    std::string sampling; ///< "contiguous" or "random"
    uint64_t seed = 0;
};

/// How end-to-end sensitivity was measured, and how well the cheap measures rank layers as it does.
struct EndToEndSummary {
    int windows = 0; ///< held-out windows (0: end-to-end sensitivity was not computed)
    int seqlen = 0;
    int64_t tokens = 0;                      ///< tokens each KL averages over
    std::string heldOutSha256;               ///< of the held-out windows' token ids
    std::vector<int32_t> bits;               ///< widths, parallel to the correlations
    std::vector<std::string> options;        ///< option labels, parallel to the correlations
    std::vector<double> spearmanProxyKl;     ///< over layers at each width: Hessian proxy vs KL
    std::vector<double> spearmanRelMseKl;    ///< over layers at each width: relative output MSE vs KL
    std::vector<double> spearmanHawqKl;      ///< over layers at each width: HAWQ's E[x²]·‖ΔW‖² vs KL
    std::vector<double> spearmanFisherKl;    ///< over layers at each width: ½·Σ F·ΔW² vs KL (empty: no Fisher)
    std::vector<double> spearmanFisherOutKl; ///< the same for the output Fisher's measure
    std::string context;                     ///< the plan around each measured layer ("": float)
    double contextKl = 0;                    ///< KL of that plan itself, same tokens
    double seconds = 0;                      ///< not stored
};

/// Everything one analysis produced.
struct AnalysisResult {
    AnalysisMeta meta;
    std::vector<SiteStats> sites;
    std::vector<ResidualStats> residuals;
    std::vector<MassiveActivation> massive;
    std::vector<WeightStats> weights;
    std::vector<LayerSensitivity> sensitivity;
    EndToEndSummary endToEnd;
    double passSeconds = 0;        ///< forward pass with statistics (and proxy sensitivity), not stored
    double sensitivitySeconds = 0; ///< of which sensitivity, not stored
    double fisherSeconds = 0;      ///< the Fisher's backward sweep, not stored
    double fisherLoss = 0;         ///< mean cross-entropy of the calibration windows from that sweep, not stored
};

} // namespace ql
