#include "plansession.h"

#include "planexport.h"

#include "pluginregistry.h"
#include "quickslice.h"

#include "quantlens/forward/bf16gemm.h"
#include "quantlens/quant/formats.h"
#include "quantlens/recipe/planedit.h"
#include "quantlens/recipe/plansize.h"
#include "quantlens/store/runfolder.h"

#include <nlohmann/json.hpp>

#include <QFileInfo>
#include <QPointer>
#include <QUndoCommand>

#include <atomic>

namespace ql {

/// One plan change on the undo stack: the recipes before and after it.
class PlanCommand : public QUndoCommand {
public:
    PlanCommand(PlanSession* session, Recipe before, Recipe after, const QString& text)
        : QUndoCommand(text), m_session(session), m_before(std::move(before)), m_after(std::move(after))
    {}
    void undo() override { m_session->adoptRecipe(m_before); }
    void redo() override { m_session->adoptRecipe(m_after); }

private:
    PlanSession* m_session;
    Recipe m_before, m_after;
};

/// What the what-if jobs work on, shared with them so it outlives a session closed mid-job.
struct WhatIfState {
    std::shared_ptr<const Model> model;
    std::shared_ptr<const Tokenizer> tokenizer;
    std::unique_ptr<RecipeRunner> runner;
    std::optional<QuickEvaluator> quick;
    std::shared_ptr<RecipeRun> evalState; ///< the run whose block inputs the evaluator holds
    std::atomic<bool> resetQuick{false};  ///< the quick slice's settings changed
};

namespace {

const char* kDefaultPlan = R"({"version": 1, "name": "plan",
  "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": false, "group": 128}]})";

} // namespace

PlanSession::PlanSession(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent)
    : QObject(parent), m_jobs(jobs), m_plugins(plugins), m_snapshot(std::make_shared<PlanSnapshot>())
{}

PlanSession::~PlanSession()
{
    if (m_job) m_job->cancel();
}

void PlanSession::setModel(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer,
                           const Project& project, const std::string& modelSha256)
{
    m_modelSha = modelSha256;
    m_active = false;
    m_runs = project.runs;
    emit runsChanged();
    if (m_job) m_job->cancel();
    m_pending = false;
    m_model = std::move(model);
    m_tokenizer = std::move(tokenizer);
    m_project = project;
    m_state = std::make_shared<WhatIfState>();
    m_state->model = m_model;
    m_state->tokenizer = m_tokenizer;
    if (m_model) m_state->runner = std::make_unique<RecipeRunner>(makeRecipeRunner(*m_model, *m_plugins, 0));
    m_lastRun.reset();
    m_measure.reset();
    m_full.reset();
    m_undo.clear();
    auto plan = parseRecipe(project.planJson.isEmpty() ? std::string(kDefaultPlan) : project.planJson.toStdString());
    if (!plan) {
        emit failed(tr("Plan"), QString::fromStdString(project.path.toStdString() + ": plan: " + plan.message()));
        plan = parseRecipe(kDefaultPlan);
    }
    m_undo.setClean();
    adoptRecipe(*plan);
}

void PlanSession::setProject(const Project& project)
{
    const bool sliceChanged = project.evalFile != m_project.evalFile || project.calibFile != m_project.calibFile ||
                              project.quickWindows != m_project.quickWindows ||
                              project.quickCtx != m_project.quickCtx || project.quickCompute != m_project.quickCompute;
    m_project = project;
    if (sliceChanged && m_state) {
        m_state->resetQuick = true;
        m_measure.reset();
        publish();
        schedule();
    }
}

Recipe PlanSession::runnable(const Recipe& recipe) const
{
    // A plan without its own calibration text uses the project's (as the CLI's --calib does).
    Recipe r = recipe;
    if (r.calibrationFile.empty() && !m_project.calibFile.isEmpty()) {
        r.calibrationFile = m_project.calibFile.toStdString();
        r.calibration = m_project.calib;
        r.calibration.heldOut = 0;
    }
    return r;
}

