#include "clicommon.h"

#include "quantlens/forward/forward.h"
#include "quantlens/grad/blockgrad.h"
#include "quantlens/model/model.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

namespace ql::cli {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

} // namespace

int cmdBenchBackward(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption(
        {QStringLiteral("ctx"), QStringLiteral("Tokens of the sequence."), QStringLiteral("N"), QStringLiteral("512")});
    p.addOption({QStringLiteral("reps"), QStringLiteral("Repetitions of each measurement (the fastest is kept)."),
                 QStringLiteral("N"), QStringLiteral("3")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(p, args, 1, "quantlens-cli bench-backward MODEL_DIR [options]")) return 1;
    auto ctx = intOption(p, QStringLiteral("ctx"), 2);
    if (!ctx) return fail(ctx.message());
    auto reps = intOption(p, QStringLiteral("reps"), 1);
    if (!reps) return fail(reps.message());
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return fail(threads.message());
    auto model = Model::open(p.positionalArguments()[0].toStdString());
    if (!model) return fail(model.message());
    const ModelConfig& c = model->config();
    if (*threads > 0) omp_set_num_threads(*threads);

    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> dist(0, c.vocab - 1);
    std::vector<int32_t> ids(static_cast<size_t>(*ctx), 0);
    for (auto& t : ids) t = dist(rng);
    Eigen::MatrixXf x;
    if (auto e = model->embed(ids, x); !e) return fail(e.message());
    BlockWeights w;
    if (auto b = model->block(0, w); !b) return fail(b.message());
    const Eigen::MatrixXf dy = Eigen::MatrixXf::Random(x.rows(), x.cols());

    // The forward pass alone: ForwardEngine on block 0 (what analysis and evaluation run).
    ForwardEngine engine(c, *model);
    ForwardOptions fo;
    fo.threads = *threads;
    double forward = 1e30, backward = 1e30, tapeForward = 1e30;
    BlockBackward bb(c);
    BlockGradients g;
    Eigen::MatrixXf y, dx;
    for (int r = 0; r <= *reps; ++r) { // the first round warms up and is not kept
        std::vector<Eigen::MatrixXf> states{x};
        auto t0 = Clock::now();
        if (auto e = engine.runLayers(0, 1, states, fo); !e) return fail(e.message());
        const double f = secondsSince(t0);
        t0 = Clock::now();
        if (auto e = bb.forward(w, x, y); !e) return fail(e.message());
        const double tf = secondsSince(t0);
        g.reset(w);
        t0 = Clock::now();
        bb.backward(w, dy, dx, &g);
        const double b = secondsSince(t0);
        if (r > 0) {
            forward = std::min(forward, f);
            tapeForward = std::min(tapeForward, tf);
            backward = std::min(backward, b);
        }
    }
    ModelConfig one = c;
    one.layers = 1;
    const double forwardFlops = ForwardEngine::flops(one, *ctx, 0); // no logits
    // The backward's useful work: the input and the weight gradient of every product, twice the
    // forward's (attention's four backward products against its two forward ones likewise).
    const double stepFlops = 3.0 * forwardFlops;
    const double step = tapeForward + backward;
    const double peak = measureGemmPeak(c.intermediate, c.hidden, *ctx);
    nlohmann::json j;
    j["model_dir"] = model->dir();
    j["n_ctx"] = *ctx;
    j["threads"] = Eigen::nbThreads();
    j["forward_seconds"] = forward;
    j["tape_forward_seconds"] = tapeForward;
    j["backward_seconds"] = backward;
    j["forward_backward_seconds"] = step;
    j["ratio_to_forward"] = step / forward;
    j["gflops"] = stepFlops / step / 1e9;
    j["forward_gflops"] = forwardFlops / forward / 1e9;
    j["gemm_peak_gflops"] = peak;
    j["fraction_of_gemm_peak"] = stepFlops / step / 1e9 / peak;
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("one block, %d tokens: forward %.4f s; forward with tape %.4f s + backward %.4f s = %.2fx the "
                "forward\n",
                *ctx, forward, tapeForward, backward, step / forward);
    std::printf("forward + backward %.1f GFLOP/s = %.0f%% of the measured GEMM peak %.1f GFLOP/s\n",
                stepFlops / step / 1e9, 100.0 * stepFlops / step / 1e9 / peak, peak);
    return 0;
}

} // namespace ql::cli
