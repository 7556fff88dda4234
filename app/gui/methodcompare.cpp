#include "methodcompare.h"

#include "plansession.h"
#include "pluginregistry.h"
#include "quickslice.h"

#include <QCoreApplication>
#include <QMetaObject>

#include <algorithm>

namespace ql {

MethodCompare::MethodCompare(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent)
    : QObject(parent), m_jobs(jobs), m_plugins(plugins)
{}

MethodCompare::~MethodCompare()
{
    if (m_job) m_job->cancel();
}

Expected<Job*> MethodCompare::start(const PlanSession& session, const std::string& layer,
                                    const std::vector<std::string>& methods)
{
    const std::shared_ptr<const Model> model = session.model();
    const std::shared_ptr<const Tokenizer> tokenizer = session.tokenizer();
    if (!model || !tokenizer) return makeError("open a model first");
    const PlanSnapshotPtr plan = session.snapshot();
    const auto row = std::find_if(plan->rows.begin(), plan->rows.end(),
                                  [&](const PlanRow& r) { return r.layer == layer; });
    if (row == plan->rows.end()) return makeError("select a linear layer to compare methods on (got '" + layer + "')");
    if (methods.empty()) return makeError("name at least one method to compare");
    // Each method at the plan's format for the layer (int4 asym g128 when the plan keeps it float).
    QuantSpec base = row->spec;
    if (base.skip) {
        base = QuantSpec{};
        base.weight.format = "int4_asym";
        base.weight.granularity = Granularity::PerGroup;
        base.weight.groupSize = 128;
    }
    std::vector<QuantSpec> specs;
    for (const std::string& m : methods) {
        if (!m_plugins->quantizer(m)) {
            std::string known;
            for (const auto& [id, info] : m_plugins->methods()) known += (known.empty() ? "" : ", ") + id;
            return makeError("no method '" + m + "' (the plugins offer " + known + ")");
        }
        QuantSpec s = base;
        s.method = m;
        s.params.clear(); // the method's defaults
        s.channels.clear();
        specs.push_back(s);
    }
    const std::string evalFile = session.evalFile();
    if (evalFile.empty()) return makeError("the project has no evaluation or calibration text for the quick slice");
    const Recipe calibrated = session.runnable(Recipe{});
    const EvalOptions opt = session.evalOptions();
    if (m_job) m_job->cancel();
    auto runner = std::make_shared<RecipeRunner>(makeRecipeRunner(*model, *m_plugins, 0));
    auto work = [model, tokenizer, layer, specs, calibrated, evalFile, opt,
                 runner](Job& job) -> Expected<LayerComparison> {
        auto quick = prepareQuickSlice(*model, *tokenizer, evalFile, opt, &job);
        if (!quick) return quick.error();
        return compareOnLayer(*model, *runner, *quick, tokenizer.get(), layer, specs, calibrated, &job);
    };
    QPointer<MethodCompare> self(this);
    m_job = m_jobs->run<LayerComparison>(
        tr("Compare %n method(s) on %1", nullptr, int(methods.size())).arg(QString::fromStdString(layer)), work,
        [self](LayerComparison& c) {
            if (self) emit self->compared(c);
        });
    return m_job.data();
}

} // namespace ql
