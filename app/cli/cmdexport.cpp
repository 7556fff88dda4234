#include "clicommon.h"

#include "quantlens/export/fakequant.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/export/gptqexport.h"
#include "quantlens/export/imatrix.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/text/calibration.h"
#include "quantlens/text/tokenizer.h"

#include <QSaveFile>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

namespace ql::cli {

namespace {

// Writes text to path atomically (QSaveFile: a temporary beside it, renamed when complete).
Expected<void> writeTextFile(const std::string& path, const std::string& text)
{
    QSaveFile f(QString::fromStdString(path));
    if (!f.open(QIODevice::WriteOnly))
        return makeError(path + ": cannot write (" + f.errorString().toStdString() + ")");
    f.write(text.data(), qint64(text.size()));
    if (!f.commit()) return makeError(path + ": cannot write (" + f.errorString().toStdString() + ")");
    return {};
}

// The recipe a run was made with, with the hashes of the model's weights and of the calibration
// text it needs to be reproduced (a recipe quantize reads; it warns when its inputs differ).
Expected<std::string> runRecipe(const std::string& runDir)
{
    const std::filesystem::path dir(runDir);
    auto recipe = loadRecipe((dir / "recipe.json").string());
    if (!recipe) return recipe.error();
    auto text = readFile((dir / "report.json").string());
    if (!text) return text.error();
    const auto report = nlohmann::json::parse(*text, nullptr, false);
    if (report.is_discarded() || !report.is_object()) return makeError((dir / "report.json").string() + ": not JSON");
    recipe->modelSha256 = report.value("model_sha256", "");
    recipe->calibrationSha256 = report.value("calib_sha256", "");
    return recipeToJson(*recipe);
}

} // namespace

int cmdExport(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("format"),
                 QStringLiteral("What to write: gguf (a llama.cpp file), tensor-types (llama-quantize's "
                                "--tensor-type-file for the same per-tensor types), fakequant (a Hugging Face folder "
                                "of the dequantized weights), recipe (the run's recipe with the hashes of its "
                                "inputs), imatrix (llama.cpp's importance matrix from an analysis file), gptq "
                                "(GPTQ-format safetensors for vLLM, transformers and GPTQModel; needs --run)."),
                 QStringLiteral("FORMAT")});
    p.addOption({QStringLiteral("out"), QStringLiteral("The file or folder to write (appears only when complete)."),
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
    p.addOption({QStringLiteral("dtype"), QStringLiteral("fakequant: F32, F16 or BF16 (default: the model's)."),
                 QStringLiteral("DTYPE")});
    p.addOption({QStringLiteral("imatrix"),
                 QStringLiteral("gguf: weight the rounding with an importance matrix (llama.cpp's imatrix file, GGUF "
                                "or legacy, or one exported by QuantLens)."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("analysis"),
                 QStringLiteral("imatrix: the analysis file (analyze --out) whose statistics become the matrix."),
                 QStringLiteral("FILE.h5")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing output folder.")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(p, args, 1,
                   "quantlens-cli export MODEL_DIR|MODEL.gguf --format gguf|tensor-types|fakequant|recipe|imatrix|gptq "
                   "--out PATH [--run RUN_DIR] [--gguf-type TYPE] [--tensor-type PATTERN=TYPE ...] [--imatrix FILE] "
                   "[--analysis FILE.h5] [--dtype D] [--force] [--json]"))
        return 1;
    const std::string format = p.value(QStringLiteral("format")).toStdString();
    if (format != "gguf" && format != "tensor-types" && format != "fakequant" && format != "recipe" &&
        format != "imatrix" && format != "gptq")
        return fail("--format must be gguf, tensor-types, fakequant, recipe, imatrix or gptq, got '" + format + "'");
    if (!p.isSet(QStringLiteral("out"))) return fail("--out PATH is required");
    const std::string out = p.value(QStringLiteral("out")).toStdString();
    {
        const std::filesystem::path parent = std::filesystem::absolute(out).parent_path();
        if (!std::filesystem::is_directory(parent))
            return fail(parent.string() + ": folder does not exist (for --out " + out + ")");
    }
    auto type = parseGgmlType(p.value(QStringLiteral("gguf-type")).toStdString());
    if (!type) return fail("--gguf-type: " + type.message());
    GgufExportOptions opt;
    opt.type = *type;
    for (const QString& rule : p.values(QStringLiteral("tensor-type"))) {
        const qsizetype eq = rule.lastIndexOf(QLatin1Char('='));
        if (eq <= 0) return fail("--tensor-type expects PATTERN=TYPE, got '" + rule.toStdString() + "'");
        auto t = parseGgmlType(rule.mid(eq + 1).toStdString());
        if (!t) return fail("--tensor-type " + rule.toStdString() + ": " + t.message());
        opt.tensorTypes.emplace_back(rule.left(eq).toStdString(), *t);
    }
    if ((format == "recipe" || format == "gptq") && !p.isSet(QStringLiteral("run")))
        return fail("--format " + format + " needs --run RUN_DIR");
    if (format == "imatrix" && !p.isSet(QStringLiteral("analysis")))
        return fail("--format imatrix needs --analysis FILE.h5 (from quantlens-cli analyze)");
    if (p.isSet(QStringLiteral("imatrix"))) {
        auto m = readImatrix(p.value(QStringLiteral("imatrix")).toStdString());
        if (!m) return fail(m.message());
        opt.importance = std::make_shared<const ImportanceMatrix>(std::move(*m));
    }

    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    const Model* model = &opened->model;
    const WeightSource* weights = &*model;
    std::optional<RunState> run;
    MemoryJob memory;
    memory.kind = MemoryJob::Kind::Export;
    memory.loadsRun = p.isSet(QStringLiteral("run"));
    auto memoryReport = guardMemory(*model, memory, "exporting");
    if (!memoryReport) return fail(memoryReport.message());
    if (p.isSet(QStringLiteral("run"))) {
        auto s = loadRun(p.value(QStringLiteral("run")).toStdString(), *model);
        if (!s) return fail(s.message());
        run = std::move(*s);
        weights = run->model.get();
    }
    nlohmann::json j;
    j["out"] = out;
    j["memory"] = *memoryReport;
    j["format"] = format;
    CliFeedback fb("export");

    if (format == "imatrix") {
        const std::string store = p.value(QStringLiteral("analysis")).toStdString();
        auto a = AnalysisStore::read(store);
        if (!a) return fail(a.message());
        auto sha = sha256OfFiles(model->weightFiles());
        if (!sha) return fail(sha.message());
        if (a->meta.modelSha256 != *sha)
            return fail(store + ": an analysis of other weights (sha256 " + a->meta.modelSha256.substr(0, 12) + "…; " +
                        dir + " has " + sha->substr(0, 12) + "…)");
        auto m = importanceFromAnalysis(*a, *model);
        if (!m) return fail(store + ": " + m.message());
        if (auto w = writeImatrix(*m, out); !w) return fail(w.message());
        j["entries"] = m->entries.size();
    } else if (format == "gptq") {
        GptqExportOptions go;
        go.overwrite = p.isSet(QStringLiteral("force"));
        auto r = exportGptq(*model, *run->model, out, go, &fb);
        if (!r) return fail(r.message());
        j["layers"] = r->layers.size();
        j["float_modules"] = r->floatModules;
        j["dynamic_entries"] = r->dynamicEntries;
        j["bits"] = r->defaults.bits;
        j["group_size"] = r->defaults.groupSize;
        j["bytes"] = r->bytes;
        j["seconds"] = r->seconds;
        j["mb_per_s"] = r->seconds > 0 ? double(r->bytes) / 1e6 / r->seconds : 0.0;
    } else if (format == "recipe") {
        auto r = runRecipe(p.value(QStringLiteral("run")).toStdString());
        if (!r) return fail(r.message());
        if (auto w = writeTextFile(out, *r); !w) return fail(w.message());
    } else if (format == "fakequant") {
        FakeQuantOptions fo;
        fo.dtype = p.value(QStringLiteral("dtype")).toUpper().toStdString();
        fo.overwrite = p.isSet(QStringLiteral("force"));
        auto r = exportFakeQuant(*model, *weights, out, fo, &fb);
        if (!r) return fail(r.message());
        j["tensors"] = r->tensors;
        j["bytes"] = r->bytes;
        j["seconds"] = r->seconds;
        j["mb_per_s"] = r->seconds > 0 ? double(r->bytes) / 1e6 / r->seconds : 0.0;
        j["dtype"] = r->dtype;
        j["tied_embeddings"] = r->tied;
    } else {
        if (!opened->tokenizer) return fail(opened->tokenizerError);
        opt.dryRun = format == "tensor-types";
        auto r = exportGguf(*model, *weights, *opened->tokenizer, opt, out, &fb);
        if (!r) return fail(r.message());
        nlohmann::json notes = nlohmann::json::array();
        int kept = 0;
        std::map<std::string, int> byType;
        for (const auto& e : r->tensors) {
            if (!e.note.empty()) notes.push_back({{"tensor", e.name}, {"note", e.note}});
            kept += e.runCodes ? 1 : 0;
            ++byType[ggmlTypeInfo(e.written)->name];
        }
        if (format == "tensor-types")
            if (auto w = writeTextFile(out, tensorTypeRules(*r)); !w) return fail(w.message());
        j["type"] = ggmlTypeInfo(*type)->name;
        j["bytes"] = r->bytes;
        j["seconds"] = r->seconds;
        j["mb_per_s"] = r->seconds > 0 ? double(r->bytes) / 1e6 / r->seconds : 0.0;
        j["tensors"] = r->tensors.size();
        j["tensors_with_run_codes"] = kept;
        j["tensors_by_type"] = byType;
        j["fallbacks"] = notes;
        if (!p.isSet(QStringLiteral("json"))) {
            for (const auto& n : notes)
                std::printf("%s: %s\n", n["tensor"].get<std::string>().c_str(), n["note"].get<std::string>().c_str());
            if (run) std::printf("%d weights carry the run's codes unchanged\n", kept);
        }
    }
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
    } else if (format == "gguf" || format == "fakequant" || format == "gptq") {
        const std::string count = j.contains("tensors") ? std::to_string(j["tensors"].get<int>()) + " tensors, "
                                  : j.contains("layers")
                                      ? std::to_string(j["layers"].get<int>()) + " quantized layers, "
                                      : "";
        std::printf("wrote %s: %s%.1f MB in %.2f s\n", out.c_str(), count.c_str(),
                    double(j["bytes"].get<uint64_t>()) / 1e6, j["seconds"].get<double>());
    } else {
        std::printf("wrote %s\n", out.c_str());
    }
    return 0;
}

} // namespace ql::cli
