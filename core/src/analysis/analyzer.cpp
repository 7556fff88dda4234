#include "quantlens/analysis/analyzer.h"

#include "quantlens/grad/fisher.h"
#include "quantlens/base/threadscope.h"

#include "quantlens/analysis/endtoend.h"
#include "quantlens/forward/forward.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/methods/gptqquantizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>

namespace ql {

namespace {

// One option's measures from the error ||ΔW X||², the signal ||W X||² and the token count.
void addWidth(LayerSensitivity& s, const SensitivityOption& o, double err, double signal, double n, double weightSq)
{
    s.bits.push_back(o.bits);
    s.methods.push_back(o.method);
    s.groups.push_back(o.group);
    s.weightSq.push_back(weightSq);
    s.proxy.push_back(n > 0 ? err / n : err);
    s.relMse.push_back(signal > 0 ? err / signal : 0.0);
    s.sqnrDb.push_back(err > 0 ? 10.0 * std::log10(signal / err) : INFINITY);
}

} // namespace

std::vector<SensitivityOption> sensitivityOptions(const AnalyzeOptions& opt)
{
    std::vector<SensitivityOption> out;
    const std::vector<int> groups = opt.groups.empty() ? std::vector<int>{opt.groupSize} : opt.groups;
    for (const std::string& m : opt.methods)
        for (int g : groups)
            for (int b : opt.bits) out.push_back({m, b, g});
    return out;
}

Expected<QuantSpec> sensitivityOptionSpec(const SensitivityOption& o)
{
    if (o.method != "rtn" && o.method != "gptq")
        return makeError("sensitivity method must be rtn or gptq, got '" + o.method + "'");
    if (o.group < 0) return makeError("sensitivity group " + std::to_string(o.group) + " is negative");
    auto format = intFormatId(o.bits, false);
    if (!format) return makeError("sensitivity bits: " + format.error().message);
    QuantSpec s;
    s.method = o.method;
    s.weight.format = *format;
    s.weight.granularity = o.group > 0 ? Granularity::PerGroup : Granularity::PerChannel;
    s.weight.groupSize = o.group;
    return s;
}

Expected<LayerSensitivity> measureLayerOptions(const std::string& name, Eigen::Ref<const RowMatrix> w,
                                               const Eigen::VectorXf& bias, const SiteStats& site,
                                               const Eigen::MatrixXf& h, const std::vector<SensitivityOption>& options,
                                               const OptionVisitor& visit, const Eigen::VectorXf* outputFisher)
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
    const GptqQuantizer gptq;
    std::optional<ParamMap> gptqParams;
    const RowMatrix weight = w;
    for (const SensitivityOption& o : options) {
        RowMatrix q;
        if (o.method == "gptq") {
            auto spec = sensitivityOptionSpec(o);
            if (!spec) return spec.error();
            if (site.hessian.rows() != w.cols())
                return makeError(name + ": a GPTQ sensitivity needs the Hessian of " + site.name);
            if (!gptqParams) {
                auto p = completeParams(gptq.parameters(), {}, "gptq");
                if (!p) return p.error();
                gptqParams = std::move(*p);
            }
            LayerInput in{name, &weight, &bias, &site, &site.hessian, site.nTokens, nullptr};
            auto r = gptq.quantize(in, *spec, *gptqParams);
            if (!r) return makeError(name + ", " + sensitivityOptionLabel(o) + ": " + r.error().message);
            q = std::move(r->dequantized);
        } else if (o.method == "rtn") {
            if (auto id = intFormatId(o.bits, false); !id) return makeError("sensitivity bits: " + id.error().message);
            q = rtnFakeQuant(w, o.bits, o.group);
        } else {
            return makeError("sensitivity method must be rtn or gptq, got '" + o.method + "'");
        }
        if (visit) QL_TRY(visit(s.bits.size(), q));
        const RowMatrix dw = q - weight;
        // ||ΔW X||² = tr(ΔW H ΔWᵀ): the GPTQ objective of this quantization, from the Hessian.
        const Eigen::MatrixXf dh = dw * h;
        addWidth(s, o, std::max(0.0, (dh.cwiseProduct(dw)).cast<double>().sum()), signal, n,
                 dw.cast<double>().squaredNorm());
        if (outputFisher) {
            const Eigen::VectorXd rowErr = dh.cwiseProduct(dw).rowwise().sum().cast<double>() / n;
            s.fisherOut.push_back(0.5 * outputFisher->cast<double>().dot(rowErr));
        }
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
    for (int b : bits) {
        const RowMatrix dw = rtnFakeQuant(w, b, groupSize) - w;
        addWidth(s, {"rtn", b, groupSize}, weighted(dw), signal, n, dw.cast<double>().squaredNorm());
    }
    return s;
}

namespace {

// How the cheap measures rank layers against the end-to-end KL, per option.
void endToEndSummary(const Model& model, const CalibrationSet& calib, const EndToEndSensitivity& e2e,
                     AnalysisResult& result)
{
    std::map<std::string, const SiteStats*> sites;
    for (const SiteStats& st : result.sites) sites[st.name] = &st;
    std::map<std::string, double> meanSquare; // HAWQ: the input Hessian's mean diagonal over n
    for (const LinearLayer& l : model.linearLayers())
        if (const auto st = sites.find(l.site); st != sites.end()) meanSquare[l.name] = inputMeanSquare(*st->second);
    EndToEndSummary& s = result.endToEnd;
    s.windows = int(calib.heldOutWindows.size());
    s.seqlen = calib.spec.seqlen;
    s.tokens = e2e.tokens();
    s.heldOutSha256 = calib.heldOutSha256;
    const std::vector<LayerSensitivity>& sens = result.sensitivity;
    for (size_t i = 0; !sens.empty() && i < sens.front().bits.size(); ++i) {
        std::vector<double> proxy, relMse, hawq, kl, fisher, fisherOut;
        for (const auto& ls : sens) {
            proxy.push_back(ls.proxy[i]);
            relMse.push_back(ls.relMse[i]);
            hawq.push_back(meanSquare[ls.name] * ls.weightSq[i]);
            kl.push_back(ls.kl[i]);
            if (!ls.fisher.empty()) fisher.push_back(ls.fisher[i]);
            if (!ls.fisherOut.empty()) fisherOut.push_back(ls.fisherOut[i]);
        }
        s.bits.push_back(sens.front().bits[i]);
        s.options.push_back(sensitivityOptionLabel(sens.front().option(i)));
        s.spearmanProxyKl.push_back(spearman(proxy, kl));
        s.spearmanRelMseKl.push_back(spearman(relMse, kl));
        s.spearmanHawqKl.push_back(spearman(hawq, kl));
        if (fisher.size() == kl.size()) s.spearmanFisherKl.push_back(spearman(fisher, kl));
        if (fisherOut.size() == kl.size()) s.spearmanFisherOutKl.push_back(spearman(fisherOut, kl));
    }
}

} // namespace

const char* sensitivityModeName(SensitivityMode mode)
{
    switch (mode) {
    case SensitivityMode::None: return "none";
    case SensitivityMode::Proxy: return "proxy";
    case SensitivityMode::Full: return "full";
    case SensitivityMode::Fisher: return "fisher";
    }
    return "proxy";
}

std::optional<SensitivityMode> parseSensitivityMode(std::string_view name)
{
    for (SensitivityMode m :
         {SensitivityMode::None, SensitivityMode::Proxy, SensitivityMode::Full, SensitivityMode::Fisher})
        if (name == sensitivityModeName(m)) return m;
    return std::nullopt;
}

Expected<AnalysisResult> beginAnalysis(const Model& model, const AnalyzeOptions& opt, Feedback* fb)
{
    if (opt.sensitivity != SensitivityMode::None)
        for (const SensitivityOption& o : sensitivityOptions(opt))
            if (auto spec = sensitivityOptionSpec(o); !spec) return spec.error();
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

MemoryJob analysisMemoryJob(const AnalyzeOptions& opt, const CalibrationSpec& calibration)
{
    const bool full = opt.sensitivity == SensitivityMode::Full;
    MemoryJob job;
    job.kind = MemoryJob::Kind::Analyze;
    job.windows = calibration.samples + (full ? calibration.heldOut : 0);
    job.seqlen = calibration.seqlen;
    job.sensitivity = opt.sensitivity != SensitivityMode::None;
    job.gptqSensitivity = std::find(opt.methods.begin(), opt.methods.end(), "gptq") != opt.methods.end();
    job.fisher = computesFisher(opt.sensitivity);
    job.heldOut = full ? calibration.heldOut : 0;
    job.keepHessians = opt.keepHessians;
    return job;
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

    // Full mode prepares the float reference on the held-out windows first, so that each option's
    // KL is measured from the weights the option quantized (GPTQ's need the site's Hessian) at the
    // time they exist, without keeping them.
    const auto e2eStart = std::chrono::steady_clock::now();
    std::optional<EndToEndSensitivity> e2e;
    double e2eSeconds = 0;
    if (opt.sensitivity == SensitivityMode::Full) {
        if (fb)
            fb->message("end-to-end sensitivity: float reference on " + std::to_string(calib.heldOutWindows.size()) +
                        " held-out windows");
        auto prepared = EndToEndSensitivity::prepare(model, calib.heldOutWindows, opt.threads, fb, opt.klContext);
        if (!prepared) return prepared.error();
        e2e.emplace(std::move(*prepared));
        e2eSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e2eStart).count();
    }
    // The Fisher's backward sweep over the calibration windows, before the pass that measures
    // each option (which then needs only each option's quantized weight).
    std::optional<DiagonalFisher> fisher;
    if (computesFisher(opt.sensitivity)) {
        if (fb) fb->message("Fisher: backward sweep over " + std::to_string(calib.windows.size()) + " windows");
        const auto f0 = std::chrono::steady_clock::now();
        auto f = DiagonalFisher::compute(model.config(), model, calib.windows, opt.threads, fb);
        if (!f) return f.error();
        fisher.emplace(std::move(*f));
        result.fisherSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count();
        result.fisherLoss = fisher->meanLoss();
    }
    const std::vector<SensitivityOption> options = sensitivityOptions(opt);
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
            for (const auto& l : model.linearLayers()) {
                if (!sensitivityStatus || l.block != site.layer || l.site != site.name) continue;
                std::vector<double> kl, fisherErr;
                OptionVisitor visit;
                if (e2e || fisher)
                    visit = [&](size_t k, const RowMatrix& q) -> Expected<void> {
                        if (fisher) fisherErr.push_back(fisher->sensitivity(l.block, l.kind, block[l.kind], q));
                        if (!e2e) return {};
                        if (fb && fb->isCanceled()) return makeError(canceledMessage());
                        if (fb) fb->message("end-to-end KL: " + l.name + ", " + sensitivityOptionLabel(options[k]));
                        const auto k0 = std::chrono::steady_clock::now();
                        auto v = e2e->klWithLinear(l.block, l.kind, q);
                        e2eSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - k0).count();
                        if (!v) return v.error();
                        kl.push_back(*v);
                        return {};
                    };
                auto ls = measureLayerOptions(l.name, block[l.kind], block.bias[static_cast<int>(l.kind)], site,
                                              hessian, options, visit,
                                              fisher ? &fisher->outputsOf(l.block, l.kind) : nullptr);
                if (!ls) {
                    sensitivityStatus = ls.error();
                    break;
                }
                ls->kl = std::move(kl);
                ls->fisher = std::move(fisherErr);
                result.sensitivity.push_back(std::move(*ls));
            }
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
    if (e2e) {
        endToEndSummary(model, calib, *e2e, result);
        result.endToEnd.context = opt.klContext ? opt.klContextName : std::string();
        result.endToEnd.contextKl = e2e->contextKl();
        result.endToEnd.seconds = e2eSeconds;
    }
    return result;
}

} // namespace ql
