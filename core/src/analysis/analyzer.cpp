#include "quantlens/analysis/analyzer.h"
#include "quantlens/base/threadscope.h"

#include "quantlens/analysis/endtoend.h"
#include "quantlens/forward/forward.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/rtn.h"

#include <chrono>
#include <cmath>
#include <map>

namespace ql {

namespace {

// One width's measures from the error ||ΔW X||², the signal ||W X||² and the token count.
void addWidth(LayerSensitivity& s, int bits, double err, double signal, double n)
{
    s.bits.push_back(bits);
    s.proxy.push_back(n > 0 ? err / n : err);
    s.relMse.push_back(signal > 0 ? err / signal : 0.0);
    s.sqnrDb.push_back(err > 0 ? 10.0 * std::log10(signal / err) : INFINITY);
}

} // namespace

LayerSensitivity layerSensitivity(const std::string& name, Eigen::Ref<const RowMatrix> w, const Eigen::VectorXf& bias,
                                  const SiteStats& site, const Eigen::MatrixXf& h, const std::vector<int>& bits,
                                  int groupSize)
{
    LayerSensitivity s;
    s.name = name;
    const double n = double(site.nTokens);
    // ||W X + b||² = tr(W H Wᵀ) + 2 bᵀ W Σx + n ||b||², with H = Σ x xᵀ and Σx = n · mean.
    const Eigen::MatrixXf wh = w * h;
    double signal = (wh.cwiseProduct(w)).cast<double>().sum();
    if (bias.size()) {
        const Eigen::VectorXd sumX = site.mean.cast<double>() * n;
        signal += 2.0 * bias.cast<double>().dot(w.cast<double>() * sumX) + n * bias.cast<double>().squaredNorm();
    }
    for (int b : bits) {
        const RowMatrix dw = rtnFakeQuant(w, b, groupSize) - w;
        // ||ΔW X||² = tr(ΔW H ΔWᵀ): the GPTQ objective of this quantization, from the Hessian.
        const Eigen::MatrixXf dh = dw * h;
        addWidth(s, b, std::max(0.0, (dh.cwiseProduct(dw)).cast<double>().sum()), signal, n);
    }
    return s;
}

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
    for (int b : bits) addWidth(s, b, weighted(rtnFakeQuant(w, b, groupSize) - w), signal, n);
    return s;
}

namespace {

// KL of every linear at every width on the held-out windows, and how the proxies rank against it.
Expected<void> endToEndSensitivity(const Model& model, const CalibrationSet& calib, const AnalyzeOptions& opt,
                                   AnalysisResult& result, Feedback* fb)
{
    const auto t0 = std::chrono::steady_clock::now();
    if (fb)
        fb->message("end-to-end sensitivity: float reference on " + std::to_string(calib.heldOutWindows.size()) +
                    " held-out windows");
    auto e2e = EndToEndSensitivity::prepare(model, calib.heldOutWindows, opt.threads);
    if (!e2e) return e2e.error();
    std::map<std::string, const LinearLayer*> byName;
    for (const auto& l : model.linearLayers()) byName[l.name] = &l;
    BlockWeights block;
    int loaded = -1;
    const size_t total = result.sensitivity.size() * opt.bits.size();
    size_t done = 0;
    for (LayerSensitivity& ls : result.sensitivity) {
        const LinearLayer& l = *byName.at(ls.name);
        if (loaded != l.block) {
            QL_TRY(model.block(l.block, block));
            loaded = l.block;
        }
        const RowMatrix w = block[l.kind];
        ls.kl.clear();
        for (int b : opt.bits) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            if (fb) fb->message("end-to-end KL: " + ls.name + " at " + std::to_string(b) + " bits");
            const RowMatrix q = rtnFakeQuant(w, b, opt.groupSize);
            auto kl = e2e->klWithLinear(l.block, l.kind, q);
            if (!kl) return kl.error();
            ls.kl.push_back(*kl);
            if (fb) fb->progress(double(++done) / double(total));
        }
    }
    EndToEndSummary& s = result.endToEnd;
    s.windows = int(calib.heldOutWindows.size());
    s.seqlen = calib.spec.seqlen;
    s.tokens = e2e->tokens();
    s.heldOutSha256 = calib.heldOutSha256;
    for (size_t i = 0; i < opt.bits.size(); ++i) {
        std::vector<double> proxy, relMse, kl;
        for (const auto& ls : result.sensitivity) {
            proxy.push_back(ls.proxy[i]);
            relMse.push_back(ls.relMse[i]);
            kl.push_back(ls.kl[i]);
        }
        s.bits.push_back(opt.bits[i]);
        s.spearmanProxyKl.push_back(spearman(proxy, kl));
        s.spearmanRelMseKl.push_back(spearman(relMse, kl));
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return {};
}

} // namespace

