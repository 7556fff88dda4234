#include "clicommon.h"
#include "quantizerun.h"

#include "quantlens/export/llamacppruntime.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/model/model.h"
#include "quantlens/store/runstate.h"
#include "quantlens/text/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace ql::cli {

int cmdEval(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("data"), QStringLiteral("Evaluation text file."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Window length in tokens."), QStringLiteral("N"),
                 QStringLiteral("512")});
    p.addOption({QStringLiteral("chunks"), QStringLiteral("Windows to evaluate (-1: all)."), QStringLiteral("N"),
                 QStringLiteral("-1")});
    p.addOption({QStringLiteral("protocol"), QStringLiteral("llamacpp (BOS, score second half) or paper (score all)."),
                 QStringLiteral("P"), QStringLiteral("llamacpp")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("force-ctx"),
                 QStringLiteral("Run even when --ctx exceeds the model's max_position_embeddings.")});
    addNonFiniteOption(p);
    p.addOption({QStringLiteral("kl-ref"), QStringLiteral("Also report KL divergence from this reference model."),
                 QStringLiteral("MODEL_DIR|MODEL.gguf")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    p.addOption({QStringLiteral("verbose"), QStringLiteral("Print running perplexity per batch on stderr.")});
    p.addOption({QStringLiteral("run"),
                 QStringLiteral("Evaluate the quantized model saved in a run folder (quantize --out)."),
                 QStringLiteral("RUN_DIR")});
    p.addOption({QStringLiteral("runtime"),
                 QStringLiteral("Simulate a runtime's numerics: llamacpp (activations in the format each GGUF "
                                "weight type asks for, F16 KV cache; the model must be a .gguf file)."),
                 QStringLiteral("R")});
    addComputeOption(p);
    addRecipeOptions(p);
    if (!parseArgs(p, args, 1,
                   "quantlens-cli eval MODEL_DIR|MODEL.gguf --data FILE [--run RUN_DIR | --recipe R.json] [options]"))
        return 1;
    if (!p.isSet(QStringLiteral("data"))) return fail("eval needs --data FILE");

    EvalOptions opt;
    const QString proto = p.value(QStringLiteral("protocol"));
    if (proto == QLatin1String("llamacpp"))
        opt.protocol = PplProtocol::LlamaCpp;
    else if (proto == QLatin1String("paper"))
        opt.protocol = PplProtocol::Paper;
    else
        return fail("--protocol must be llamacpp or paper, got '" + proto.toStdString() + "'");
    auto ctx = intOption(p, QStringLiteral("ctx"), 2);
    if (!ctx) return fail(ctx.message());
    auto chunks = intOption(p, QStringLiteral("chunks"), -1);
    if (!chunks) return fail(chunks.message());
    if (*chunks == 0) return fail("--chunks must be positive, or -1 for all windows");
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return fail(threads.message());
    opt.ctx = *ctx;
    opt.chunks = *chunks;
    opt.threads = *threads;
    if (auto c = applyComputeOption(p, opt); !c) return fail(c.message());

    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    Model* model = &opened->model;
    opt.beyondTrainedPositions = p.isSet(QStringLiteral("force-ctx"));
    if (auto c = checkSequenceLength(model->config(), opt.ctx, opt.beyondTrainedPositions, "--ctx"); !c)
        return fail(c.message() + ", or pass --force-ctx to run anyway");
    applyNonFiniteOption(p, *model);
    if (!opened->tokenizer) return fail(opened->tokenizerError);
    const std::shared_ptr<Tokenizer>* tok = &opened->tokenizer;
    const std::string dataPath = p.value(QStringLiteral("data")).toStdString();
    auto read = readEvaluationTokens(dataPath, **tok);
    if (!read) return fail(read.message());
    const std::vector<int32_t>& tokens = *read;
    const int bos = opt.protocol == PplProtocol::LlamaCpp && (*tok)->addsBos() ? (*tok)->bosId() : -1;

    // With a recipe, the model is quantized in memory first and evaluated through its fake-quant weights.
    const WeightSource* weights = &*model;
    std::optional<QuantizeRun> run;
    std::optional<RunState> saved;
    MemoryJob memory;
    memory.kind = MemoryJob::Kind::Eval;
    memory.ctx = opt.ctx;
    // A bad window layout is reported by the evaluation itself; the guard then assumes none.
    const auto windows = makeWindows(tokens, bos, opt);
    memory.evalWindows = windows ? int64_t(windows->size()) : 0;
    memory.loadsRun = p.isSet(QStringLiteral("run"));
    Expected<nlohmann::json> memoryReport = nlohmann::json();
    if (!p.isSet(QStringLiteral("recipe"))) memoryReport = guardMemory(*model, memory, "evaluating");
    if (!memoryReport) return fail(memoryReport.message());
    if (p.isSet(QStringLiteral("run"))) {
        if (p.isSet(QStringLiteral("recipe"))) return fail("pass either --run or --recipe, not both");
        auto s = loadRun(p.value(QStringLiteral("run")).toStdString(), *model);
        if (!s) return fail(s.message());
        saved = std::move(*s);
        weights = saved->model.get();
    } else if (p.isSet(QStringLiteral("recipe"))) {
        PluginRegistry plugins;
        scanPlugins(plugins);
        CliFeedback qfb("quantize");
        auto q = quantizeWithRecipe(p, *model, tok->get(), plugins, opt.threads, &qfb, &memory, &*memoryReport);
        if (!q) return fail(q.message());
        run = std::move(*q);
        weights = run->model.get();
    }
    std::optional<LlamaCppRuntime> runtime;
    if (p.isSet(QStringLiteral("runtime"))) {
        const std::string name = p.value(QStringLiteral("runtime")).toStdString();
        if (name != "llamacpp") return fail("--runtime must be llamacpp, got '" + name + "'");
        if (!opened->gguf)
            return fail("--runtime llamacpp reads the weight types of a GGUF file; export the model or run with "
                        "'quantlens-cli export ... --format gguf' and evaluate that file");
        if (run || saved) return fail("--runtime llamacpp evaluates a GGUF file as it is; drop --run and --recipe");
        auto rt = LlamaCppRuntime::make(*weights, *opened->gguf, model->config());
        if (!rt) return fail(rt.message());
        runtime = std::move(*rt);
        if (p.value(QStringLiteral("compute")) != QLatin1String("fp32"))
            return fail("--runtime llamacpp computes in the GGUF's own formats; drop --compute");
        runtime->apply(opt);
        weights = &*runtime;
    }
    if (windows) announceCost(evaluationFlops(model->config(), opt, int64_t(windows->size())), "this evaluation");
    CliFeedback fb("eval", p.isSet(QStringLiteral("verbose")));
    auto r = evaluatePerplexity(model->config(), *weights, tokens, bos, opt, &fb);
    if (!r) return fail(r.message());

    nlohmann::json j;
    j["model_dir"] = dir;
    j["memory"] = *memoryReport;
    j["data"] = dataPath;
    j["ppl"] = r->ppl;
    j["mean_nll"] = r->meanNll;
    j["nll_stderr"] = r->nllStdErr;
    j["protocol"] = protocolName(r->protocol);
    j["n_ctx"] = r->ctx;
    j["chunks"] = r->chunks;
    j["tokens_scored"] = r->tokensScored;
    j["tokens_processed"] = r->tokensProcessed;
    j["text_tokens"] = tokens.size();
    j["bos"] = bos;
    j["seconds"] = r->seconds;
    j["tokens_per_s"] = r->seconds > 0 ? double(r->tokensProcessed) / r->seconds : 0.0;
    if (runtime) j["runtime"] = "llamacpp";
    j["compute"] = opt.runtime.bf16Products ? "bf16" : "fp32";
    if (saved) j["run"] = p.value(QStringLiteral("run")).toStdString();
    if (run) {
        j["recipe"] = p.value(QStringLiteral("recipe")).toStdString();
        j["quantization"] = runReport(*model, *run);
        j["quantization"].erase("layers");
    }

    if (p.isSet(QStringLiteral("kl-ref"))) {
        const std::string refDir = p.value(QStringLiteral("kl-ref")).toStdString();
        auto refOpened = OpenedModel::open(refDir, &ofb);
        if (!refOpened) return fail(refOpened.message());
        const Model* ref = &refOpened->model;
        CliFeedback kfb("kl", p.isSet(QStringLiteral("verbose")));
        auto kl = evaluateKl(ref->config(), *ref, model->config(), *weights, tokens, bos, opt, &kfb);
        if (!kl) return fail(kl.message());
        j["kl"] = {{"reference", refDir},         {"mean_kl", kl->meanKl},
                   {"max_kl", kl->maxKl},         {"top1_agreement", kl->top1Agreement},
                   {"ppl_reference", kl->pplRef}, {"tokens_scored", kl->tokensScored},
                   {"seconds", kl->seconds}};
    }

    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("ppl = %.4f  (+/- %.4f)  protocol %s, ctx %d, %d windows, %lld tokens scored%s\n", r->ppl,
                r->ppl * r->nllStdErr, protocolName(r->protocol), r->ctx, r->chunks, (long long)r->tokensScored,
                bos >= 0 ? ", BOS at window start" : "");
    std::printf("%.2f s, %.1f tokens/s\n", r->seconds, j["tokens_per_s"].get<double>());
    if (run)
        std::printf("quantized with %s: %.3f bits per weight over %zu layers (%.1f s)\n",
                    j["recipe"].get<std::string>().c_str(), j["quantization"]["bits_per_weight"].get<double>(),
                    run->model->layers().size(), run->stats.seconds);
    if (j.contains("kl"))
        std::printf("KL(ref || model) = %.6f nats/token (max %.4f), top-1 agreement %.2f%%, reference ppl %.4f\n",
                    j["kl"]["mean_kl"].get<double>(), j["kl"]["max_kl"].get<double>(),
                    100.0 * j["kl"]["top1_agreement"].get<double>(), j["kl"]["ppl_reference"].get<double>());
    return 0;
}

} // namespace ql::cli
