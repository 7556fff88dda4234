#include "quantlens/export/imatrixsensitivity.h"

#include "quantlens/analysis/statscollector.h"
#include "quantlens/base/threadscope.h"
#include "quantlens/export/ggufexport.h"

#include <chrono>

namespace ql {

Expected<AnalysisResult> analyzeImatrix(const Model& model, const ImportanceMatrix& im, const std::string& sha,
                                        const AnalyzeOptions& opt, Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    // Every linear must have its entry, of its width: a matrix from another model is refused, named.
    std::vector<const ImportanceMatrix::Entry*> entries;
    for (const LinearLayer& l : model.linearLayers()) {
        const std::string key = ggufLinearName(l.block, l.kind);
        const auto it = im.entries.find(key);
        if (it == im.entries.end())
            return makeError("the importance matrix has no entry " + key + " (for " + l.name +
                             "); is it from another model?");
        if (Eigen::Index(it->second.sumSquares.size()) != l.inFeatures)
            return makeError("importance matrix entry " + key + " has " + std::to_string(it->second.sumSquares.size()) +
                             " values; " + l.name + " has " + std::to_string(l.inFeatures) +
                             " input features (from another model?)");
        entries.push_back(&it->second);
    }
    auto started = beginAnalysis(model, opt, fb);
    if (!started) return started.error();
    AnalysisResult result = std::move(*started);
    AnalysisMeta& meta = result.meta;
    meta.calibSha256 = sha;
    meta.samples = int(im.chunkCount);
    meta.seqlen = int(im.chunkSize);
    meta.sampling = "imatrix";
    const auto t0 = std::chrono::steady_clock::now();
    BlockWeights block;
    int loaded = -1;
    const auto& linears = model.linearLayers();
    for (size_t i = 0; i < linears.size(); ++i) {
        const LinearLayer& l = linears[i];
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        if (loaded != l.block) {
            QL_TRY(model.block(l.block, block));
            loaded = l.block;
            if (fb) fb->message("sensitivity from the importance matrix: block " + std::to_string(l.block));
        }
        result.sensitivity.push_back(diagonalSensitivity(l.name, block[l.kind], entries[i]->sumSquares,
                                                         entries[i]->count, opt.bits, opt.groupSize));
        if (fb) fb->progress(double(i + 1) / double(linears.size()));
    }
    result.sensitivitySeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.weights = computeWeightStats(model);
    return result;
}

} // namespace ql