const char* sensitivityModeName(SensitivityMode mode)
{
    switch (mode) {
    case SensitivityMode::None: return "none";
    case SensitivityMode::Proxy: return "proxy";
    case SensitivityMode::Full: return "full";
    }
    return "proxy";
}

std::optional<SensitivityMode> parseSensitivityMode(std::string_view name)
{
    for (SensitivityMode m : {SensitivityMode::None, SensitivityMode::Proxy, SensitivityMode::Full})
        if (name == sensitivityModeName(m)) return m;
    return std::nullopt;
}

Expected<AnalysisResult> beginAnalysis(const Model& model, const AnalyzeOptions& opt, Feedback* fb)
{
    if (opt.sensitivity != SensitivityMode::None)
        for (int b : opt.bits)
            if (auto id = intFormatId(b, false); !id) return makeError("sensitivity bits: " + id.error().message);
    AnalysisResult result;
    AnalysisMeta& meta = result.meta;
    meta.quantlensVersion = QL_VERSION;
    meta.modelDir = model.dir();
    meta.modelSha256 = opt.modelSha256;
    if (meta.modelSha256.empty()) {
        if (fb) fb->message("hashing the weight files");
        auto modelHash = sha256OfFiles(model.weightFiles());
        if (!modelHash) return modelHash.error();
        meta.modelSha256 = *modelHash;
    }
    return result;
}

Expected<AnalysisResult> analyze(const Model& model, const CalibrationSet& calib, const AnalyzeOptions& opt,
                                 Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    if (opt.sensitivity == SensitivityMode::Full && calib.heldOutWindows.empty())
        return makeError(
            "end-to-end sensitivity needs held-out windows (none were kept apart from the calibration text)");
    QL_TRY(checkSequenceLength(model.config(), calib.spec.seqlen, opt.beyondTrainedPositions,
                               "calibration window length"));
    auto started = beginAnalysis(model, opt, fb);
    if (!started) return started.error();
    AnalysisResult result = std::move(*started);
    AnalysisMeta& meta = result.meta;
    meta.calibSha256 = calib.sha256;
    meta.samples = calib.spec.samples;
    meta.seqlen = calib.spec.seqlen;
    meta.sampling = samplingName(calib.spec.sampling);
    meta.seed = calib.spec.seed;

    StatsOptions so = opt.stats;
    so.hessian = so.hessian || opt.sensitivity != SensitivityMode::None || opt.keepHessians;
    StatsCollector collector(model.config(), calib.windows, so);
    BlockWeights block;
    int blockLoaded = -1;
    Expected<void> sensitivityStatus;
    collector.setSiteCallback([&](SiteStats& site) {
        if (opt.sensitivity != SensitivityMode::None && sensitivityStatus) {
            if (blockLoaded != site.layer) {
                sensitivityStatus = model.block(site.layer, block);
                blockLoaded = site.layer;
            }
            const auto s0 = std::chrono::steady_clock::now();
            const Eigen::MatrixXf hessian = site.hessian.cast<float>(); // q/k/v and gate/up share it
            if (sensitivityStatus)
                for (const auto& l : model.linearLayers())
                    if (l.block == site.layer && l.site == site.name)
                        result.sensitivity.push_back(layerSensitivity(l.name, block[l.kind],
                                                                      block.bias[static_cast<int>(l.kind)], site,
                                                                      hessian, opt.bits, opt.groupSize));
            result.sensitivitySeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
        }
        if (!opt.keepHessians) site.hessian = Eigen::MatrixXd();
    });
    ForwardEngine engine(model.config(), model);
    engine.setObserver(collector.observer());
    ForwardOptions fo;
    fo.threads = opt.threads;
    fo.computeLogits = false;
    if (fb) fb->message("running " + std::to_string(calib.windows.size()) + " calibration windows");
    const auto t0 = std::chrono::steady_clock::now();
    QL_TRY(engine.run(calib.windows, {}, fo, fb));
    collector.finish(result.sites, result.residuals, result.massive);
    result.passSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!sensitivityStatus) return sensitivityStatus.error();
    result.weights = computeWeightStats(model);
    if (opt.sensitivity == SensitivityMode::Full) QL_TRY(endToEndSensitivity(model, calib, opt, result, fb));
    return result;
}

} // namespace ql
