#include "paretosweep.h"

#include "plansession.h"
#include "pluginregistry.h"
#include "quickslice.h"

#include "quantlens/alloc/measuredoptions.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/recipe/plansize.h"
#include "quantlens/recipe/reciperunner.h"

#include <QCoreApplication>
#include <QMetaObject>

namespace ql {

namespace {

// A plan to sweep: how it is named and what it minimised.
struct SweepPlan {
    QString label, family, measure;
    Recipe recipe;
};

} // namespace

ParetoSweep::ParetoSweep(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent)
    : QObject(parent), m_jobs(jobs), m_plugins(plugins)
{}

ParetoSweep::~ParetoSweep()
{
    if (m_job) m_job->cancel();
}

Expected<Job*> ParetoSweep::start(const PlanSession& session, std::shared_ptr<const AnalysisResult> analysis,
                                  const std::vector<double>& budgets, const std::vector<std::string>& allocators)
{
    const std::shared_ptr<const Model> model = session.model();
    const std::shared_ptr<const Tokenizer> tokenizer = session.tokenizer();
    if (!model || !tokenizer) return makeError("open a model first");
    if (!analysis || analysis->sensitivity.empty())
        return makeError("run the analysis (with sensitivity) first: the sweep allocates from it");
    for (const std::string& name : allocators)
        if (auto a = allocatorByName(name); !a) return a.error();
    const std::string evalFile = session.evalFile();
    if (evalFile.empty()) return makeError("the project has no evaluation or calibration text for the quick slice");
    // The plans' calibration is the project's, fixed now; a recipe with none of its own gets it.
    const Recipe calibrated = session.runnable(Recipe{});
    const EvalOptions opt = session.evalOptions();
    if (m_job) m_job->cancel();
    emit started();

    auto runner = std::make_shared<RecipeRunner>(makeRecipeRunner(*model, *m_plugins, 0));
    QPointer<ParetoSweep> self(this);
    auto work = [self, model, tokenizer, analysis, budgets, allocators, evalFile, opt, calibrated,
                 runner](Job& job) -> Expected<int> {
        // Every plan first (allocations are fast), so progress counts plans.
        std::vector<SweepPlan> plans;
        const LayerSensitivity& measured = analysis->sensitivity.front();
        for (size_t k = 0; k < measured.bits.size(); ++k) {
            auto spec = sensitivityOptionSpec(measured.option(k));
            if (!spec) return spec.error();
            Recipe r;
            r.name = "uniform";
            r.rules.push_back({"*", *spec});
            plans.push_back({QString::fromStdString("uniform " + sensitivityOptionLabel(measured.option(k))),
                             QStringLiteral("uniform"), QStringLiteral("-"), r});
        }
        const int64_t weights = linearWeights(model->linearLayers());
        for (const std::string& name : allocators) {
            std::string measureName;
            auto m = measureFor(name, "", *analysis, &measureName);
            if (!m) return m.error();
            auto items = measuredItems(model->linearLayers(), *analysis, *m, {}, model.get());
            if (!items) return items.error();
            for (double bpw : budgets) {
                auto a = (*allocatorByName(name))(*items, int64_t(bpw * double(weights)));
                if (!a) continue; // a budget below this allocator's smallest plan has no point
                plans.push_back({QString::fromStdString(name) + QStringLiteral(" at %1 bpw").arg(bpw),
                                 QString::fromStdString(name), QString::fromStdString(measureName),
                                 allocationRecipe(*items, *a)});
            }
        }
        auto quick = prepareQuickSlice(*model, *tokenizer, evalFile, opt, &job);
        if (!quick) return quick.error();
        std::optional<RecipeRun> previous;
        int done = 0;
        for (SweepPlan& plan : plans) {
            if (job.isCanceled()) return makeError(canceledMessage());
            job.message("quantizing " + plan.label.toStdString());
            Recipe runnable = plan.recipe;
            if (runnable.calibrationFile.empty()) {
                runnable.calibrationFile = calibrated.calibrationFile;
                runnable.calibration = calibrated.calibration;
            }
            auto run = runner->run(runnable, tokenizer.get(), &job);
            if (!run) return makeError(plan.label.toStdString() + ": " + run.message());
            job.message("measuring " + plan.label.toStdString());
            auto kl = quick->measure(*run->model, firstChangedBlock(*run, previous ? &*previous : nullptr), &job);
            if (!kl) return kl.error();
            previous = std::move(*run);
            auto specs = resolveRecipe(plan.recipe, model->linearLayers());
            if (!specs) return specs.error();
            ParetoPoint p{plan.label,   plan.family,
                          plan.measure, planSize(*specs, model->linearLayers(), model->parameterCount()).bitsPerWeight,
                          kl->meanKl,   kl->top1Agreement,
                          kl->pplModel, plan.recipe};
            QMetaObject::invokeMethod(
                qApp,
                [self, p]() {
                    if (self) emit self->pointMeasured(p);
                },
                Qt::QueuedConnection);
            job.progress(double(++done) / double(plans.size()));
        }
        return done;
    };
    m_job = m_jobs->run<int>(
        tr("Pareto sweep of %1 allocator(s) at %2 budget(s)").arg(allocators.size()).arg(budgets.size()), work,
        [](int&) {});
    return m_job.data();
}

} // namespace ql
