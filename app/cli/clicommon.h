#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/model/memoryestimate.h"
#include "quantlens/store/runstate.h"
#include "quantlens/text/tokenizer.h"

#include <QCommandLineParser>
#include <QStringList>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ql {
class Model;
}

namespace ql::cli {

/// Progress on stderr (a redrawn line on a terminal, nothing otherwise) and Ctrl-C cancellation.
class CliFeedback final : public Feedback {
public:
    explicit CliFeedback(std::string label, bool verbose = false);
    ~CliFeedback() override;
    void progress(double fraction) override;
    void message(const std::string& text) override;
    bool isCanceled() const override;

private:
    std::string m_label;
    bool m_tty;
    bool m_verbose;
    int m_lastPercent = -1;
};

/// Parses a subcommand's arguments; on failure prints the error and returns false.
bool parseArgs(QCommandLineParser& parser, const QStringList& args, int positional, const char* usage);
/// Prints "error: message" on stderr and returns the exit code for bad input.
int fail(const std::string& message);
/// Reads a whole file as bytes.
Expected<std::string> readFile(const std::string& path);
/// The token ids of an evaluation text (no special tokens); an empty file is an error.
Expected<std::vector<int32_t>> readEvaluationTokens(const std::string& path, const Tokenizer& tokenizer);
/// Parses an integer option, rejecting garbage and values below min.
Expected<int> intOption(const QCommandLineParser& p, const QString& name, int min);
/// Parses a comma-separated list of integers, each at least min; an empty list is an error.
Expected<std::vector<int>> intListOption(const QCommandLineParser& p, const QString& name, int min);
/// GFLOP/s of Eigen's fp32 GEMM [m, k] × [k, n], best of 5, measured now: the same-run baseline
/// throughput figures are stated against.
double measureGemmPeak(int m, int k, int n);
/// Adds --allow-nonfinite (go on with NaN or Inf weights, warning about each tensor).
void addNonFiniteOption(QCommandLineParser& p);
/// With --allow-nonfinite: scans the model, warns on stderr about every tensor with NaN or Inf
/// and lets them through.
void applyNonFiniteOption(const QCommandLineParser& p, Model& model);
/// Adds --compute fp32|bf16: the arithmetic of the evaluated model's products.
void addComputeOption(QCommandLineParser& p);
/// Applies --compute to opt.runtime; an error for an unknown value, or bf16 on a CPU without
/// AVX512-BF16.
Expected<void> applyComputeOption(const QCommandLineParser& p, EvalOptions& opt);
/// The quick slice's evaluation options from --ctx, --quick (windows), --threads and --compute
/// (whatif, pareto).
Expected<EvalOptions> quickSliceOptions(const QCommandLineParser& p);
/// Before a long run: when `flops` is large, states on stderr its size and the time it takes at
/// the GEMM throughput measured now ("what" names the run).
void announceCost(double flops, const std::string& what);

/// Refuses a job that will not fit in the memory available (estimateMemory against
/// availableMemory), naming the model, what it was to do, the estimate and what is available;
/// otherwise gives both as the "memory" object of the command's JSON report.
Expected<nlohmann::json> guardMemory(const Model& model, const MemoryJob& job, const std::string& what);
/// The quantized model saved in RUN_DIR/quantized.safetensors, refused when it was quantized
/// from other weights than model's.
Expected<RunState> loadRun(const std::string& runDir, const Model& model);
/// Prints a JSON object on stdout.
void printJson(const nlohmann::json& j);

int cmdInfo(const QStringList& args);
int cmdTokenize(const QStringList& args);
int cmdEval(const QStringList& args);
int cmdBenchForward(const QStringList& args);
/// One decoder block's forward and backward, timed against the forward pass alone.
int cmdBenchBackward(const QStringList& args);
int cmdAnalyze(const QStringList& args);
int cmdPlugins(const QStringList& args);
int cmdQuantize(const QStringList& args);
int cmdBenchGptq(const QStringList& args);
int cmdExport(const QStringList& args);
int cmdWhatIf(const QStringList& args);
int cmdAllocate(const QStringList& args);
int cmdPareto(const QStringList& args);
int cmdDiff(const QStringList& args);

} // namespace ql::cli
