#include "quantlens/export/imatrixsensitivity.h"

#include "quantlens/analysis/statscollector.h"
#include "quantlens/base/threadscope.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/text/calibration.h"

#include <chrono>
#include <cmath>

namespace ql {

LayerSensitivity diagonalSensitivity(const std::string& name, Eigen::Ref<const RowMatrix> w,
                                     const std::vector<float>& h, double n, const std::vector<int>& bits, int groupSize)
{
    LayerSensitivity s;
    s.name = name;
    const Eigen::ArrayXd hv = Eigen::Map<const Eigen::ArrayXf>(h.data(), Eigen::Index(h.size())).cast<double>();
    // Σ_ij W_ij² h_j: tr(W diag(h) Wᵀ), in double row by row (the terms span many decades).
    auto weighted = [&](const RowMatrix& m) {
        double sum = 0;
        for (Eigen::Index r = 0; r < m.rows(); ++r)
            sum += (m.row(r).transpose().cast<double>().array().square() * hv).sum();
        return sum;
    };
    const double signal = weighted(w);
    for (int b : bits) {
        const double err = weighted(rtnFakeQuant(w, b, groupSize) - w);
        s.bits.push_back(b);
        s.proxy.push_back(n > 0 ? err / n : err);
        s.relMse.push_back(signal > 0 ? err / signal : 0.0);
        s.sqnrDb.push_back(err > 0 ? 10.0 * std::log10(signal / err) : INFINITY);
    }
    return s;
}

Expected<AnalysisResult> analyzeImatrix(const Model& model, const ImportanceMatrix& im, const std::string& sha,
                                        const AnalyzeOptions& opt, Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    for (int b : opt.bits)
        if (auto id = intFormatId(b, false); !id) return makeError("sensitivity bits: " + id.error().message);
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
    AnalysisResult result;
    AnalysisMeta& meta = result.meta;
    meta.quantlensVersion = QL_VERSION;
    meta.modelDir = model.dir();
    meta.modelSha256 = opt.modelSha256;
    if (meta.modelSha256.empty()) {
        auto hash = sha256OfFiles(model.weightFiles());
        if (!hash) return hash.error();
        meta.modelSha256 = *hash;
    }
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
