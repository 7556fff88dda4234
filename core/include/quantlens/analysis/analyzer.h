#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/text/calibration.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/memoryestimate.h"
#include "quantlens/model/model.h"
#include "quantlens/analysis/statscollector.h"
#include "quantlens/quant/quantspec.h"

#include <functional>
#include <optional>
#include <string_view>

namespace ql {

/// Which sensitivity measures an analysis computes: Proxy the Hessian-based ones; Fisher those
/// and the diagonal-Fisher measure (a backward sweep over the calibration windows); Full all of
/// them and the end-to-end KL per layer and option.
enum class SensitivityMode { None, Proxy, Full, Fisher };
/// Whether a mode computes the diagonal-Fisher measure (Fisher and Full do).
inline bool computesFisher(SensitivityMode mode)
{
    return mode == SensitivityMode::Fisher || mode == SensitivityMode::Full;
}
/// "none", "proxy", "full" or "fisher".
const char* sensitivityModeName(SensitivityMode mode);
/// The mode a name spells ("none", "proxy", "full", "fisher"); nullopt for anything else.
std::optional<SensitivityMode> parseSensitivityMode(std::string_view name);

/// Settings of one analysis run.
struct AnalyzeOptions {
    StatsOptions stats;
    SensitivityMode sensitivity = SensitivityMode::Proxy;
    std::vector<int> bits{2, 3, 4, 8};
    int groupSize = 128;                     ///< RTN group for sensitivity; the whole row when the row is shorter
    std::vector<std::string> methods{"rtn"}; ///< sensitivity methods: "rtn", "gptq"
    std::vector<int> groups;                 ///< sensitivity groups (0: per row); empty: {groupSize}
    /// Full mode: KL per layer and width on the calibration set's held-out windows, restarting
    /// the forward pass at the layer's block.
    bool keepHessians = false;
    /// Full mode: the weights every other layer has while one layer's KL is measured (a quantized
    /// plan over this model, outliving the analysis); null: float. klContextName names it in the store.
    const WeightSource* klContext = nullptr;
    std::string klContextName;
    int threads = 0;
    std::string modelSha256;             ///< precomputed hash of the weight files; empty: computed here
    bool beyondTrainedPositions = false; ///< allow windows longer than max_position_embeddings
};

/// What analyze() will hold in memory for these options and windows, for estimateMemory.
MemoryJob analysisMemoryJob(const AnalyzeOptions& options, const CalibrationSpec& calibration);

/// What every analysis starts from, once the sensitivity widths are checked: meta naming this
/// build, the model and the hash of its weight files (options.modelSha256, or computed here).
Expected<AnalysisResult> beginAnalysis(const Model& model, const AnalyzeOptions& options, Feedback* feedback = nullptr);

/// Runs the calibration windows through the model once (block by block, one batch) and returns
/// statistics, weight statistics and, when asked, sensitivity; meta carries the hashes.
Expected<AnalysisResult> analyze(const Model& model, const CalibrationSet& calib, const AnalyzeOptions& options,
                                 Feedback* feedback = nullptr);

/// Sees option k's quantized weight while a layer's options are measured.
using OptionVisitor = std::function<Expected<void>(size_t k, const RowMatrix& quantized)>;

/// The options an analysis measures: every method × group × width, in that nesting.
std::vector<SensitivityOption> sensitivityOptions(const AnalyzeOptions& options);

/// The recipe spec of an option: its method at int<bits>_asym, in groups or per row.
Expected<QuantSpec> sensitivityOptionSpec(const SensitivityOption& option);

/// Proxy, relative output MSE, SQNR and ‖ΔW‖² of each option for one linear, from its site's
/// Hessian Σxxᵀ (as float for the measures; GPTQ options quantize with the site's own double
/// Hessian, with the method's default parameters, as a recipe would run them on float inputs).
/// visit, when set, sees each option's index and quantized weight (the end-to-end KL's input).
/// outputFisher, when set (the Fisher of each output, DiagonalFisher::outputsOf), adds the
/// output-Fisher measure ½·Σ_i F_out,i·(ΔW H ΔWᵀ)_ii / n from the proxy's own ΔW·H.
Expected<LayerSensitivity> measureLayerOptions(const std::string& name, Eigen::Ref<const RowMatrix> weight,
                                               const Eigen::VectorXf& bias, const SiteStats& site,
                                               const Eigen::MatrixXf& hessian,
                                               const std::vector<SensitivityOption>& options,
                                               const OptionVisitor& visit = {},
                                               const Eigen::VectorXf* outputFisher = nullptr);

/// measureLayerOptions' measures of RTN from the Hessian's diagonal h (Σx² per input feature, over n tokens), all
/// an importance matrix keeps; the bias is not modelled (an imatrix has no channel means).
LayerSensitivity diagonalSensitivity(const std::string& name, Eigen::Ref<const RowMatrix> weight,
                                     const std::vector<float>& h, double n, const std::vector<int>& bits,
                                     int groupSize);

} // namespace ql
