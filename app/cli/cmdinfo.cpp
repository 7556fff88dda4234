#include "clicommon.h"

#include "quantlens/export/openedmodel.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdio>
#include <map>

namespace ql::cli {

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
    std::printf("%-45s %-16s %12s %s\n", "layer", "shape", "params", "dtype");
    for (const auto& l : model->linearLayers()) {
        const std::string shape = "[" + std::to_string(l.outFeatures) + ", " + std::to_string(l.inFeatures) + "]";
        std::printf("%-45s %-16s %12lld %s\n", l.name.c_str(), shape.c_str(), (long long)l.params(),
                    dtypeName(l.dtype));
    }
    return 0;
}

} // namespace ql::cli
