#include "clicommon.h"

#include "quantlens/export/openedmodel.h"
#include "quantlens/model/memoryestimate.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdio>
#include <map>

namespace ql::cli {

namespace {

// Each command's estimated peak with its default options, against what is available now.
nlohmann::json memoryReport(const Model& model)
{
    const auto job = [](MemoryJob::Kind kind) {
        MemoryJob j;
        j.kind = kind;
        j.windows = 128; // the calibration defaults of analyze and recipes
        j.seqlen = 512;
        j.ctx = 512;
        j.evalWindows = 1 << 20; // a long text: the evaluator's batch cap binds
        return j;
    };
    std::vector<std::pair<std::string, MemoryJob>> jobs;
    jobs.push_back({"analyze", job(MemoryJob::Kind::Analyze)});
    MemoryJob full = job(MemoryJob::Kind::Analyze);
    full.fisher = true;
    full.heldOut = 4;
    jobs.push_back({"analyze --sensitivity full", full});
    MemoryJob rtn = job(MemoryJob::Kind::Quantize);
    jobs.push_back({"quantize (rtn)", rtn});
    MemoryJob gptq = rtn;
    gptq.calibrated = gptq.hessians = true;
    jobs.push_back({"quantize (gptq)", gptq});
    MemoryJob block = rtn;
    block.calibrated = block.blockMethod = true;
    jobs.push_back({"quantize (omniquant, autoround)", block});
    MemoryJob awq = gptq;
    awq.transforms = true;
    jobs.push_back({"quantize (awq + gptq)", awq});
    jobs.push_back({"eval", job(MemoryJob::Kind::Eval)});
    jobs.push_back({"export", job(MemoryJob::Kind::Export)});

    const AvailableMemory available = availableMemory();
    nlohmann::json j;
    j["available_bytes"] = available.bytes;
    j["available_source"] = available.source;
    j["assumes"] = "128 calibration windows of 512 tokens, evaluation context 512, default sensitivity options";
    nlohmann::json commands = nlohmann::json::object();
    for (const auto& [name, mj] : jobs) {
        const MemoryEstimate e = estimateMemory(model, mj);
        nlohmann::json terms = nlohmann::json::object();
        for (const MemoryTerm& t : e.terms) terms[t.what] = t.bytes;
        commands[name] = {{"peak_bytes", e.peakBytes()},
                          {"mapped_bytes", e.mappedBytes},
                          {"terms", terms},
                          {"fits", available.bytes < 0 || e.peakBytes() <= available.bytes}};
    }
    j["commands"] = commands;
    return j;
}

} // namespace

int cmdInfo(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(p, args, 1, "quantlens-cli info MODEL_DIR|MODEL.gguf [--json]")) return 1;
    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback fb("open");
    auto opened = OpenedModel::open(dir, &fb);
    if (!opened) return fail(opened.message());
    const Model* model = &opened->model;
    const ModelConfig& c = model->config();
    const std::shared_ptr<Tokenizer>* tok = opened->tokenizer ? &opened->tokenizer : nullptr;

    nlohmann::json j;
    j["model_dir"] = dir;
    j["architecture"] = archName(c.arch);
    j["hidden_size"] = c.hidden;
    j["intermediate_size"] = c.intermediate;
    j["num_layers"] = c.layers;
    j["num_heads"] = c.heads;
    j["num_kv_heads"] = c.kvHeads;
    j["head_dim"] = c.headDim;
    j["vocab_size"] = c.vocab;
    j["max_position_embeddings"] = c.maxPositions;
    j["rms_norm_eps"] = c.rmsEps;
    j["rope_theta"] = c.ropeTheta;
    j["tie_word_embeddings"] = c.tieEmbeddings;
    j["parameters"] = model->parameterCount();
    if (opened->gguf) {
        // What the file stores, tensor by tensor; the rest of the report describes the decoded model.
        std::map<std::string, int> types;
        for (const auto& t : opened->gguf->tensors()) {
            const GgmlTypeInfo* info = ggmlTypeInfo(t.type);
            ++types[info ? info->name : std::to_string(uint32_t(t.type))];
        }
        j["gguf"] = {{"version", opened->gguf->version()}, {"tensor_types", types}};
    } else {
        j["weight_files"] = model->weightFiles();
    }
    int64_t linearParams = 0;
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : model->linearLayers()) {
        linearParams += l.params();
        layers.push_back({{"name", l.name},
                          {"block", l.block},
                          {"kind", linearShortName(l.kind)},
                          {"site", l.site},
                          {"shape", {l.outFeatures, l.inFeatures}},
                          {"params", l.params()},
                          {"bias", l.hasBias},
                          {"dtype", dtypeName(l.dtype)}});
    }
    j["linear_parameters"] = linearParams;
    j["linear_layers"] = layers;
    if (tok) {
        j["tokenizer"] = {{"kind", (*tok)->kind()},
                          {"vocab_size", (*tok)->vocabSize()},
                          {"bos_id", (*tok)->bosId()},
                          {"eos_id", (*tok)->eosId()},
                          {"adds_bos", (*tok)->addsBos()}};
    } else {
        j["tokenizer"] = {{"error", opened->tokenizerError}};
    }
    j["memory"] = memoryReport(*model);
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("%s: %s, %d layers, hidden %d, ffn %d, heads %d (kv %d), head_dim %d, vocab %d\n", dir.c_str(),
                archName(c.arch), c.layers, c.hidden, c.intermediate, c.heads, c.kvHeads, c.headDim, c.vocab);
    std::printf("parameters: %lld (linear layers: %lld), embeddings %s\n", (long long)model->parameterCount(),
                (long long)linearParams, c.tieEmbeddings ? "tied" : "untied");
    if (tok)
        std::printf("tokenizer: %s, %d tokens, bos %d, eos %d%s\n", (*tok)->kind().c_str(), (*tok)->vocabSize(),
                    (*tok)->bosId(), (*tok)->eosId(), (*tok)->addsBos() ? ", adds BOS" : "");
    else
        std::printf("tokenizer: unavailable (%s)\n", opened->tokenizerError.c_str());
    if (j.contains("gguf")) {
        std::printf("GGUF version %u, tensors by type:", opened->gguf->version());
        for (const auto& [name, n] : j["gguf"]["tensor_types"].items())
            std::printf(" %s %d", name.c_str(), n.get<int>());
        std::printf(" (decoded to fp32 below)\n");
    }
    const nlohmann::json& mem = j["memory"];
    const int64_t avail = mem["available_bytes"].get<int64_t>();
    std::printf("estimated peak memory (%s; %s available, %s):\n", mem["assumes"].get<std::string>().c_str(),
                avail < 0 ? "unbounded" : formatBytes(avail).c_str(),
                mem["available_source"].get<std::string>().c_str());
    for (const auto& [name, c] : mem["commands"].items())
        std::printf("  %-34s %10s%s\n", name.c_str(), formatBytes(c["peak_bytes"].get<int64_t>()).c_str(),
                    c["fits"].get<bool>() ? "" : "  does not fit");
    std::printf("%-45s %-16s %12s %s\n", "layer", "shape", "params", "dtype");
    for (const auto& l : model->linearLayers()) {
        const std::string shape = "[" + std::to_string(l.outFeatures) + ", " + std::to_string(l.inFeatures) + "]";
        std::printf("%-45s %-16s %12lld %s\n", l.name.c_str(), shape.c_str(), (long long)l.params(),
                    dtypeName(l.dtype));
    }
    return 0;
}

} // namespace ql::cli
