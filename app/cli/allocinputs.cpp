#include "allocinputs.h"

#include "quantlens/store/analysisstore.h"
#include "quantlens/text/calibration.h"

namespace ql::cli {

Expected<AnalysisResult> readAnalysisFor(const Model& model, const std::string& path, const std::string& modelDir)
{
    auto analysis = AnalysisStore::read(path);
    if (!analysis) return analysis.error();
    auto sha = sha256OfFiles(model.weightFiles());
    if (!sha) return sha.error();
    if (analysis->meta.modelSha256 != *sha)
        return makeError(path + ": an analysis of other weights (sha256 " + analysis->meta.modelSha256.substr(0, 12) +
                         "…; " + modelDir + " has " + sha->substr(0, 12) + "…)");
    return analysis;
}

Expected<int64_t> parseBudget(const std::string& text, const Model& model)
{
    const int64_t linear = linearWeights(model.linearLayers()), other = model.parameterCount() - linear;
    size_t end = 0;
    double v = 0;
    try {
        v = std::stod(text, &end);
    } catch (...) {
        end = 0;
    }
    const std::string unit = text.substr(end);
    if (end == 0 || !(v > 0))
        return makeError("--budget must be a positive number with bpw, GB, MB or B, got '" + text + "'");
    if (unit == "bpw") return int64_t(v * double(linear));
    const double scale = unit == "GB" ? 1e9 : unit == "MB" ? 1e6 : unit == "B" ? 1.0 : 0.0;
    if (scale == 0) return makeError("--budget unit must be bpw, GB, MB or B, got '" + unit + "'");
    const double bits = v * scale * 8.0 - 16.0 * double(other);
    if (bits <= 0)
        return makeError("--budget " + text + " does not even hold the model's " + std::to_string(other) +
                         " other weights at 16 bits");
    return int64_t(bits);
}

} // namespace ql::cli
