#include "project.h"

#include "quantlens/analysis/analyzer.h"
#include "quantlens/recipe/recipe.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

#include <nlohmann/json.hpp>

namespace ql {

namespace {

QString relativeTo(const QDir& base, const QString& path)
{
    if (path.isEmpty()) return path;
    const QString rel = base.relativeFilePath(path);
    return rel.startsWith(QLatin1String("..")) ? QDir::cleanPath(path) : rel;
}

QString resolve(const QDir& base, const QString& path)
{
    return path.isEmpty() ? path : QDir::cleanPath(base.absoluteFilePath(path));
}

Expected<void> fieldError(const QString& file, const char* field, const QString& what)
{
    return makeError((file + ": " + field + ": " + what).toStdString());
}

QJsonObject sensitivityOptionsJson(const Project& p)
{
    QJsonArray methods, bits, groups;
    for (const std::string& m : p.sensMethods) methods.append(QString::fromStdString(m));
    for (int b : p.sensBits) bits.append(b);
    for (int g : p.sensGroups) groups.append(g);
    return QJsonObject{{"methods", methods}, {"bits", bits}, {"groups", groups}};
}

} // namespace

AnalyzeOptions Project::analyzeOptions() const
{
    AnalyzeOptions opt;
    opt.sensitivity = parseSensitivityMode(sensitivity.toStdString()).value_or(SensitivityMode::Proxy);
    opt.methods = sensMethods;
    opt.bits = sensBits;
    opt.groups = sensGroups;
    return opt;
}

QString Project::defaultStore(const QString& projectPath)
{
    const QFileInfo fi(projectPath);
    return fi.absoluteDir().filePath(fi.completeBaseName() + QStringLiteral(".h5"));
}

Expected<Project> Project::load(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return makeError((path + ": cannot open: " + f.errorString()).toStdString());
    QJsonParseError perr;
    const QByteArray bytes = f.readAll();
    const QJsonDocument doc = QJsonDocument::fromJson(bytes, &perr);
    if (doc.isNull() || !doc.isObject())
        return makeError((path + ": not a QuantLens project (JSON error: " + perr.errorString() + ")").toStdString());
    const QJsonObject o = doc.object();
    if (o.value(QStringLiteral("version")).toInt() != 1)
        return fieldError(path, "version", QStringLiteral("expected 1")).error();
    const QDir base = QFileInfo(path).absoluteDir();
    Project p;
    p.path = QFileInfo(path).absoluteFilePath();
    p.modelDir = resolve(base, o.value(QStringLiteral("model")).toString());
    if (p.modelDir.isEmpty()) return fieldError(path, "model", QStringLiteral("missing (the model folder)")).error();
    const QJsonObject c = o.value(QStringLiteral("calibration")).toObject();
    p.calibFile = resolve(base, c.value(QStringLiteral("file")).toString());
    p.calib.samples = c.value(QStringLiteral("samples")).toInt(p.calib.samples);
    p.calib.seqlen = c.value(QStringLiteral("seqlen")).toInt(p.calib.seqlen);
    const QString sampling = c.value(QStringLiteral("sampling")).toString(QStringLiteral("random"));
    const auto parsed = parseSampling(sampling.toStdString());
    if (!parsed)
        return fieldError(path, "calibration.sampling", "expected random or contiguous, got " + sampling).error();
    p.calib.sampling = *parsed;
    p.calib.seed = uint64_t(c.value(QStringLiteral("seed")).toInteger(0));
    if (p.calib.samples <= 0 || p.calib.seqlen <= 1)
        return fieldError(path, "calibration", QStringLiteral("samples must be positive and seqlen at least 2"))
            .error();
    p.sensitivity = o.value(QStringLiteral("sensitivity")).toString(QStringLiteral("proxy"));
    if (!parseSensitivityMode(p.sensitivity.toStdString()))
        return fieldError(path, "sensitivity", "expected none, proxy, fisher or full, got " + p.sensitivity).error();
    p.klSamples = o.value(QStringLiteral("kl_samples")).toInt(4);
    if (o.contains(QStringLiteral("sensitivity_options"))) {
        const QJsonObject so = o.value(QStringLiteral("sensitivity_options")).toObject();
        auto ints = [&](const char* key, int lo, int hi, std::vector<int>& out) -> Expected<void> {
            if (!so.contains(QLatin1String(key))) return {};
            out.clear();
            for (const QJsonValue& v : so.value(QLatin1String(key)).toArray()) {
                if (!v.isDouble() || v.toInt(-1) < lo || v.toInt(-1) > hi)
                    return fieldError(
                        path, "sensitivity_options",
                        QStringLiteral("%1 must be integers from %2 to %3").arg(QLatin1String(key)).arg(lo).arg(hi));
                out.push_back(v.toInt());
            }
            if (out.empty()) return fieldError(path, "sensitivity_options", QStringLiteral("%1 is empty").arg(key));
            return {};
        };
        QL_TRY(ints("bits", 2, 8, p.sensBits));
        QL_TRY(ints("groups", 0, 1 << 20, p.sensGroups));
        if (so.contains(QStringLiteral("methods"))) {
            p.sensMethods.clear();
            for (const QJsonValue& v : so.value(QStringLiteral("methods")).toArray()) {
                if (v.toString() != QLatin1String("rtn") && v.toString() != QLatin1String("gptq"))
                    return fieldError(path, "sensitivity_options", QStringLiteral("methods must be rtn or gptq"))
                        .error();
                p.sensMethods.push_back(v.toString().toStdString());
            }
            if (p.sensMethods.empty())
                return fieldError(path, "sensitivity_options", QStringLiteral("methods is empty")).error();
        }
    }
    p.storeFile = resolve(base, o.value(QStringLiteral("analysis")).toString());
    if (p.storeFile.isEmpty()) p.storeFile = defaultStore(path);
    const QJsonObject e = o.value(QStringLiteral("evaluation")).toObject();
    p.evalFile = resolve(base, e.value(QStringLiteral("file")).toString());
    p.quickWindows = e.value(QStringLiteral("quick_windows")).toInt(p.quickWindows);
    p.quickCtx = e.value(QStringLiteral("quick_ctx")).toInt(p.quickCtx);
    p.quickCompute = e.value(QStringLiteral("quick_compute")).toString(p.quickCompute);
    if (p.quickCompute != QLatin1String("auto") && p.quickCompute != QLatin1String("fp32") &&
        p.quickCompute != QLatin1String("bf16"))
        return fieldError(path, "evaluation", "quick_compute must be auto, fp32 or bf16, got " + p.quickCompute)
            .error();
    if (p.quickWindows <= 0 || p.quickCtx < 2)
        return fieldError(path, "evaluation", QStringLiteral("quick_windows must be positive and quick_ctx at least 2"))
            .error();
    for (const QJsonValue& v : o.value(QStringLiteral("runs")).toArray()) {
        const QJsonObject r = v.toObject();
        SavedRun run;
        run.name = r.value(QStringLiteral("name")).toString();
        run.folder = resolve(base, r.value(QStringLiteral("folder")).toString());
        if (run.name.isEmpty() || run.folder.isEmpty())
            return fieldError(path, "runs", QStringLiteral("every entry needs a name and a folder")).error();
        run.bitsPerWeight = r.value(QStringLiteral("bits_per_weight")).toDouble();
        run.quickKl = r.value(QStringLiteral("quick_kl")).toDouble(-1);
        run.quickPpl = r.value(QStringLiteral("quick_ppl")).toDouble(-1);
        run.fullPpl = r.value(QStringLiteral("full_ppl")).toDouble(-1);
        p.runs.append(run);
    }
    const QJsonValue plan = o.value(QStringLiteral("plan"));
    if (!plan.isUndefined() && !plan.isNull()) {
        if (!plan.isObject()) return fieldError(path, "plan", QStringLiteral("expected a recipe object")).error();
        // Read again in file order: a recipe's overrides apply in order, and QJsonObject sorts keys.
        const auto ordered = nlohmann::ordered_json::parse(bytes.constData(), bytes.constData() + bytes.size(), nullptr,
                                                           false);
        // Qt's reader accepts a few files nlohmann's does not (for instance a NUL after the
        // document); such a file is refused rather than read half-way.
        if (ordered.is_discarded() || !ordered.is_object() || !ordered.contains("plan"))
            return fieldError(path, "plan", QStringLiteral("the file is not strict JSON")).error();
        p.planJson = QString::fromStdString(ordered.at("plan").dump(2));
        if (auto r = parseRecipe(p.planJson.toStdString()); !r)
            return fieldError(path, "plan", QString::fromStdString(r.message())).error();
    }
    return p;
}

Expected<void> Project::save(const QString& target)
{
    const QString abs = QFileInfo(target).absoluteFilePath();
    const QDir base = QFileInfo(abs).absoluteDir();
    if (storeFile.isEmpty()) storeFile = defaultStore(abs);
    QJsonObject c{{"file", relativeTo(base, calibFile)},
                  {"samples", calib.samples},
                  {"seqlen", calib.seqlen},
                  {"sampling", samplingName(calib.sampling)},
                  {"seed", qint64(calib.seed)}};
    QJsonObject o{{"version", 1},
                  {"model", relativeTo(base, modelDir)},
                  {"calibration", c},
                  {"sensitivity", sensitivity},
                  {"kl_samples", klSamples},
                  {"sensitivity_options", sensitivityOptionsJson(*this)},
                  {"analysis", relativeTo(base, storeFile)},
                  {"evaluation", QJsonObject{{"file", relativeTo(base, evalFile)},
                                             {"quick_windows", quickWindows},
                                             {"quick_ctx", quickCtx},
                                             {"quick_compute", quickCompute}}}};
    QJsonArray runList;
    for (const SavedRun& r : runs)
        runList.append(QJsonObject{{"name", r.name},
                                   {"folder", relativeTo(base, r.folder)},
                                   {"bits_per_weight", r.bitsPerWeight},
                                   {"quick_kl", r.quickKl},
                                   {"quick_ppl", r.quickPpl},
                                   {"full_ppl", r.fullPpl}});
    if (!runList.isEmpty()) o.insert(QStringLiteral("runs"), runList);
    // The plan goes in through an order-keeping JSON: a recipe's overrides apply in order.
    auto out = nlohmann::ordered_json::parse(QJsonDocument(o).toJson().toStdString());
    if (!planJson.isEmpty()) {
        auto plan = nlohmann::ordered_json::parse(planJson.toStdString(), nullptr, false);
        if (!plan.is_object()) return makeError((abs + ": the plan is not a recipe object").toStdString());
        out["plan"] = std::move(plan);
    }
    QSaveFile f(abs);
    if (!f.open(QIODevice::WriteOnly)) return makeError((abs + ": cannot write: " + f.errorString()).toStdString());
    f.write(QByteArray::fromStdString(out.dump(2) + "\n"));
    if (!f.commit()) return makeError((abs + ": cannot write: " + f.errorString()).toStdString());
    path = abs;
    return {};
}

QString describeRun(const SavedRun& r)
{
    QString text = QStringLiteral("%1 — %2 bits/weight").arg(r.name).arg(r.bitsPerWeight, 0, 'f', 3);
    if (r.quickKl >= 0)
        text += QStringLiteral(", quick KL %1, ppl %2").arg(r.quickKl, 0, 'g', 4).arg(r.quickPpl, 0, 'f', 3);
    if (r.fullPpl >= 0) text += QStringLiteral(", full ppl %1").arg(r.fullPpl, 0, 'f', 3);
    return text;
}

} // namespace ql
