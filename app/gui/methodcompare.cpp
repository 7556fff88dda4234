#include "methodcompare.h"

#include "quantlens/quant/formats.h"

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
    std::vector<LayerCandidate> specs;
    for (const std::string& m : methods) {
        LayerCandidate c;
        c.spec = base;
        c.spec.params.clear(); // the method's defaults
        c.spec.channels.clear();
        size_t from = 0;
        for (;;) {
            const size_t plus = m.find('+', from);
            const std::string id = m.substr(from, plus == std::string::npos ? std::string::npos : plus - from);
            const bool last = plus == std::string::npos;
            if (m_plugins->transform(id)) {
                c.transforms.push_back({id, {}});
                // AWQ's searches assume the quantization that follows: the layer's integer grid.
                auto f = findFormat(base.weight.format);
                if (id == "awq" && f && ((*f)->kind == FormatKind::IntAsym || (*f)->kind == FormatKind::IntSym))
                    c.transforms.back().params = {
                        {"bits", int64_t((*f)->bits)},
                        {"sym", (*f)->kind == FormatKind::IntSym},
                        {"group",
                         int64_t(base.weight.granularity == Granularity::PerGroup ? base.weight.groupSize : 0)}};
            } else if (last && m_plugins->quantizer(id)) {
                c.spec.method = id;
            } else {
                std::string known;
                for (const auto& [tid, info] : m_plugins->methods()) known += (known.empty() ? "" : ", ") + tid;
                for (const auto& [tid, info] : m_plugins->transforms()) known += ", " + tid;
                return makeError("no method or transform '" + id + "' in '" + m + "' (the plugins offer " + known +
                                 "; a method comes last)");
            }
            if (last) break;
            from = plus + 1;
        }
        // The same candidate twice ("hadamard" when the plan's method is GPTQ, and
        // "hadamard+gptq") runs once.
        const std::string label = layerCandidateLabel(c);
        if (std::none_of(specs.begin(), specs.end(),
                         [&label](const LayerCandidate& s) { return layerCandidateLabel(s) == label; }))
            specs.push_back(std::move(c));
    }
    const std::string evalFile = session.evalFile();
    if (evalFile.empty()) return makeError("the project has no evaluation or calibration text for the quick slice");
    const Recipe calibrated = session.runnable(Recipe{});
    const EvalOptions opt = session.evalOptions();
    if (m_job) m_job->cancel();
    auto runner = std::make_shared<RecipeRunner>(makeRecipeRunner(*model, *m_plugins, 0));
    const int count = int(specs.size());
    auto work = [model, tokenizer, layer, specs = std::move(specs), calibrated, evalFile, opt,
                 runner](Job& job) -> Expected<LayerComparison> {
        auto quick = prepareQuickSlice(*model, *tokenizer, evalFile, opt, &job);
        if (!quick) return quick.error();
        return compareOnLayer(*model, *runner, *quick, tokenizer.get(), layer, specs, calibrated, &job);
    };
    QPointer<MethodCompare> self(this);
    m_job = m_jobs->run<LayerComparison>(
        tr("Compare %n method(s) on %1", nullptr, count).arg(QString::fromStdString(layer)), work,
        [self](LayerComparison& c) {
            if (self) emit self->compared(c);
        });
    return m_job.data();
}

std::vector<std::string> MethodCompare::defaultCandidates() const
{
    std::vector<std::string> out;
    for (const auto& [id, info] : m_plugins->methods()) out.push_back(id);
    for (const auto& [id, info] : m_plugins->transforms()) out.push_back(id);
    if (m_plugins->transform("hadamard") && m_plugins->quantizer("gptq")) out.push_back("hadamard+gptq");
    return out;
}

} // namespace ql
