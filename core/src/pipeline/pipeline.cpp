#include "quantlens/pipeline/pipeline.h"

#include "pipeline/channeloverrides.h"
#include "quantlens/base/threadscope.h"
#include "quantlens/quant/blockquantizer.h"

#include "quantlens/forward/forward.h"
#include "quantlens/base/params.h"

#include <chrono>
#include <cstdio>
#include <sstream>

namespace ql {

namespace {

void appendFormat(std::ostringstream& s, const FormatSpec& f)
{
    s << f.format << '/' << int(f.granularity) << '/' << f.groupSize;
}

// What one site run collects: Σ x xᵀ, simple per-channel statistics and, when asked, the inputs.
struct SiteCapture {
    bool wantInputs = false;
    Eigen::MatrixXd hessian;
    Eigen::MatrixXf part;
    SiteStats stats;
    std::vector<Eigen::MatrixXf> inputs;

    void add(const Eigen::MatrixXf& x)
    {
        const Eigen::Index c = x.rows();
        if (hessian.size() == 0) {
            hessian = Eigen::MatrixXd::Zero(c, c);
            stats.absmax = Eigen::VectorXf::Zero(c);
            stats.min = Eigen::VectorXf::Constant(c, INFINITY);
            stats.max = Eigen::VectorXf::Constant(c, -INFINITY);
            stats.mean = Eigen::VectorXf::Zero(c);
        }
        // Float products over one window, sums in double (as the statistics pass does).
        part.noalias() = x * x.transpose();
        hessian += part.cast<double>();
        stats.min = stats.min.cwiseMin(x.rowwise().minCoeff());
        stats.max = stats.max.cwiseMax(x.rowwise().maxCoeff());
        stats.absmax = stats.min.cwiseAbs().cwiseMax(stats.max.cwiseAbs());
        stats.mean += x.rowwise().sum(); // divided by n at the end
        stats.nTokens += x.cols();
        if (wantInputs) inputs.push_back(x);
    }
    Eigen::MatrixXf joinedInputs() const
    {
        Eigen::Index n = 0;
        for (const auto& x : inputs) n += x.cols();
        Eigen::MatrixXf all(inputs.empty() ? 0 : inputs[0].rows(), n);
        n = 0;
        for (const auto& x : inputs) {
            all.middleCols(n, x.cols()) = x;
            n += x.cols();
        }
        return all;
    }
};

} // namespace

std::string specKey(const QuantSpec& spec)
{
    std::ostringstream s;
    s << spec.method << '|' << spec.skip << '|';
    appendFormat(s, spec.weight);
    s << "|p";
    for (const auto& [k, v] : spec.params) s << ':' << k << '=' << v.index() << paramValueText(v);
    s << "|c";
    for (const auto& c : spec.channels) {
        s << ':' << c.selector << '=' << c.selectorValue << '/';
        appendFormat(s, c.weight);
        for (int32_t ch : c.channels) s << ',' << ch;
    }
    s << "|a" << spec.activations.bits << spec.activations.perToken << spec.activations.symmetric;
    return s.str();
}

QuantPipeline::QuantPipeline(const Model& model, MethodLookup methods) : m_model(model), m_methods(std::move(methods))
{}

Expected<std::shared_ptr<QuantizedModel>> QuantPipeline::run(const std::map<std::string, QuantSpec>& specs,
                                                             const CalibrationSet& calib, const PipelineOptions& opt,
                                                             Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    const auto t0 = std::chrono::steady_clock::now();
    m_stats = {};
    const ModelConfig& cfg = m_model.config();

    // Check every spec before any work: unknown layers and methods, parameters.
    std::map<std::string, const LinearLayer*> byName;
    for (const auto& l : m_model.linearLayers()) byName[l.name] = &l;
    struct Job {
        const LinearLayer* layer;
        QuantSpec spec;
        const Quantizer* method;
    };
    std::map<std::pair<int, int>, Job> jobs; // (block, kind) -> job
    for (const auto& [name, spec] : specs) {
        auto it = byName.find(name);
        if (it == byName.end()) return makeError("quantize: the model has no linear layer " + name);
        if (spec.skip) continue;
        const Quantizer* q = m_methods ? m_methods(spec.method) : nullptr;
        if (!q)
            return makeError("quantize: layer " + name + " asks for method \"" + spec.method +
                             "\", which no plugin provides");
        auto params = completeParams(q->parameters(), spec.params, spec.method);
        if (!params) return makeError("quantize: layer " + name + ": " + params.message());
        Job job{it->second, spec, q};
        job.spec.params = std::move(*params);
        jobs.emplace(std::make_pair(it->second->block, static_cast<int>(it->second->kind)), std::move(job));
    }
    // A block method trains the block as a whole: every quantized linear of its block uses it,
    // with the same parameters (the formats may differ).
    std::map<int, const Job*> blockJobs; // block -> the first job of a block method there
    for (const auto& [key, job] : jobs)
        if (job.method->asBlockQuantizer() && !blockJobs.count(key.first)) blockJobs[key.first] = &job;
    for (const auto& [key, job] : jobs) {
        auto bj = blockJobs.find(key.first);
        if (bj == blockJobs.end()) continue;
        if (job.spec.method != bj->second->spec.method)
            return makeError("quantize: layer " + job.layer->name + " uses method " + job.spec.method + " but " +
                             bj->second->layer->name + " uses " + bj->second->spec.method +
                             ", which quantizes whole blocks: every quantized linear of block " +
                             std::to_string(key.first) + " must use it (or be skipped)");
        if (job.spec.params != bj->second->spec.params)
            return makeError("quantize: layers " + bj->second->layer->name + " and " + job.layer->name + " give " +
                             job.spec.method + " different parameters; a block method takes one set per block");
        if (!job.spec.channels.empty())
            return makeError("quantize: layer " + job.layer->name + ": " + job.spec.method +
                             " quantizes whole blocks and takes no salient-channel overrides");
    }

    const WeightSource& base = opt.base ? *opt.base : static_cast<const WeightSource&>(m_model);
    auto qm = std::make_shared<QuantizedModel>(m_model, base);
    ForwardEngine floatEngine(cfg, base), quantEngine(cfg, *qm);
    ForwardEngine& engine = opt.sequential ? quantEngine : floatEngine;
    ForwardOptions fo;
    fo.threads = opt.threads;
    // The calibration windows' residual stream in block statesBlock: its input, or where the
    // checkpoint's partial run stopped. Each part of a block runs once, with the layers quantized
    // so far, instead of re-running the block from its input for every site.
    std::vector<Eigen::MatrixXf> states;
    int statesBlock = -1;
    BlockCheckpoint checkpoint;
    // The calibration windows' embeddings: the input of block 0.
    auto embedWindows = [&](std::vector<Eigen::MatrixXf>& out) -> Expected<void> {
        out.resize(calib.windows.size());
        for (size_t s = 0; s < calib.windows.size(); ++s) QL_TRY(base.embed(calib.windows[s], out[s]));
        return {};
    };
    // Brings states to the input of block b (finishing a block left at a site on the way).
    auto statesTo = [&](int b) -> Expected<void> {
        if (statesBlock < 0) {
            QL_TRY(embedWindows(states));
            statesBlock = 0;
        }
        if (checkpoint.layer >= 0 && checkpoint.layer < b) {
            const int finished = checkpoint.layer;
            QL_TRY(engine.runBlockPart(finished, states, checkpoint, fo, nullptr));
            ++m_stats.blockParts;
            statesBlock = finished + 1;
        }
        if (statesBlock < b) {
            QL_TRY(engine.runLayers(statesBlock, b, states, fo, nullptr));
            m_stats.blockForwards += b - statesBlock;
            statesBlock = b;
        }
        return {};
    };
    // Block methods' targets: the float model's stream, kept apart from states in sequential
    // mode (in parallel mode states are that stream).
    std::vector<Eigen::MatrixXf> floatStates;
    int floatStatesBlock = -1;
    // Identity of what the next layer's inputs depend on: the calibration set, the mode and, in
    // sequential mode, every spec applied before it.
    std::string upstream = calib.sha256 + (opt.sequential ? "|sequential|" : "|parallel|") + opt.baseIdentity;
    // In sequential mode, the layers just applied become part of what follows them depends on.
    auto chainUpstream = [&](const std::vector<std::string>& keys) {
        if (!opt.sequential) return;
        std::string chain = upstream;
        for (const auto& k : keys) chain += "|" + k;
        upstream = sha256Hex(chain.data(), chain.size());
    };
    const double total = double(std::max<size_t>(1, jobs.size()));
    int done = 0;

    BlockWeights floatBlock;
    for (int b = 0; b < cfg.layers; ++b) {
        if (blockJobs.count(b)) {
            std::vector<Job*> group;
            for (int k = 0; k < kLinearCount; ++k)
                if (auto it = jobs.find({b, k}); it != jobs.end()) group.push_back(&it->second);
            // Each layer's key holds every spec of the block: the block is trained as one.
            std::string blockSpecs;
            for (Job* j : group) blockSpecs += j->layer->name + "#" + specKey(j->spec) + ";";
            std::vector<std::string> keys;
            bool allCached = true;
            for (Job* j : group) {
                keys.push_back(j->layer->name + "#block:" + blockSpecs + "#" + upstream);
                allCached = allCached && m_cache.count(keys.back());
            }
            if (!allCached) {
                if (calib.windows.empty())
                    return makeError("quantize: block " + std::to_string(b) + ": method " + group.front()->spec.method +
                                     " needs calibration data (give --calib FILE or a calibration file in the recipe)");
                if (fb && fb->isCanceled()) return makeError(canceledMessage());
                QL_TRY(statesTo(b));
                // The float stream to block b's output: the targets. In parallel mode states are
                // that stream, so the targets are also the next block's input.
                if (opt.sequential) {
                    if (floatStatesBlock < 0) {
                        QL_TRY(embedWindows(floatStates));
                        floatStatesBlock = 0;
                    }
                } else {
                    floatStates = states;
                    floatStatesBlock = b;
                }
                // The float model's activation maxima at block b's sites, seen on the way.
                std::array<Eigen::VectorXf, kSiteCount> floatAbsmax;
                floatEngine.setObserver([&](const Activation& a) {
                    if (a.layer != b) return;
                    for (int i = 0; i < kSiteCount; ++i) {
                        if (a.point != kSitePoints[size_t(i)]) continue;
                        const Eigen::VectorXf m = a.x.cwiseAbs().rowwise().maxCoeff();
                        Eigen::VectorXf& acc = floatAbsmax[size_t(i)];
                        acc = acc.size() ? acc.cwiseMax(m) : m;
                    }
                });
                auto ran = floatEngine.runLayers(floatStatesBlock, b + 1, floatStates, fo, nullptr);
                floatEngine.setObserver(nullptr);
                QL_TRY(ran);
                m_stats.blockForwards += b + 1 - floatStatesBlock;
                floatStatesBlock = b + 1;
                QL_TRY(base.block(b, floatBlock));
                BlockInput in;
                in.block = b;
                in.config = &cfg;
                in.weights = &floatBlock;
                in.inputs = &states;
                in.targets = &floatStates;
                in.floatAbsmax = &floatAbsmax;
                for (Job* j : group) {
                    const int k = static_cast<int>(j->layer->kind);
                    in.specs[size_t(k)] = &j->spec;
                    in.names[size_t(k)] = j->layer->name;
                    if (j->spec.activations.active()) floatBlock.actQuant[size_t(k)] = j->spec.activations;
                }
                const Job& first = *group.front();
                if (fb) fb->message("block " + std::to_string(b) + ": " + first.spec.method);
                SubFeedback sub(fb, double(done) / total, double(group.size()) / total);
                auto r = first.method->asBlockQuantizer()->quantizeBlock(in, first.spec.params, &sub);
                if (!r) return makeError("quantize: block " + std::to_string(b) + ": " + r.message());
                attachBlockLoss(*r);
                for (size_t i = 0; i < group.size(); ++i) {
                    auto& layer = r->layers[size_t(static_cast<int>(group[i]->layer->kind))];
                    if (!layer)
                        return makeError("quantize: block " + std::to_string(b) + ": method " + first.spec.method +
                                         " returned no result for " + group[i]->layer->name);
                    layer->report.notes.insert(layer->report.notes.end(), r->notes.begin(), r->notes.end());
                    m_cache[keys[i]] = std::make_shared<const LayerResult>(std::move(*layer));
                    ++m_stats.layersQuantized;
                }
                if (fb) {
                    char line[160];
                    std::snprintf(line, sizeof line, "block %d: %s output MSE %.6g -> %.6g", b,
                                  first.spec.method.c_str(), r->lossBefore, r->lossAfter);
                    fb->message(line);
                }
                if (!opt.sequential) { // the float block's output is the next block's input
                    std::swap(states, floatStates);
                    statesBlock = b + 1;
                }
            } else {
                m_stats.layersReused += int(group.size());
            }
            for (size_t i = 0; i < group.size(); ++i) {
                Job& j = *group[i];
                qm->setLayer(QuantizedLayer{j.layer->name, b, j.layer->kind, j.spec, m_cache.at(keys[i])});
                ++done;
            }
            if (fb) fb->progress(double(done) / total);
            chainUpstream(keys);
            continue;
        }
        bool blockLoaded = false; // converted once per block, and only when a layer needs it
        // The linears in true-sequential order, grouped by the site they read.
        for (const BlockPoint point : kSitePoints) {
            std::vector<Job*> group;
            for (LinearKind k : linearsReading(point)) {
                auto it = jobs.find({b, static_cast<int>(k)});
                if (it != jobs.end()) group.push_back(&it->second);
            }
            if (group.empty()) continue;
            std::vector<std::string> keys;
            bool needSite = false, needInputs = false;
            for (Job* j : group) {
                const bool usesInputs = j->method->needsHessian() || j->method->needsInputs() ||
                                        detail::needsSiteStatistics(j->spec);
                keys.push_back(j->layer->name + "#" + specKey(j->spec) + "#" +
                               (usesInputs ? upstream : "weights only|" + opt.baseIdentity));
                if (!m_cache.count(keys.back())) {
                    needSite = needSite || usesInputs;
                    needInputs = needInputs || j->method->needsInputs();
                }
            }
            SiteCapture capture;
            if (needSite && calib.windows.empty())
                return makeError("quantize: layer " + group.front()->layer->name + ": method " +
                                 group.front()->spec.method +
                                 (detail::needsSiteStatistics(group.front()->spec) ? " with a channel selector" : "") +
                                 " needs calibration data (give --calib FILE or a calibration file in the recipe)");
            if (needSite) {
                QL_TRY(statesTo(b));
                const std::string site = siteName(b, point);
                capture.wantInputs = needInputs;
                capture.stats.name = site;
                capture.stats.layer = b;
                engine.setObserver([&](const Activation& a) {
                    if (a.layer == b && a.point == point) capture.add(a.x);
                });
                ForwardOptions toSite = fo;
                toSite.stopAfterSite = pointName(point);
                auto ran = engine.runBlockPart(b, states, checkpoint, toSite, nullptr);
                engine.setObserver(nullptr);
                QL_TRY(ran);
                ++m_stats.blockParts;
                if (capture.stats.nTokens > 0) capture.stats.mean /= float(capture.stats.nTokens);
            }
            const Eigen::MatrixXf inputs = needInputs ? capture.joinedInputs() : Eigen::MatrixXf();
            for (size_t i = 0; i < group.size(); ++i) {
                Job& j = *group[i];
                if (fb && fb->isCanceled()) return makeError(canceledMessage());
                std::shared_ptr<const LayerResult> result;
                auto hit = m_cache.find(keys[i]);
                if (hit != m_cache.end()) {
                    result = hit->second;
                    ++m_stats.layersReused;
                } else {
                    if (!blockLoaded) {
                        QL_TRY(base.block(b, floatBlock));
                        blockLoaded = true;
                    }
                    if (fb) fb->message(j.layer->name + ": " + j.spec.method + " " + j.spec.weight.format);
                    const RowMatrix w = floatBlock[j.layer->kind];
                    LayerInput in;
                    in.name = j.layer->name;
                    in.weight = &w;
                    in.bias = &floatBlock.bias[static_cast<int>(j.layer->kind)];
                    if (needSite) {
                        in.site = &capture.stats;
                        in.hessian = &capture.hessian;
                        in.tokens = capture.stats.nTokens;
                    }
                    if (needInputs) in.inputs = &inputs;
                    auto r = j.method->quantize(in, j.spec, j.spec.params);
                    if (!r) return makeError("quantize: " + r.message());
                    QL_TRY(detail::applyChannelOverrides(in, j.spec, *r));
                    const FormatSpec& f = j.spec.weight;
                    if (f.granularity == Granularity::PerGroup && f.groupSize > w.cols())
                        r->report.notes.push_back("group size " + std::to_string(f.groupSize) +
                                                  " is larger than the row (" + std::to_string(w.cols()) +
                                                  " columns): one group per row");
                    result = std::make_shared<const LayerResult>(std::move(*r));
                    m_cache[keys[i]] = result;
                    ++m_stats.layersQuantized;
                }
                qm->setLayer(QuantizedLayer{j.layer->name, b, j.layer->kind, j.spec, result});
                if (fb) fb->progress(double(++done) / total);
            }
            // The layers of one group read the same input, so the identity moves on per group.
            chainUpstream(keys);
        }
    }
    m_stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return qm;
}

} // namespace ql