void PlanSession::adoptRecipe(const Recipe& recipe)
{
    m_recipe = recipe;
    m_resolved = m_model ? resolveRecipe(m_recipe, m_model->linearLayers())
                         : Expected<std::map<std::string, QuantSpec>>(std::map<std::string, QuantSpec>{});
    publish();
    schedule();
}

Expected<void> PlanSession::pushRecipe(Recipe next, const QString& text)
{
    if (!m_model) return makeError("open a model first");
    auto resolved = resolveRecipe(next, m_model->linearLayers());
    if (!resolved) return resolved.error();
    // Parameters are checked now, so an invalid value never becomes a plan.
    for (const auto& [layer, spec] : *resolved) {
        if (spec.skip) continue;
        const Quantizer* q = m_plugins->quantizer(spec.method);
        if (!q) return makeError("layer " + layer + ": no plugin provides the method '" + spec.method + "'");
        if (auto p = completeParams(q->parameters(), spec.params, spec.method); !p)
            return makeError("layer " + layer + ": " + p.message());
    }
    if (next == m_recipe) return {};
    m_active = true; // an edit wants its measure
    m_undo.push(new PlanCommand(this, m_recipe, std::move(next), text));
    return {};
}

Expected<void> PlanSession::edit(const QStringList& layers, const QString& key, const QString& value)
{
    if (layers.isEmpty()) return makeError("no layer selected");
    Recipe next = m_recipe;
    for (const QString& layer : layers) {
        auto r = applyPlanEditText(std::move(next),
                                   (layer + QLatin1Char(':') + key + QLatin1Char('=') + value).toStdString());
        if (!r) return r.error();
        next = std::move(*r);
    }
    const QString what = key + QLatin1Char('=') + value;
    return pushRecipe(std::move(next), layers.size() == 1 ? layers.front() + QLatin1Char(':') + what
                                                          : tr("%1 layers: %2").arg(layers.size()).arg(what));
}

Expected<void> PlanSession::setSalientChannels(const QString& site, const ChannelOverride& channels)
{
    if (!m_model) return makeError("open a model first");
    Recipe next = m_recipe;
    int layers = 0;
    for (const LinearLayer& l : m_model->linearLayers()) {
        if (l.site != site.toStdString()) continue;
        RecipeOverride o;
        o.match = l.name;
        o.patch.channels = std::vector<ChannelOverride>{channels};
        next = applyPlanEdit(std::move(next), o);
        ++layers;
    }
    if (layers == 0) return makeError("no linear layer reads the site " + site.toStdString());
    const QString what = channels.selector.empty() ? tr("%1 channels").arg(channels.channels.size())
                                                   : tr("top %1 % by absmax").arg(channels.selectorValue);
    return pushRecipe(std::move(next),
                      tr("%1: %2 as %3").arg(site, what, QString::fromStdString(channels.weight.format)));
}

Expected<void> PlanSession::setRecipeJson(const QString& json)
{
    auto r = parseRecipe(json.toStdString());
    if (!r) return r.error();
    return pushRecipe(std::move(*r), tr("edit rules"));
}

Expected<void> PlanSession::setRecipe(const Recipe& recipe, const QString& text)
{
    return pushRecipe(recipe, text);
}

Expected<Allocation> PlanSession::fitToBudget(const AnalysisResult& analysis, double bitsPerWeight,
                                              const std::string& allocator)
{
    if (!m_model) return makeError("open a model first");
    auto allocate = allocatorByName(allocator);
    if (!allocate) return allocate.error();
    std::string measureName;
    auto measure = measureFor(allocator, "", analysis, &measureName);
    if (!measure) return measure.error();
    auto items = measuredItems(m_model->linearLayers(), analysis, *measure, {}, m_model.get());
    if (!items) return items.error();
    auto a = (*allocate)(*items, int64_t(bitsPerWeight * double(linearWeights(m_model->linearLayers()))));
    if (!a) return a.error();
    QL_TRY(pushRecipe(allocationRecipe(*items, *a), tr("fit to %1 bits per weight (%2 on %3)")
                                                        .arg(bitsPerWeight)
                                                        .arg(QString::fromStdString(allocator))
                                                        .arg(QString::fromStdString(measureName))));
    return a;
}

