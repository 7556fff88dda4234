#include "clicommon.h"

#include "quantlens/export/openedmodel.h"

#include "quantlens/export/ggufexport.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdio>
#include <map>
#include <optional>

namespace ql::cli {

int cmdExport(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("format"), QStringLiteral("What to write: gguf."), QStringLiteral("FORMAT")});
    p.addOption({QStringLiteral("out"), QStringLiteral("The file to write (replaced only when complete)."),
                 QStringLiteral("PATH")});
    p.addOption({QStringLiteral("run"), QStringLiteral("Export the quantized model of a run folder (quantize --out)."),
                 QStringLiteral("RUN_DIR")});
    p.addOption({QStringLiteral("gguf-type"),
                 QStringLiteral("Type of the 2-D weights: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                                "q3_k, q4_k, q5_k, q6_k (default f16)."),
                 QStringLiteral("TYPE"), QStringLiteral("f16")});
    p.addOption({QStringLiteral("tensor-type"),
                 QStringLiteral("PATTERN=TYPE, repeatable, as llama-quantize's --tensor-type: tensors whose GGUF name "
                                "contains a match of the regular expression PATTERN get TYPE (the first rule wins)."),
                 QStringLiteral("RULE")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(
            p, args, 1,
            "quantlens-cli export MODEL_DIR --format gguf --out PATH [--run RUN_DIR] [--gguf-type TYPE] [--tensor-type PATTERN=TYPE ...] [--json]"))
        return 1;
    const std::string format = p.value(QStringLiteral("format")).toStdString();
    if (format != "gguf") return fail("--format must be gguf, got '" + format + "'");
    if (!p.isSet(QStringLiteral("out"))) return fail("--out PATH is required");
    const std::string out = p.value(QStringLiteral("out")).toStdString();
    auto type = parseGgmlType(p.value(QStringLiteral("gguf-type")).toStdString());
    if (!type) return fail("--gguf-type: " + type.message());

    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    const Model* model = &opened->model;
    if (!opened->tokenizer) return fail(opened->tokenizerError);
    const std::shared_ptr<Tokenizer>* tok = &opened->tokenizer;
    const WeightSource* weights = &*model;
    std::optional<RunState> run;
    if (p.isSet(QStringLiteral("run"))) {
        auto s = loadRun(p.value(QStringLiteral("run")).toStdString(), *model);
        if (!s) return fail(s.message());
        run = std::move(*s);
        weights = run->model.get();
    }
    GgufExportOptions opt;
    opt.type = *type;
    for (const QString& rule : p.values(QStringLiteral("tensor-type"))) {
        const qsizetype eq = rule.lastIndexOf(QLatin1Char('='));
        if (eq <= 0) return fail("--tensor-type expects PATTERN=TYPE, got '" + rule.toStdString() + "'");
        auto t = parseGgmlType(rule.mid(eq + 1).toStdString());
        if (!t) return fail("--tensor-type " + rule.toStdString() + ": " + t.message());
        opt.tensorTypes.emplace_back(rule.left(eq).toStdString(), *t);
    }
    CliFeedback fb("export");
    auto r = exportGguf(*model, *weights, **tok, opt, out, &fb);
    if (!r) return fail(r.message());

    nlohmann::json notes = nlohmann::json::array();
    int kept = 0;
    for (const auto& e : r->tensors) {
        if (!e.note.empty()) notes.push_back({{"tensor", e.name}, {"note", e.note}});
        kept += e.runCodes ? 1 : 0;
    }
    if (p.isSet(QStringLiteral("json"))) {
        nlohmann::json j;
        j["out"] = out;
        j["format"] = "gguf";
        j["type"] = ggmlTypeInfo(*type)->name;
        j["bytes"] = r->bytes;
        j["seconds"] = r->seconds;
        j["mb_per_s"] = r->seconds > 0 ? double(r->bytes) / 1e6 / r->seconds : 0.0;
        j["tensors"] = r->tensors.size();
        j["tensors_with_run_codes"] = kept;
        std::map<std::string, int> byType;
        for (const auto& e : r->tensors) ++byType[ggmlTypeInfo(e.written)->name];
        j["tensors_by_type"] = byType;
        j["fallbacks"] = notes;
        printJson(j);
    } else {
        for (const auto& n : notes)
            std::printf("%s: %s\n", n["tensor"].get<std::string>().c_str(), n["note"].get<std::string>().c_str());
        if (run) std::printf("%d weights carry the run's codes unchanged\n", kept);
        std::printf("wrote %s: %zu tensors, %.1f MB in %.2f s\n", out.c_str(), r->tensors.size(),
                    double(r->bytes) / 1e6, r->seconds);
    }
    return 0;
}

} // namespace ql::cli
