#include "quantlens/recipe/reciperunner.h"
#include "quantlens/base/threadscope.h"

#include "quantlens/base/params.h"
#include "quantlens/forward/siteranges.h"

namespace ql {

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
    const std::string file = r.source.empty() ? "" : r.source + ": ";
    for (size_t i = 0; i < r.rules.size(); ++i) {
        const QuantSpec& spec = r.rules[i].spec;
        if (spec.skip || spec.method.empty()) continue;
        const std::string where = file + "rules[" + std::to_string(i) + "]";
        const Quantizer* q = m_methods ? m_methods(spec.method) : nullptr;
        if (!q) return makeError(where + " asks for method \"" + spec.method + "\", which no plugin provides");
        if (auto p = completeParams(q->parameters(), spec.params, spec.method); !p)
            return makeError(where + ".params: " + p.message());
    }
    for (size_t i = 0; i < r.transforms.size(); ++i) {
        const TransformStep& step = r.transforms[i];
        const std::string where = file + "transforms[" + std::to_string(i) + "] (" + step.method + "): ";
        const Transform* t = m_transforms ? m_transforms(step.method) : nullptr;
        if (!t) return makeError(where + "no plugin provides this transform");
        if (auto p = completeParams(t->parameters(), step.params, step.method); !p)
            return makeError(where + p.message());
    }
    return {};
}

Expected<void> RecipeRunner::applyTransforms(const Recipe& r, RecipeRun& run, std::string& identity, Feedback* fb)
{
    // The identity of the transformed weights: every step with its completed parameters.
    std::vector<ParamMap> params;
    for (size_t i = 0; i < r.transforms.size(); ++i) {
        const TransformStep& step = r.transforms[i];
        const std::string where = "transforms[" + std::to_string(i) + "] (" + step.method + "): ";
        const Transform* t = m_transforms ? m_transforms(step.method) : nullptr;
        if (!t) return makeError(where + "no plugin provides this transform");
        auto p = completeParams(t->parameters(), step.params, step.method);
        if (!p) return makeError(where + p.message());
        if ((t->needsCalibration() || t->needsStatistics()) && run.calib.windows.empty())
            return makeError(where +
                             (t->needsCalibration() ? "needs calibration windows" : "needs activation statistics") +
                             ": give calibration data (--calib)");
        QuantSpec spec;
        spec.method = step.method;
        spec.params = *p;
        identity += step.method + "(" + specKey(spec) + ");";
        params.push_back(std::move(*p));
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
    for (size_t i = 0; i < r.transforms.size(); ++i) {
        const TransformStep& step = r.transforms[i];
        const std::string where = "transforms[" + std::to_string(i) + "] (" + step.method + "): ";
        const Transform* t = m_transforms(step.method);
        std::vector<SiteStats> sites;
        TransformContext ctx;
        ctx.feedback = fb;
        ctx.threads = m_threads;
        if (t->needsCalibration()) ctx.windows = &run.calib.windows;
        if (t->needsStatistics()) {
            // Measured on the weights as this step finds them: earlier steps changed the activations.
            auto st = siteRanges(weights->config(), *weights, run.calib.windows, m_threads, fb);
            if (!st) return makeError(where + st.message());
            sites = std::move(*st);
            ctx.sites = &sites;
        }
        if (fb) fb->message("transform " + step.method);
        auto applied = t->apply(*weights, ctx, params[i]);
        if (!applied) return makeError(where + applied.message());
    }
    m_transformed = std::move(weights);
    m_transformKey = key;
    run.transformed = m_transformed;
    return {};
}

Expected<RecipeRun> RecipeRunner::run(const Recipe& recipe, const Tokenizer* tokenizer, Feedback* fb)
{
    const ThreadScope threadScope(m_threads);
    RecipeRun run;
    run.recipe = recipe;
    auto specs = resolveRecipe(recipe, m_model.linearLayers());
    if (!specs) return makeError((recipe.source.empty() ? "" : recipe.source + ": ") + specs.message());
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