Expected<void> PlanSession::loadRecipe(const QString& path)
{
    auto r = ql::loadRecipe(path.toStdString());
    if (!r) return r.error();
    return pushRecipe(std::move(*r), tr("load %1").arg(QFileInfo(path).fileName()));
}

Job* PlanSession::quantize(const QString& name, const QString& folder)
{
    if (!m_model || !m_resolved) {
        emit failed(tr("Quantize"), m_model ? QString::fromStdString(m_resolved.message()) : tr("Open a model first."));
        return nullptr;
    }
    for (const SavedRun& r : m_runs)
        if (r.name == name) {
            emit failed(tr("Quantize"), tr("A run named %1 exists already.").arg(name));
            return nullptr;
        }
    auto current = currentRun();
    auto model = m_model;
    auto tok = m_tokenizer;
    const PluginRegistry* plugins = m_plugins;
    const Recipe recipe = runnable(m_recipe);
    const std::string sha = m_modelSha, out = folder.toStdString(), source = "window plan " + name.toStdString();
    auto work = [current, model, tok, plugins, recipe, sha, out, source](Job& job) -> Expected<double> {
        std::shared_ptr<const RecipeRun> run = current;
        if (!run) { // a runner of its own: the what-if's may be busy
            RecipeRunner runner = makeRecipeRunner(*model, *plugins, 0);
            QL_TRY(checkMemory(estimateMemory(*model, runner.memoryJob(recipe)), availableMemory(),
                               model->dir() + ": quantizing the plan"));
            auto r = runner.run(recipe, tok.get(), &job);
            if (!r) return r.error();
            run = std::make_shared<RecipeRun>(std::move(*r));
        }
        job.message("writing the run folder");
        auto report = writeRunFolder(out, *model, *run, sha, source, false);
        if (!report) return report.error();
        return nlohmann::json::parse(*report).value("bits_per_weight", 0.0);
    };
    SavedRun saved;
    saved.name = name;
    saved.folder = QFileInfo(folder).absoluteFilePath();
    if (m_measure && m_measuredRecipe == m_recipe) {
        saved.quickKl = m_measure->kl.meanKl;
        saved.quickPpl = m_measure->kl.pplModel;
    }
    if (m_full && m_fullRecipe == m_recipe) saved.fullPpl = m_full->kl.pplModel;
    QPointer<PlanSession> self(this);
    auto state = m_state;
    auto done = [self, saved, state](double& bits) mutable {
        if (!self || self->m_state != state) return;
        saved.bitsPerWeight = bits;
        self->m_runs.append(saved);
        emit self->runsChanged();
    };
    Job* job = m_jobs->run<double>(tr("Quantize the plan as %1").arg(name), work, done);
    connect(job, &Job::finished, this, [this, job]() {
        if (job->state() == Job::State::Failed) emit failed(tr("Quantize"), job->error());
    });
    return job;
}

Expected<void> PlanSession::restoreRun(int index)
{
    if (index < 0 || index >= m_runs.size()) return makeError("no such run");
    const SavedRun& r = m_runs[index];
    auto recipe = ql::loadRecipe((r.folder + QStringLiteral("/recipe.json")).toStdString());
    if (!recipe) return recipe.error();
    return pushRecipe(std::move(*recipe), tr("restore %1").arg(r.name));
}

Expected<RunDiff> PlanSession::diffRuns(int a, int b) const
{
    if (a < 0 || a >= m_runs.size() || b < 0 || b >= m_runs.size()) return makeError("no such run");
    auto ra = readRunReport(m_runs[a].folder.toStdString());
    if (!ra) return ra.error();
    auto rb = readRunReport(m_runs[b].folder.toStdString());
    if (!rb) return rb.error();
    return ql::diffRuns(*ra, *rb);
}

Expected<void> PlanSession::saveRecipe(const QString& path) const
{
    Recipe r = m_recipe;
    r.modelSha256 = m_modelSha;
    return writeTextFile(path, recipeToJson(r));
}

std::shared_ptr<const RecipeRun> PlanSession::currentRun() const
{
    return m_lastRun && m_lastRun->recipe == runnable(m_recipe) ? m_lastRun : nullptr;
}

