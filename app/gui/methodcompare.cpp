#include "methodcompare.h"

#include "quantlens/quant/formats.h"

#include "plansession.h"
#include "pluginregistry.h"
#include "quickslice.h"

#include <QCoreApplication>
#include <QMetaObject>

#include <algorithm>

namespace ql {

namespace {

// "t1+…+method" (or a transform alone, before base's method) at base's format, the method's
// default parameters; AWQ's searches get the layer's integer grid, the quantization that follows.
Expected<LayerCandidate> parseCandidate(const std::string& text, const QuantSpec& base, const PluginRegistry& plugins)
{
    LayerCandidate c;
    c.spec = base;
    c.spec.params.clear();
    c.spec.channels.clear();
    std::vector<std::string> ids;
    for (size_t from = 0, plus = 0; plus != std::string::npos; from = plus + 1) {
        plus = text.find('+', from);
        ids.push_back(text.substr(from, plus == std::string::npos ? std::string::npos : plus - from));
    }
    const auto format = findFormat(base.weight.format);
    const bool integer = format && ((*format)->kind == FormatKind::IntAsym || (*format)->kind == FormatKind::IntSym);
    for (size_t i = 0; i < ids.size(); ++i) {
        const std::string& id = ids[i];
        if (plugins.transform(id)) {
            c.transforms.push_back({id, {}});
            if (id == "awq" && integer)
                c.transforms.back().params = {
                    {"bits", int64_t((*format)->bits)},
                    {"sym", (*format)->kind == FormatKind::IntSym},
                    {"group", int64_t(base.weight.granularity == Granularity::PerGroup ? base.weight.groupSize : 0)}};
        } else if (i + 1 == ids.size() && plugins.quantizer(id)) {
            c.spec.method = id;
        } else {
            std::string known;
            for (const auto& [tid, info] : plugins.methods()) known += (known.empty() ? "" : ", ") + tid;
            for (const auto& [tid, info] : plugins.transforms()) known += ", " + tid;
            return makeError("no method or transform '" + id + "' in '" + text + "' (the plugins offer " + known +
                             "; a method comes last)");
        }
    }
    return c;
}

} // namespace

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
        auto parsed = parseCandidate(m, base, *m_plugins);
        if (!parsed) return parsed.error();
        LayerCandidate c = std::move(*parsed);
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
