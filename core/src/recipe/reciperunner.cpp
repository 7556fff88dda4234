#include "quantlens/recipe/reciperunner.h"
#include "quantlens/base/threadscope.h"

#include "quantlens/base/params.h"
#include "quantlens/forward/siteranges.h"

namespace ql {

namespace {

// "FILE: " for a recipe read from a file, so that its errors name it; empty otherwise.
std::string sourcePrefix(const Recipe& r)
{
    return r.source.empty() ? std::string() : r.source + ": ";
}

} // namespace

RecipeRunner::RecipeRunner(const Model& model, MethodLookup quantizers, TransformLookup transforms)
    : m_model(model), m_methods(quantizers), m_transforms(std::move(transforms)),
      m_pipeline(model, std::move(quantizers))
{}

void RecipeRunner::clearCache()
{
    m_pipeline.clearCache();
    m_calibKey.clear();
    m_calib = {};
    m_transformKey.clear();
    m_transformed.reset();
}

Expected<void> RecipeRunner::loadCalibration(const Recipe& r, const Tokenizer* tokenizer, RecipeRun& run)
{
    if (r.calibrationFile.empty()) return {};
    if (!tokenizer) return makeError("calibration needs the model's tokenizer, which could not be loaded");
    auto text = readCalibrationText(r.calibrationFile);
    if (!text) return text.error();
    // The text's content, not its file name, identifies the windows.
    const CalibrationSpec& cs = r.calibration;
    const std::string key = sha256Hex(text->data(), text->size()) + "/" + std::to_string(cs.samples) + "/" +
                            std::to_string(cs.seqlen) + "/" + samplingName(cs.sampling) + "/" +
                            std::to_string(cs.seed) + "/" + std::to_string(cs.heldOut);
    if (key != m_calibKey) {
        auto calib = makeCalibrationSet(*text, *tokenizer, cs);
        if (!calib) return makeError(r.calibrationFile + ": " + calib.message());
        m_calib = std::move(*calib);
        m_calibKey = key;
    }
    run.calib = m_calib;
    return {};
}

Expected<void> RecipeRunner::checkMethods(const Recipe& r) const
{
    // Before any calibration pass: a misspelt parameter is reported where it is written.
    const std::string file = sourcePrefix(r);
    for (size_t i = 0; i < r.rules.size(); ++i) {
        const QuantSpec& spec = r.rules[i].spec;
        if (spec.skip || spec.method.empty()) continue;
        const std::string where = file + "rules[" + std::to_string(i) + "]";
        const Quantizer* q = m_methods ? m_methods(spec.method) : nullptr;
        if (!q) return makeError(where + " asks for method \"" + spec.method + "\", which no plugin provides");
        if (auto p = completeParams(q->parameters(), spec.params, spec.method); !p)
            return makeError(where + ".params: " + p.message());
    }
    for (size_t i = 0; i < r.transforms.size(); ++i)
        if (auto t = transformStep(r, i); !t) return t.error();
    return {};
}

Expected<RecipeRunner::ResolvedStep> RecipeRunner::transformStep(const Recipe& r, size_t i) const
{
    const TransformStep& step = r.transforms[i];
    const std::string where = sourcePrefix(r) + "transforms[" + std::to_string(i) + "] (" + step.method + "): ";
    const Transform* t = m_transforms ? m_transforms(step.method) : nullptr;
    if (!t) return makeError(where + "no plugin provides this transform");
    auto p = completeParams(t->parameters(), step.params, step.method);
    if (!p) return makeError(where + p.message());
    return ResolvedStep{t, std::move(*p), where};
}

Expected<void> RecipeRunner::applyTransforms(const Recipe& r, RecipeRun& run, std::string& identity, Feedback* fb)
{
    // The identity of the transformed weights: every step with its completed parameters.
    std::vector<ResolvedStep> steps;
    for (size_t i = 0; i < r.transforms.size(); ++i) {
        auto step = transformStep(r, i);
        if (!step) return step.error();
        const Transform* t = step->transform;
        if ((t->needsCalibration() || t->needsStatistics()) && run.calib.windows.empty())
            return makeError(step->where +
                             (t->needsCalibration() ? "needs calibration windows" : "needs activation statistics") +
                             ": give calibration data (--calib)");
        QuantSpec spec;
        spec.method = r.transforms[i].method;
        spec.params = step->params;
        identity += spec.method + "(" + specKey(spec) + ");";
        steps.push_back(std::move(*step));
    }
    // Statistics-driven transforms give other weights for other windows: the windows are part
    // of the identity the pipeline keys its cached layers on.
    identity += "@" + run.calib.sha256;
    const std::string& key = identity;
    if (key == m_transformKey && m_transformed) {
        run.transformed = m_transformed;
        return {};
    }
    m_transformed.reset();
    m_transformKey.clear();
    if (fb) fb->message("loading the float weights for " + std::to_string(r.transforms.size()) + " transform(s)");
    auto fw = FloatWeights::load(m_model, fb);
    if (!fw) return fw.error();
    auto weights = std::make_shared<FloatWeights>(std::move(*fw));
    for (const ResolvedStep& step : steps) {
        const Transform* t = step.transform;
        std::vector<SiteStats> sites;
        TransformContext ctx;
        ctx.feedback = fb;
        ctx.threads = m_threads;
        if (t->needsCalibration()) ctx.windows = &run.calib.windows;
        if (t->needsStatistics()) {
            // Measured on the weights as this step finds them: earlier steps changed the activations.
            auto st = siteRanges(weights->config(), *weights, run.calib.windows, m_threads, fb);
            if (!st) return makeError(step.where + st.message());
            sites = std::move(*st);
            ctx.sites = &sites;
        }
        if (fb) fb->message("transform " + t->id());
        auto applied = t->apply(*weights, ctx, step.params);
        if (!applied) return makeError(step.where + applied.message());
    }
    m_transformed = std::move(weights);
    m_transformKey = key;
    run.transformed = m_transformed;
    return {};
}

MemoryJob RecipeRunner::memoryJob(const Recipe& r) const
{
    MemoryJob job;
    job.kind = MemoryJob::Kind::Quantize;
    job.calibrated = !r.calibrationFile.empty();
    job.windows = r.calibration.samples;
    job.seqlen = r.calibration.seqlen;
    job.transforms = !r.transforms.empty();
    for (const RecipeRule& rule : r.rules) {
        const Quantizer* q = m_methods && !rule.spec.method.empty() ? m_methods(rule.spec.method) : nullptr;
        if (!q || rule.spec.skip) continue;
        job.hessians = job.hessians || q->needsHessian();
        job.blockMethod = job.blockMethod || q->asBlockQuantizer();
    }
    return job;
}

Expected<RecipeRun> RecipeRunner::run(const Recipe& recipe, const Tokenizer* tokenizer, Feedback* fb)
{
    const ThreadScope threadScope(m_threads);
    RecipeRun run;
    run.recipe = recipe;
    auto specs = resolveRecipe(recipe, m_model.linearLayers());
    if (!specs) return makeError(sourcePrefix(recipe) + specs.message());
    run.specs = std::move(*specs);
    QL_TRY(checkMethods(recipe));
    QL_TRY(loadCalibration(recipe, tokenizer, run));
    PipelineOptions po;
    po.sequential = recipe.mode == Recipe::PipelineMode::Sequential;
    po.threads = m_threads;
    if (!recipe.transforms.empty()) {
        QL_TRY(applyTransforms(recipe, run, po.baseIdentity, fb));
        po.base = run.transformed.get();
    }
    auto qm = m_pipeline.run(run.specs, run.calib, po, fb);
    if (!qm) return qm.error();
    run.model = std::move(*qm);
    run.stats = m_pipeline.lastRun();
    return run;
}

int firstChangedBlock(const RecipeRun& run, const RecipeRun* previous)
{
    if (!previous || run.transformed != previous->transformed) return 0;
    int first = run.model->model().config().layers;
    for (const auto& [name, layer] : run.model->layers()) {
        const QuantizedLayer* old = previous->model->layer(name);
        if (!old || old->result != layer.result) first = std::min(first, layer.block);
    }
    for (const auto& [name, layer] : previous->model->layers())
        if (!run.model->layer(name)) first = std::min(first, layer.block);
    return first;
}

} // namespace ql