EvalOptions PlanSession::evalOptions() const
{
    EvalOptions opt;
    opt.chunks = m_project.quickWindows;
    const int maxCtx = m_model ? m_model->config().maxPositions : 0;
    opt.ctx = maxCtx > 0 ? std::min(m_project.quickCtx, maxCtx) : m_project.quickCtx;
    opt.runtime.bf16Products = m_project.quickCompute == QLatin1String("bf16") ||
                               (m_project.quickCompute == QLatin1String("auto") && bf16::supported());
    return opt;
}

std::string PlanSession::evalFile() const
{
    return (m_project.evalFile.isEmpty() ? m_project.calibFile : m_project.evalFile).toStdString();
}

Job* PlanSession::evaluateFully()
{
    auto run = currentRun();
    if (!run) {
        emit failed(tr("Full evaluation"), tr("The plan has not been quantized yet; wait for the what-if to finish."));
        return nullptr;
    }
    const std::string file = evalFile();
    if (file.empty()) {
        emit failed(tr("Full evaluation"), tr("Choose a calibration or evaluation text first."));
        return nullptr;
    }
    EvalOptions opt = evalOptions();
    opt.chunks = -1;                  // every window of the text
    opt.runtime.bf16Products = false; // the full evaluation is the exact one
    auto model = m_model;
    auto tok = m_tokenizer;
    auto work = [model, tok, run, file, opt](Job& job) -> Expected<PlanMeasure> {
        auto text = readCalibrationText(file);
        if (!text) return text.error();
        const std::vector<int32_t> tokens = tok->encode(*text);
        auto kl = evaluateKl(model->config(), *model, model->config(), *run->model, tokens,
                             tok->addsBos() ? tok->bosId() : -1, opt, &job);
        if (!kl) return makeError(file + ": " + kl.message());
        PlanMeasure m;
        m.kl = *kl;
        m.windows = kl->chunks;
        m.ctx = opt.ctx;
        m.blocksRun = model->config().layers;
        return m;
    };
    QPointer<PlanSession> self(this);
    const Recipe recipe = m_recipe;
    auto done = [self, recipe](PlanMeasure& m) {
        if (!self) return;
        self->m_full = m;
        self->m_fullRecipe = recipe;
        self->publish();
    };
    Job* job = m_jobs->run<PlanMeasure>(tr("Full evaluation of the plan"), work, done);
    connect(job, &Job::finished, this, [this, job]() {
        if (job->state() == Job::State::Failed) emit failed(tr("Full evaluation"), job->error());
    });
    return job;
}

void PlanSession::publish()
{
    auto s = std::make_shared<PlanSnapshot>();
    s->recipeJson = recipeToJson(m_recipe);
    s->formats = formatIds();
    if (m_plugins)
        for (const auto& [id, info] : m_plugins->methods()) s->methods[id] = info.quantizer->parameters();
    if (!m_resolved) s->error = m_resolved.message();
    const bool lastRunIsThis = currentRun() != nullptr;
    if (m_model && m_resolved) {
        const auto& specs = *m_resolved;
        double measuredBits = 0, measuredWeights = 0;
        for (const LinearLayer& l : m_model->linearLayers()) {
            PlanRow r;
            r.layer = l.name;
            r.block = l.block;
            r.outFeatures = l.outFeatures;
            r.inFeatures = l.inFeatures;
            auto it = specs.find(l.name);
            if (it != specs.end())
                r.spec = it->second;
            else
                r.spec.skip = true;
            r.source = planSource(m_recipe, l.name);
            r.plannedBits = specBitsPerWeight(r.spec, l.outFeatures, l.inFeatures);
            if (m_lastRun && !r.spec.skip) {
                auto run = m_lastRun->specs.find(l.name);
                const QuantizedLayer* q = m_lastRun->model->layer(l.name);
                if (q && run != m_lastRun->specs.end() && run->second == r.spec) r.report = q->result->report;
            }
            if (r.report) {
                const double n = double(l.outFeatures) * double(l.inFeatures);
                measuredBits += r.report->bitsPerWeight * n;
                measuredWeights += n;
            }
            s->rows.push_back(std::move(r));
        }
        s->size = planSize(specs, m_model->linearLayers(), m_model->parameterCount());
        if (lastRunIsThis && measuredWeights > 0) s->measuredBitsPerWeight = measuredBits / measuredWeights;
    }
    if (m_measure && m_measuredRecipe == m_recipe) s->measure = m_measure;
    if (m_full && m_fullRecipe == m_recipe) s->full = m_full;
    s->measuring = busy();
    m_snapshot = s;
    emit planChanged(m_snapshot);
}

