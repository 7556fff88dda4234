#include "clicommon.h"

#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <random>

namespace ql::cli {

namespace {

using Clock = std::chrono::steady_clock;

} // namespace

int cmdBenchForward(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption(
        {QStringLiteral("ctx"), QStringLiteral("Tokens per sequence."), QStringLiteral("N"), QStringLiteral("512")});
    p.addOption(
        {QStringLiteral("chunks"), QStringLiteral("Sequences to time."), QStringLiteral("N"), QStringLiteral("2")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("all-logits"),
                 QStringLiteral("Compute logits for every position (default: last only, as llama-bench's pp test).")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(p, args, 1, "quantlens-cli bench-forward MODEL_DIR [options]")) return 1;
    auto ctx = intOption(p, QStringLiteral("ctx"), 1);
    if (!ctx) return fail(ctx.message());
    auto chunks = intOption(p, QStringLiteral("chunks"), 1);
    if (!chunks) return fail(chunks.message());
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return fail(threads.message());
    const bool allLogits = p.isSet(QStringLiteral("all-logits"));

    auto model = Model::open(p.positionalArguments()[0].toStdString());
    if (!model) return fail(model.message());
    const ModelConfig& c = model->config();
    if (*threads > 0) { omp_set_num_threads(*threads); }
    const int nThreads = Eigen::nbThreads();

    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> dist(0, c.vocab - 1);
    std::vector<std::vector<int32_t>> seqs(*chunks, std::vector<int32_t>(*ctx));
    for (auto& s : seqs)
        for (auto& t : s) t = dist(rng);

    ForwardEngine engine(c, *model);
    engine.setCacheLmHead(true);
    ForwardOptions fo;
    fo.threads = *threads;
    fo.logitsFrom = allLogits ? 0 : -1;
    auto noSink = [](int, const Eigen::MatrixXf&) -> Expected<void> { return {}; };
    // Warm-up: pages in the mapping, sizes scratch buffers, converts lm_head once.
    auto warm = engine.run({seqs[0]}, noSink, fo);
    if (!warm) return fail(warm.message());

    CliFeedback fb("bench-forward");
    const auto t0 = Clock::now();
    auto r = engine.run(seqs, noSink, fo, &fb);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!r) return fail(r.message());

    const double tokens = double(*ctx) * *chunks;
    const double flops = engine.flopsPerSequence(*ctx, allLogits ? *ctx : 1) * *chunks;
    const double gflops = flops / seconds / 1e9;
    const double peak = measureGemmPeak(c.intermediate, c.hidden, *ctx);

    nlohmann::json j;
    j["model_dir"] = model->dir();
    j["n_ctx"] = *ctx;
    j["chunks"] = *chunks;
    j["threads"] = nThreads;
    j["all_logits"] = allLogits;
    j["parameters"] = model->parameterCount();
    j["seconds"] = seconds;
    j["tokens_per_s"] = tokens / seconds;
    j["gflops"] = gflops;
    j["gemm_peak_gflops"] = peak;
    j["fraction_of_gemm_peak"] = gflops / peak;
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("prompt processing: %.1f tokens/s (%d x %d tokens, %d threads, %.3f s)\n", tokens / seconds, *chunks,
                *ctx, nThreads, seconds);
    std::printf("%.1f GFLOP/s = %.0f%% of the measured GEMM peak %.1f GFLOP/s\n", gflops, 100.0 * gflops / peak, peak);
    return 0;
}

} // namespace ql::cli
