#include "clicommon.h"

#include "quantlens/methods/gptq.h"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <random>

namespace ql::cli {

// GPTQ of one square layer from a precomputed Hessian, against the GEMM peak measured in the
// same run. The Hessian comes from correlated random inputs (a few outlier channels), so the
// factorisation and the updates do the work they do on real layers.
int cmdBenchGptq(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("size"), QStringLiteral("Rows and columns of the layer."), QStringLiteral("N"),
                 QStringLiteral("4096")});
    p.addOption({QStringLiteral("tokens"), QStringLiteral("Calibration tokens behind the Hessian."),
                 QStringLiteral("N"), QStringLiteral("4096")});
    p.addOption({QStringLiteral("bits"), QStringLiteral("Integer width."), QStringLiteral("B"), QStringLiteral("4")});
    p.addOption({QStringLiteral("group"), QStringLiteral("Group size."), QStringLiteral("G"), QStringLiteral("128")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print JSON.")});
    if (!parseArgs(p, args, 0,
                   "quantlens-cli bench-gptq [--size 4096] [--tokens 4096] [--bits 4] [--group 128] [--json]"))
        return 1;
    auto size = intOption(p, QStringLiteral("size"), 8);
    auto tokens = intOption(p, QStringLiteral("tokens"), 1);
    auto bits = intOption(p, QStringLiteral("bits"), 2);
    auto group = intOption(p, QStringLiteral("group"), 1);
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    for (auto* e : {&size, &tokens, &bits, &group, &threads})
        if (!*e) return fail(e->message());
    if (*threads > 0) { omp_set_num_threads(*threads); }
    const int n = *size;
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.f, 1.f);
    Eigen::MatrixXf x(n, *tokens);
    for (Eigen::Index t = 0; t < x.cols(); ++t)
        for (Eigen::Index c = 0; c < n; ++c) x(c, t) = g(rng) * (c % 97 == 0 ? 20.f : 1.f);
    x.bottomRows(n / 2) += 0.5f * x.topRows(n / 2); // correlated channels
    const Eigen::MatrixXf hf = x * x.transpose();
    const Eigen::MatrixXd h = hf.cast<double>();
    RowMatrix w(n, n);
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.02f * g(rng);
    FormatSpec spec;
    auto fmt = intFormatId(*bits, false);
    if (!fmt) return fail(fmt.message());
    spec.format = *fmt;
    spec.groupSize = *group;

    const double peak = measureGemmPeak(n, n, 512);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = gptqQuantize(w, h, spec, {});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r) return fail(r.message());
    // The lazy block updates W[:, i2:] -= E·Hinv[i1:i2, i2:] dominate: about rows·cols² FLOPs;
    // the Hessian's factorisation and inverse add about 5/3·cols³.
    const double updateFlops = double(n) * n * n, totalFlops = updateFlops + 5.0 / 3.0 * double(n) * n * n;
    nlohmann::json j{{"size", n},
                     {"tokens", *tokens},
                     {"format", spec.format},
                     {"group", spec.groupSize},
                     {"seconds", seconds},
                     {"update_gflops", updateFlops / seconds / 1e9},
                     {"total_gflops", totalFlops / seconds / 1e9},
                     {"gemm_peak_gflops", peak},
                     {"fraction_of_gemm_peak", totalFlops / seconds / 1e9 / peak},
                     {"threads", omp_get_max_threads()}};
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("GPTQ %dx%d %s g%d: %.2f s, %.1f GFLOP/s counting the updates and the factorisation (%.0f%% of the "
                "GEMM peak %.1f GFLOP/s measured now)\n",
                n, n, spec.format.c_str(), spec.groupSize, seconds, j["total_gflops"].get<double>(),
                100.0 * j["fraction_of_gemm_peak"].get<double>(), peak);
    return 0;
}

} // namespace ql::cli