void PlanSession::setLive(bool live)
{
    m_live = live;
    // Turned on after the plan was shown or edited: measure what is there now.
    if (live && !m_job && !(m_measure && m_measuredRecipe == m_recipe)) schedule();
}

void PlanSession::activate()
{
    if (m_active) return;
    m_active = true;
    schedule();
}

void PlanSession::schedule()
{
    if (!m_live || !m_active || !m_model || !m_resolved || !m_state) return;
    m_pending = true;
    if (m_job) {
        m_job->cancel(); // its end starts the newest plan
        return;
    }
    startRun();
}

void PlanSession::startRun()
{
    m_pending = false;
    const Recipe recipe = runnable(m_recipe);
    auto state = m_state;
    auto work = [state, recipe](Job& job) -> Expected<std::shared_ptr<RecipeRun>> {
        job.message("quantizing the changed layers");
        auto run = state->runner->run(recipe, state->tokenizer.get(), &job);
        if (!run) return run.error();
        return std::make_shared<RecipeRun>(std::move(*run));
    };
    QPointer<PlanSession> self(this);
    auto done = [self, state](std::shared_ptr<RecipeRun>& run) {
        if (!self || self->m_state != state) return;
        self->m_lastRun = run;
        self->publish();
        if (!self->m_pending) self->startMeasure(run);
    };
    Job* job = m_jobs->run<std::shared_ptr<RecipeRun>>(tr("What-if: quantize the plan"), work, done);
    m_job = job;
    connect(job, &Job::finished, this, [this, job]() {
        if (job == m_job) jobEnded();
    });
    publish();
}

void PlanSession::startMeasure(std::shared_ptr<RecipeRun> run)
{
    auto state = m_state;
    const Recipe measured = m_recipe;
    const std::string evalFile = this->evalFile();
    const EvalOptions opt = evalOptions();
    auto work = [state, run, evalFile, opt](Job& job) -> Expected<PlanMeasure> {
        if (state->resetQuick.exchange(false)) state->quick.reset();
        if (!state->quick) {
            auto q = prepareQuickSlice(*state->model, *state->tokenizer, evalFile, opt, &job);
            if (!q) return q.error();
            state->quick.emplace(std::move(*q));
            state->evalState.reset();
        }
        job.message("measuring the plan on the quick slice");
        // The evaluator's kept block inputs are the last measured run's, even when that measure
        // was canceled part way (it then keeps only the blocks it finished).
        const int first = firstChangedBlock(*run, state->evalState.get());
        state->evalState = run;
        auto kl = state->quick->measure(*run->model, first, &job);
        if (!kl) return kl.error();
        PlanMeasure m;
        m.kl = *kl;
        m.windows = kl->chunks;
        m.ctx = opt.ctx;
        m.blocksRun = state->quick->blocksRun();
        m.bf16 = opt.runtime.bf16Products;
        return m;
    };
    QPointer<PlanSession> self(this);
    auto done = [self, state, measured](PlanMeasure& m) {
        if (!self || self->m_state != state) return;
        self->m_measure = m;
        self->m_measuredRecipe = measured;
    };
    Job* job = m_jobs->run<PlanMeasure>(tr("What-if: quick measure"), work, done);
    m_job = job;
    connect(job, &Job::finished, this, [this, job]() {
        if (job == m_job) jobEnded();
    });
}

void PlanSession::jobEnded()
{
    Job* job = m_job;
    m_job = nullptr;
    if (job->state() == Job::State::Failed) emit failed(tr("What-if"), job->error());
    if (m_pending) {
        startRun();
        return;
    }
    publish();
    emit measured();
}

} // namespace ql
