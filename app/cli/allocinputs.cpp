#include "allocinputs.h"

#include "quantlens/store/analysisstore.h"
#include "quantlens/text/calibration.h"

#include <map>

namespace ql::cli {

Expected<AllocatorFn> allocatorByName(const std::string& name)
{
    static const std::map<std::string, AllocatorFn> allocators{
        {"knapsack", [](const std::vector<AllocItem>& i, int64_t b) { return allocateKnapsack(i, b); }},
        {"greedy", allocateGreedy},
        {"baq", allocateBaq},
        {"entropy", allocateEntropy},
        {"spike", allocateSpikeAware},
        // HAWQ-style: the exact knapsack on the Hessian-trace × perturbation measure.
        {"hawq", [](const std::vector<AllocItem>& i, int64_t b) { return allocateKnapsack(i, b); }}};
    const auto it = allocators.find(name);
    if (it == allocators.end())
        return makeError("the allocator must be knapsack, greedy, baq, entropy, spike or hawq, got '" + name + "'");
    return it->second;
}

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

Expected<AllocMeasure> measureFor(const std::string& allocator, const std::string& requested,
                                  const AnalysisResult& analysis, std::string* name)
{
    if (allocator == "hawq" && !requested.empty() && requested != "hawq")
        return makeError("the hawq allocator uses its own measure; drop --measure");
    const bool hasKl = !analysis.sensitivity.empty() && !analysis.sensitivity.front().kl.empty();
    *name = allocator == "hawq" ? "hawq" : !requested.empty() ? requested : hasKl ? "kl" : "proxy";
    return parseAllocMeasure(*name);
}

int64_t linearWeights(const Model& model)
{
    int64_t n = 0;
    for (const LinearLayer& l : model.linearLayers()) n += l.outFeatures * l.inFeatures;
    return n;
}

Expected<int64_t> parseBudget(const std::string& text, const Model& model)
{
    const int64_t linear = linearWeights(model), other = model.parameterCount() - linear;
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
