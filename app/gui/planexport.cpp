#include "planexport.h"

#include "quantlens/export/fakequant.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/export/gptqexport.h"
#include "quantlens/export/imatrix.h"
#include "quantlens/recipe/recipe.h"

#include <QSaveFile>

namespace ql {

namespace {

Expected<ExportOutcome> exportGgufLike(const ExportRequest& req, const ExportInputs& in, Job& job)
{
    GgufExportOptions opt;
    opt.type = req.ggufType;
    opt.dryRun = req.preview || req.format == QLatin1String("tensor-types");
    auto r = exportGguf(*in.model, *in.run->model, *in.tokenizer, opt, req.path.toStdString(), &job);
    if (!r) return r.error();
    ExportOutcome out;
    int kept = 0;
    for (const auto& e : r->tensors) {
        const bool fallback = !e.note.empty();
        const QString note = fallback     ? QString::fromStdString(e.note)
                             : e.runCodes ? QStringLiteral("the run's codes, kept exactly")
                                          : QString();
        out.lines.push_back({QString::fromStdString(e.name), QString::fromLatin1(ggmlTypeInfo(e.asked)->name),
                             QString::fromLatin1(ggmlTypeInfo(e.written)->name), note, fallback});
        out.fallbacks += fallback ? 1 : 0;
        kept += e.runCodes ? 1 : 0;
    }
    if (req.format == QLatin1String("tensor-types") && !req.preview)
        QL_TRY(writeTextFile(req.path, tensorTypeRules(*r)));
    out.bytes = r->bytes;
    out.seconds = r->seconds;
    out.summary = QStringLiteral("%1 tensors, %2 with the run's codes unchanged, %3 with a fallback")
                      .arg(r->tensors.size())
                      .arg(kept)
                      .arg(out.fallbacks);
    return out;
}

} // namespace

Expected<void> writeTextFile(const QString& path, const std::string& text)
{
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly))
        return makeError((path + ": cannot write (" + f.errorString() + ")").toStdString());
    f.write(text.data(), qint64(text.size()));
    if (!f.commit()) return makeError((path + ": cannot write (" + f.errorString() + ")").toStdString());
    return {};
}

std::function<Expected<ExportOutcome>(Job&)> exportWork(const ExportRequest& req, const ExportInputs& in)
{
    return [req, in](Job& job) -> Expected<ExportOutcome> {
        const std::string path = req.path.toStdString();
        if (!in.model) return makeError("open a model first");
        if (req.format == QLatin1String("imatrix")) {
            if (!in.analysis) return makeError("an importance matrix comes from an analysis: run one first");
            auto m = importanceFromAnalysis(*in.analysis, *in.model);
            if (!m) return m.error();
            ExportOutcome out;
            out.summary = QStringLiteral("%1 entries from the analysis's activation statistics").arg(m->entries.size());
            if (!req.preview) QL_TRY(writeImatrix(*m, path));
            return out;
        }
        if (!in.run) return makeError("the plan has not been quantized yet (wait for the what-if, or Quantize)");
        if (req.format == QLatin1String("gguf") || req.format == QLatin1String("tensor-types")) {
            if (!in.tokenizer) return makeError("the model has no tokenizer; GGUF files carry one");
            return exportGgufLike(req, in, job);
        }
        ExportOutcome out;
        if (req.format == QLatin1String("gptq")) {
            GptqExportOptions opt;
            opt.dryRun = req.preview;
            opt.overwrite = true; // the dialog asked before replacing a folder
            auto r = exportGptq(*in.model, *in.run->model, path, opt, &job);
            if (!r) return r.error();
            for (const auto& l : r->layers)
                out.lines.push_back(
                    {QString::fromStdString(l.module), QString(),
                     QStringLiteral("int%1 g%2%3").arg(l.bits).arg(l.groupSize).arg(l.sym ? " sym" : " asym"),
                     QString::fromStdString(l.note), !l.note.empty()});
            for (const auto& m : r->floatModules)
                out.lines.push_back({QString::fromStdString(m), QString(), QStringLiteral("fp16"), QString()});
            for (const auto& l : out.lines) out.fallbacks += l.fallback ? 1 : 0;
            out.bytes = r->bytes;
            out.seconds = r->seconds;
            out.summary = QStringLiteral("%1 quantized layers, %2 in fp16, %3 dynamic entries")
                              .arg(r->layers.size())
                              .arg(r->floatModules.size())
                              .arg(r->dynamicEntries);
            return out;
        }
        if (req.format == QLatin1String("fakequant")) {
            out.summary = QStringLiteral("every weight dequantized, in the model's dtype");
            if (req.preview) return out;
            FakeQuantOptions opt;
            opt.overwrite = true;
            auto r = exportFakeQuant(*in.model, *in.run->model, path, opt, &job);
            if (!r) return r.error();
            out.bytes = r->bytes;
            out.seconds = r->seconds;
            out.summary = QStringLiteral("%1 tensors in %2").arg(r->tensors).arg(QString::fromStdString(r->dtype));
            return out;
        }
        if (req.format == QLatin1String("recipe")) {
            Recipe r = in.run->recipe;
            r.modelSha256 = in.modelSha256;
            r.calibrationSha256 = in.run->calib.sha256;
            out.summary = QStringLiteral("the plan with the hashes of the model and the calibration text");
            if (!req.preview) QL_TRY(writeTextFile(req.path, recipeToJson(r)));
            return out;
        }
        return makeError("unknown export format '" + req.format.toStdString() + "'");
    };
}

} // namespace ql
