#include "clicommon.h"

#include "quantlens/forward/bf16gemm.h"
#include "quantlens/model/model.h"
#include "quantlens/model/weights.h"
#include "quantlens/text/calibration.h"

#include <chrono>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace ql::cli {

namespace {
std::atomic<bool> g_canceled{false};
extern "C" void onSigint(int)
{
    g_canceled = true;
}
} // namespace

CliFeedback::CliFeedback(std::string label, bool verbose)
    : m_label(std::move(label)), m_tty(::isatty(STDERR_FILENO) == 1), m_verbose(verbose)
{
    std::signal(SIGINT, onSigint);
}

CliFeedback::~CliFeedback()
{
    if (m_tty && m_lastPercent >= 0) std::fputs("\n", stderr);
    std::signal(SIGINT, SIG_DFL);
}

void CliFeedback::progress(double fraction)
{
    if (!m_tty) return;
    const int pct = static_cast<int>(fraction * 100.0);
    if (pct == m_lastPercent) return;
    m_lastPercent = pct;
    std::fprintf(stderr, "\r%s: %3d%%", m_label.c_str(), pct);
    std::fflush(stderr);
}

void CliFeedback::message(const std::string& text)
{
    if (!m_tty && !m_verbose) return;
    std::fprintf(stderr, "%s%s: %s\n", m_tty && m_lastPercent >= 0 ? "\r" : "", m_label.c_str(), text.c_str());
}

bool CliFeedback::isCanceled() const
{
    return g_canceled.load();
}

bool parseArgs(QCommandLineParser& parser, const QStringList& args, int positional, const char* usage)
{
    parser.addHelpOption();
    if (!parser.parse(args)) {
        fail(parser.errorText().toStdString());
        return false;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        std::cout << usage << "\n" << parser.helpText().toStdString();
        std::exit(0);
    }
    if (parser.positionalArguments().size() != positional) {
        fail(std::string("expected ") + std::to_string(positional) + " positional argument(s); usage: " + usage);
        return false;
    }
    return true;
}

int fail(const std::string& message)
{
    std::cerr << "error: " << message << std::endl;
    return 1;
}

Expected<std::string> readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open for reading");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Expected<std::vector<int32_t>> readEvaluationTokens(const std::string& path, const Tokenizer& tokenizer)
{
    auto text = readFile(path);
    if (!text) return text.error();
    if (text->empty()) return makeError(path + ": the evaluation file is empty");
    if (auto ok = checkText(*text, path); !ok) return ok.error();
    return tokenizer.encode(*text);
}

Expected<int> intOption(const QCommandLineParser& p, const QString& name, int min)
{
    bool ok = false;
    const int v = p.value(name).toInt(&ok);
    if (!ok)
        return makeError("--" + name.toStdString() + " expects an integer, got '" + p.value(name).toStdString() + "'");
    if (v < min)
        return makeError("--" + name.toStdString() + " must be at least " + std::to_string(min) + ", got " +
                         std::to_string(v));
    return v;
}

Expected<std::vector<int>> intListOption(const QCommandLineParser& p, const QString& name, int min)
{
    std::vector<int> out;
    for (const QString& item : p.value(name).split(',', Qt::SkipEmptyParts)) {
        bool ok = false;
        const int v = item.trimmed().toInt(&ok);
        if (!ok || v < min)
            return makeError("--" + name.toStdString() + " expects integers of at least " + std::to_string(min) +
                             ", got '" + item.toStdString() + "'");
        out.push_back(v);
    }
    if (out.empty()) return makeError("--" + name.toStdString() + " lists nothing");
    return out;
}

void printJson(const nlohmann::json& j)
{
    std::cout << j.dump(2) << std::endl;
}

double measureGemmPeak(int m, int k, int n)
{
    RowMatrix a = RowMatrix::Random(m, k);
    Eigen::MatrixXf b = Eigen::MatrixXf::Random(k, n), c(m, n);
    c.noalias() = a * b; // warm-up
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        c.noalias() = a * b;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2.0 * m * k * n / s / 1e9);
    }
    return best;
}

