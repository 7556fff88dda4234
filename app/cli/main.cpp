#include "clicommon.h"

#include <QCoreApplication>

#include <csignal>
#include <iostream>

namespace {

const char* kUsage =
    "usage: quantlens-cli COMMAND [options]\n"
    "commands:\n"
    "  info MODEL_DIR [--json]                      architecture, layers, shapes, parameter counts\n"
    "  tokenize MODEL_DIR --text FILE [--out FILE]  token ids (space separated), no special tokens\n"
    "  eval MODEL_DIR --data FILE [--ctx 512] [--chunks N] [--protocol llamacpp|paper]\n"
    "       [--threads N] [--kl-ref MODEL_DIR] [--recipe R.json [--calib FILE ...] | --run RUN_DIR]\n"
    "       [--json]                                perplexity (of the recipe's quantized model or\n"
    "                                               a saved run; KL to a reference model)\n"
    "  bench-forward MODEL_DIR [--ctx 512] [--chunks N] [--threads N] [--json]\n"
    "  bench-backward MODEL_DIR [--ctx 512] [--reps 3] [--threads N] [--json]\n"
    "                                               prompt-processing throughput\n"
    "  bench-gptq [--size 4096] [--tokens 4096] [--bits 4] [--group 128] [--json]\n"
    "                                               GPTQ of one layer against the GEMM peak\n"
    "  analyze MODEL_DIR --calib FILE --out FILE.h5 [--samples 128] [--seqlen 512]\n"
    "       [--sampling contiguous|random] [--seed 0] [--sensitivity none|proxy|fisher|full]\n"
    "       [--save-hessian] [--force] [--json]     calibration statistics and sensitivity\n"
    "  analyze MODEL_DIR --imatrix FILE --out FILE.h5 [--force] [--json]\n"
    "                                               sensitivity from a llama.cpp importance matrix\n"
    "  plugins [--json]                             quantization methods and their parameters\n"
    "  quantize MODEL_DIR --recipe R.json --out RUN_DIR [--calib FILE] [--samples N] [--seqlen N]\n"
    "       [--mode sequential|parallel] [--force] [--json]  quantize with a recipe, write the run\n"
    "  export MODEL_DIR --format gguf --out PATH [--run RUN_DIR] [--gguf-type f16|q8_0|q4_0|...]\n"
    "       [--json]                                a GGUF file llama.cpp loads\n"
    "  whatif MODEL_DIR --recipe R.json --edit LAYER:key=value [--edit ...] --data FILE [--quick 8]\n"
    "       [--out-recipe FILE] [--json]            a plan edit's effect: quick KL, top-1, ppl, size\n"
    "  allocate MODEL_DIR --analysis A.h5 --budget 3.0bpw|2.5GB [--allocator knapsack|greedy|baq|entropy|spike|hawq]\n"
    "       [--measure proxy|output|kl|hawq|fisher|fisher-out] [--tie qkv,gateup] [--pin LAYER=BITS] [--out R.json] [--json]\n"
    "                                               widths per layer that fit a size budget\n"
    "  pareto MODEL_DIR --analysis A.h5 --data FILE [--budgets 2.5,3.0,3.5] [--allocators LIST]\n"
    "       [--quick 8] [--csv FILE] [--json]       uniform and allocated plans, size against quick KL\n"
    "  diff RUN_A RUN_B [--all] [--json]            two run folders' plans layer by layer: specs, bits\n"
    "                                               and errors where they differ\n"
    "run 'quantlens-cli COMMAND --help' for a command's options.\n";

} // namespace

int main(int argc, char** argv)
{
    // Past a file-size limit a write fails (EFBIG) and is reported with its file, instead of the
    // signal killing the process with nothing said.
    std::signal(SIGXFSZ, SIG_IGN);
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("quantlens-cli"));
    QCoreApplication::setApplicationVersion(QStringLiteral(QL_VERSION));
    QStringList args = QCoreApplication::arguments();
    if (args.size() < 2 || args[1] == QLatin1String("--help") || args[1] == QLatin1String("-h")) {
        std::cout << kUsage;
        return args.size() < 2 ? 2 : 0;
    }
    if (args[1] == QLatin1String("--version")) {
        std::cout << "quantlens-cli " << QL_VERSION << "\n";
        return 0;
    }
    const QString cmd = args[1];
    args.removeAt(1); // the parser sees "quantlens-cli <options>"
    if (cmd == QLatin1String("info")) return ql::cli::cmdInfo(args);
    if (cmd == QLatin1String("tokenize")) return ql::cli::cmdTokenize(args);
    if (cmd == QLatin1String("eval")) return ql::cli::cmdEval(args);
    if (cmd == QLatin1String("bench-forward")) return ql::cli::cmdBenchForward(args);
    if (cmd == QLatin1String("bench-backward")) return ql::cli::cmdBenchBackward(args);
    if (cmd == QLatin1String("analyze")) return ql::cli::cmdAnalyze(args);
    if (cmd == QLatin1String("plugins")) return ql::cli::cmdPlugins(args);
    if (cmd == QLatin1String("quantize")) return ql::cli::cmdQuantize(args);
    if (cmd == QLatin1String("bench-gptq")) return ql::cli::cmdBenchGptq(args);
    if (cmd == QLatin1String("export")) return ql::cli::cmdExport(args);
    if (cmd == QLatin1String("whatif")) return ql::cli::cmdWhatIf(args);
    if (cmd == QLatin1String("allocate")) return ql::cli::cmdAllocate(args);
    if (cmd == QLatin1String("pareto")) return ql::cli::cmdPareto(args);
    if (cmd == QLatin1String("diff")) return ql::cli::cmdDiff(args);
    std::cerr << "error: unknown command '" << cmd.toStdString() << "'\n" << kUsage;
    return 2;
}
