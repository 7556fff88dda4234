#include "pluginregistry.h"

#include "quantlensplugin.h"
#include "quantlens/quant/blockquantizer.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QLibrary>
#include <QPluginLoader>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>

namespace ql {

namespace {

// The plugin calls running now, for a window that must say which plugin a stuck job is in.
struct CallInProgress {
    uint64_t id;
    std::string who;
    std::chrono::steady_clock::time_point since;
};
std::mutex g_callsMutex;
std::vector<CallInProgress> g_calls;
uint64_t g_nextCall = 0;

// Registers one call for its lifetime.
class CallScope {
public:
    explicit CallScope(std::string who)
    {
        std::lock_guard<std::mutex> lock(g_callsMutex);
        m_id = g_nextCall++;
        g_calls.push_back({m_id, std::move(who), std::chrono::steady_clock::now()});
    }
    ~CallScope()
    {
        std::lock_guard<std::mutex> lock(g_callsMutex);
        std::erase_if(g_calls, [this](const CallInProgress& c) { return c.id == m_id; });
    }
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

private:
    uint64_t m_id = 0;
};

// Runs f, turning an exception it throws into an error that names who threw.
template <class F>
auto guardedCall(const std::string& who, F&& f) -> decltype(f())
{
    const CallScope scope(who.substr(0, who.size() - 2)); // who ends in ": "
    try {
        return f();
    } catch (const std::exception& e) {
        return makeError(who + "threw: " + e.what());
    } catch (...) {
        return makeError(who + "threw an unknown exception");
    }
}

// What is wrong with a layer result whose numbers are not all finite (NaN codes would otherwise
// reach the evaluation and the exports as a perplexity of NaN, far from the method that made them);
// empty when it is sound.
std::string nonFiniteProblem(const LayerResult& r)
{
    const auto count = [](const auto& m) { return (!m.array().isFinite()).count(); };
    if (const auto n = count(r.dequantized))
        return "NaN or infinite values in " + std::to_string(n) + " of " + std::to_string(r.dequantized.size()) +
               " dequantized weights";
    if (r.tensor && (count(r.tensor->scales()) || count(r.tensor->zeros())))
        return "codes with NaN or infinite scales or zero points";
    if (count(r.inputNorm)) return "NaN or infinite values in its input norm";
    return {};
}

// Runs a plugin's method so that nothing it does escapes as an exception, and every error it
// reports names the plugin.
class GuardedQuantizer final : public Quantizer {
public:
    GuardedQuantizer(std::shared_ptr<Quantizer> inner, std::string plugin)
        : m_inner(std::move(inner)), m_plugin(std::move(plugin)), m_id(m_inner->id())
    {}
    std::string id() const override { return m_id; }
    std::string description() const override { return m_inner->description(); }
    std::vector<ParamSpec> parameters() const override { return m_inner->parameters(); }
    bool needsHessian() const override { return m_inner->needsHessian(); }
    bool needsInputs() const override { return m_inner->needsInputs(); }
    Expected<LayerResult> quantize(const LayerInput& in, const QuantSpec& spec, const ParamMap& params) const override
    {
        const std::string who = "plugin " + m_plugin + ", method " + m_id + ", layer " + in.name + ": ";
        return guardedCall(who, [&]() -> Expected<LayerResult> {
            auto r = m_inner->quantize(in, spec, params);
            if (!r) return makeError(who + r.message());
            if (!in.weight || r->dequantized.rows() != in.weight->rows() || r->dequantized.cols() != in.weight->cols())
                return makeError(who + "returned a weight of the wrong shape");
            if (const std::string bad = nonFiniteProblem(*r); !bad.empty()) return makeError(who + "returned " + bad);
            return r;
        });
    }

private:
    std::shared_ptr<Quantizer> m_inner;
    std::string m_plugin;
    std::string m_id;
};

// The guard for block methods: every linear with a spec gets a result of its weight's shape.
class GuardedBlockQuantizer final : public BlockQuantizer {
public:
    GuardedBlockQuantizer(std::shared_ptr<Quantizer> inner, std::string plugin)
        : m_owner(std::move(inner)), m_inner(m_owner->asBlockQuantizer()), m_plugin(std::move(plugin)),
          m_id(m_owner->id())
    {}
    std::string id() const override { return m_id; }
    std::string description() const override { return m_inner->description(); }
    std::vector<ParamSpec> parameters() const override { return m_inner->parameters(); }
    Expected<BlockResult> quantizeBlock(const BlockInput& in, const ParamMap& params, Feedback* fb) const override
    {
        const std::string who = "plugin " + m_plugin + ", method " + m_id + ", block " + std::to_string(in.block) +
                                ": ";
        return guardedCall(who, [&]() -> Expected<BlockResult> {
            auto r = m_inner->quantizeBlock(in, params, fb);
            if (!r) return makeError(who + r.message());
            for (int k = 0; k < kLinearCount; ++k) {
                if (!in.specs[size_t(k)]) continue;
                const auto& layer = r->layers[size_t(k)];
                const ConstRowMap w = (*in.weights)[LinearKind(k)];
                if (!layer || layer->dequantized.rows() != w.rows() || layer->dequantized.cols() != w.cols())
                    return makeError(who + "returned no weight, or one of the wrong shape, for " + in.names[size_t(k)]);
                if (const std::string bad = nonFiniteProblem(*layer); !bad.empty())
                    return makeError(who + "returned " + bad + " for " + in.names[size_t(k)]);
            }
            return r;
        });
    }

private:
    std::shared_ptr<Quantizer> m_owner;
    const BlockQuantizer* m_inner;
    std::string m_plugin;
    std::string m_id;
};

// The same guard for transforms; a transform must also leave the weights consistent.
class GuardedTransform final : public Transform {
public:
    GuardedTransform(std::shared_ptr<Transform> inner, std::string plugin)
        : m_inner(std::move(inner)), m_plugin(std::move(plugin)), m_id(m_inner->id())
    {}
    std::string id() const override { return m_id; }
    std::string description() const override { return m_inner->description(); }
    std::vector<ParamSpec> parameters() const override { return m_inner->parameters(); }
    bool needsStatistics() const override { return m_inner->needsStatistics(); }
    bool needsCalibration() const override { return m_inner->needsCalibration(); }
    Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const override
    {
        const std::string who = "plugin " + m_plugin + ", transform " + m_id + ": ";
        return guardedCall(who, [&]() -> Expected<void> {
            auto r = m_inner->apply(weights, ctx, params);
            if (!r) return makeError(who + r.message());
            auto valid = weights.validate();
            if (!valid) return makeError(who + "left the weights inconsistent: " + valid.message());
            return {};
        });
    }

private:
    std::shared_ptr<Transform> m_inner;
    std::string m_plugin;
    std::string m_id;
};

} // namespace

std::vector<std::string> PluginRegistry::callsInProgress()
{
    std::lock_guard<std::mutex> lock(g_callsMutex);
    std::vector<std::string> out;
    const auto now = std::chrono::steady_clock::now();
    for (const CallInProgress& c : g_calls) {
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(now - c.since).count();
        out.push_back(c.who + " (running for " + std::to_string(s) + " s)");
    }
    return out;
}

QStringList PluginRegistry::defaultDirs()
{
    QStringList dirs;
    const QString env = qEnvironmentVariable("QL_PLUGIN_PATH");
    for (const QString& d : env.split(QLatin1Char(':'), Qt::SkipEmptyParts)) dirs << d;
    const QString exeDir = QCoreApplication::instance() ? QCoreApplication::applicationDirPath() : QDir::currentPath();
    dirs << QDir::cleanPath(exeDir + QStringLiteral("/../lib/quantlens/plugins"));
    return dirs;
}

void PluginRegistry::scan(const QStringList& dirs)
{
    for (const QString& d : dirs) {
        const QDir dir(d);
        if (!dir.exists()) continue;
        for (const QFileInfo& fi : dir.entryInfoList(QDir::Files, QDir::Name))
            if (QLibrary::isLibrary(fi.fileName())) consider(fi.absoluteFilePath());
    }
}

void PluginRegistry::consider(const QString& file)
{
    const std::string path = file.toStdString();
    QPluginLoader loader(file);
    // Metadata first: a module for another API version is never loaded (its code may not
    // even link against this QuantLens).
    const QJsonObject meta = loader.metaData();
    if (meta.isEmpty()) {
        m_problems.push_back(path + ": not a Qt plugin module (no metadata)");
        return;
    }
    if (meta.value(QStringLiteral("IID")).toString() != QLatin1String(QuantLensPlugin_iid)) {
        m_problems.push_back(path + ": not a QuantLens plugin (interface " +
                             meta.value(QStringLiteral("IID")).toString().toStdString() + ")");
        return;
    }
    const QJsonObject md = meta.value(QStringLiteral("MetaData")).toObject();
    const std::string name = md.value(QStringLiteral("name")).toString(QFileInfo(file).baseName()).toStdString();
    const int api = md.value(QStringLiteral("apiVersion")).toInt(-1);
    if (api != kPluginApiVersion) {
        m_problems.push_back(path + " (plugin " + name + "): apiVersion " + std::to_string(api) +
                             ", this QuantLens supports " + std::to_string(kPluginApiVersion) + "; not loaded");
        return;
    }
    std::vector<std::string> declared;
    for (const auto& v : md.value(QStringLiteral("methods")).toArray()) declared.push_back(v.toString().toStdString());
    if (declared.empty()) {
        m_problems.push_back(path + " (plugin " + name + "): metadata lists no methods; not loaded");
        return;
    }
    for (const auto& id : declared)
        if (m_methods.count(id) || m_transforms.count(id)) {
            const std::string& owner = m_methods.count(id) ? m_methods.at(id).plugin : m_transforms.at(id).plugin;
            m_problems.push_back(path + " (plugin " + name + "): method " + id + " is already provided by " + owner +
                                 "; not loaded");
            return;
        }
    QObject* root = loader.instance(); // stays loaded for the life of the process
    if (!root) {
        m_problems.push_back(path + " (plugin " + name + "): cannot load: " + loader.errorString().toStdString());
        return;
    }
    auto* plugin = qobject_cast<QuantLensPlugin*>(root);
    if (!plugin) {
        m_problems.push_back(path + " (plugin " + name + "): does not implement the QuantLens interface");
        return;
    }
    std::vector<std::shared_ptr<Quantizer>> made;
    std::vector<std::shared_ptr<Transform>> madeTransforms;
    try {
        made = plugin->quantizers();
        madeTransforms = plugin->transforms();
    } catch (...) {
        m_problems.push_back(path + " (plugin " + name + "): threw while listing its methods");
        return;
    }
    auto declaredId = [&](const std::string& id, const char* what) {
        const bool ok = !id.empty() && std::find(declared.begin(), declared.end(), id) != declared.end() &&
                        !m_methods.count(id) && !m_transforms.count(id);
        if (!ok)
            m_problems.push_back(path + " (plugin " + name + "): offers " + what + " \"" + id +
                                 "\" that its metadata does not declare (or offers twice); skipped");
        return ok;
    };
    for (const auto& q : made) {
        const std::string id = q ? q->id() : std::string();
        if (!q || !declaredId(id, "method")) continue;
        std::shared_ptr<Quantizer> guarded;
        if (q->asBlockQuantizer())
            guarded = std::make_shared<GuardedBlockQuantizer>(q, name);
        else
            guarded = std::make_shared<GuardedQuantizer>(q, name);
        m_methods[id] = MethodInfo{id, name, path, std::move(guarded)};
    }
    for (const auto& t : madeTransforms) {
        const std::string id = t ? t->id() : std::string();
        if (!t || !declaredId(id, "transform")) continue;
        m_transforms[id] = TransformInfo{id, name, path, std::make_shared<GuardedTransform>(t, name)};
    }
}

const Quantizer* PluginRegistry::quantizer(const std::string& id) const
{
    auto it = m_methods.find(id);
    return it == m_methods.end() ? nullptr : it->second.quantizer.get();
}

const Transform* PluginRegistry::transform(const std::string& id) const
{
    auto it = m_transforms.find(id);
    return it == m_transforms.end() ? nullptr : it->second.transform.get();
}

RecipeRunner makeRecipeRunner(const Model& model, const PluginRegistry& plugins, int threads)
{
    RecipeRunner runner(
        model, [&plugins](const std::string& id) { return plugins.quantizer(id); },
        [&plugins](const std::string& id) { return plugins.transform(id); });
    runner.setThreads(threads);
    return runner;
}

} // namespace ql