void addNonFiniteOption(QCommandLineParser& p)
{
    p.addOption({QStringLiteral("allow-nonfinite"),
                 QStringLiteral("Go on when weights hold NaN or Inf (each such tensor is named on stderr).")});
}

void applyNonFiniteOption(const QCommandLineParser& p, Model& model)
{
    if (!p.isSet(QStringLiteral("allow-nonfinite"))) return;
    model.allowNonFinite(true);
    for (const std::string& bad : model.nonFiniteTensors()) std::fprintf(stderr, "warning: %s\n", bad.c_str());
}

void addComputeOption(QCommandLineParser& p)
{
    p.addOption({QStringLiteral("compute"),
                 QStringLiteral("Products of the evaluated model: fp32, or bf16 (weights and inputs rounded to "
                                "bf16, sums in fp32, as a bf16 runtime computes; about three times as fast on "
                                "CPUs with AVX512-BF16). The reference of --kl-ref stays fp32."),
                 QStringLiteral("C"), QStringLiteral("fp32")});
}

Expected<void> applyComputeOption(const QCommandLineParser& p, EvalOptions& opt)
{
    const std::string c = p.value(QStringLiteral("compute")).toStdString();
    if (c != "fp32" && c != "bf16") return makeError("--compute must be fp32 or bf16, got '" + c + "'");
    opt.runtime.bf16Products = c == "bf16";
    if (opt.runtime.bf16Products && !bf16::supported())
        return makeError("--compute bf16 needs a CPU with AVX512-BF16, which this one lacks; use --compute fp32");
    return {};
}

Expected<EvalOptions> quickSliceOptions(const QCommandLineParser& p)
{
    auto ctx = intOption(p, QStringLiteral("ctx"), 2);
    if (!ctx) return ctx.error();
    auto quick = intOption(p, QStringLiteral("quick"), 1);
    if (!quick) return quick.error();
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return threads.error();
    EvalOptions opt;
    opt.ctx = *ctx;
    opt.chunks = *quick;
    opt.threads = *threads;
    QL_TRY(applyComputeOption(p, opt));
    return opt;
}

void announceCost(double flops, const std::string& what)
{
    constexpr double kLarge = 2e12; // about a minute on a 2-core machine: below that, just run
    if (!(flops > kLarge)) return;
    const double gflops = measureGemmPeak(256, 256, 256);
    const double seconds = flops / (gflops * 1e9);
    std::fprintf(stderr,
                 "note: %s is about %.1f TFLOP: at least %.0f s at the %.0f GFLOP/s this machine's GEMM reaches "
                 "now (Ctrl-C cancels)\n",
                 what.c_str(), flops / 1e12, seconds, gflops);
}

Expected<nlohmann::json> guardMemory(const Model& model, const MemoryJob& job, const std::string& what)
{
    const MemoryEstimate e = estimateMemory(model, job);
    const AvailableMemory available = availableMemory();
    QL_TRY(checkMemory(e, available, model.dir() + ": " + what));
    nlohmann::json terms = nlohmann::json::object();
    for (const MemoryTerm& t : e.terms) terms[t.what] = t.bytes;
    return nlohmann::json{{"estimated_peak_bytes", e.peakBytes()},
                          {"mapped_bytes", e.mappedBytes},
                          {"terms", terms},
                          {"available_bytes", available.bytes},
                          {"available_source", available.source}};
}

Expected<RunState> loadRun(const std::string& runDir, const Model& model)
{
    const std::string state = runDir + "/quantized.safetensors";
    auto s = readRunState(state, model);
    if (!s) return s.error();
    auto sha = sha256OfFiles(model.weightFiles());
    if (!sha) return sha.error();
    if (s->modelSha256 != *sha)
        return makeError(state + ": quantized from other weights (sha256 " + s->modelSha256.substr(0, 12) + "…, " +
                         model.dir() + " has " + sha->substr(0, 12) + "…)");
    return s;
}

} // namespace ql::cli
