#include "clicommon.h"

#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdio>

namespace ql::cli {

int cmdInfo(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(p, args, 1, "quantlens-cli info MODEL_DIR [--json]")) return 1;
    const std::string dir = p.positionalArguments()[0].toStdString();
    auto model = Model::open(dir);
    if (!model) return fail(model.message());
    const ModelConfig& c = model->config();
    auto tok = loadTokenizer(dir);

    nlohmann::json j;
    j["model_dir"] = model->dir();
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
    j["weight_files"] = model->weightFiles();
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
        j["tokenizer"] = {{"error", tok.message()}};
    }
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("%s: %s, %d layers, hidden %d, ffn %d, heads %d (kv %d), head_dim %d, vocab %d\n", model->dir().c_str(),
                archName(c.arch), c.layers, c.hidden, c.intermediate, c.heads, c.kvHeads, c.headDim, c.vocab);
    std::printf("parameters: %lld (linear layers: %lld), embeddings %s\n", (long long)model->parameterCount(),
                (long long)linearParams, c.tieEmbeddings ? "tied" : "untied");
    if (tok)
        std::printf("tokenizer: %s, %d tokens, bos %d, eos %d%s\n", (*tok)->kind().c_str(), (*tok)->vocabSize(),
                    (*tok)->bosId(), (*tok)->eosId(), (*tok)->addsBos() ? ", adds BOS" : "");
    else
        std::printf("tokenizer: unavailable (%s)\n", tok.message().c_str());
    std::printf("%-45s %-16s %12s %s\n", "layer", "shape", "params", "dtype");
    for (const auto& l : model->linearLayers()) {
        const std::string shape = "[" + std::to_string(l.outFeatures) + ", " + std::to_string(l.inFeatures) + "]";
        std::printf("%-45s %-16s %12lld %s\n", l.name.c_str(), shape.c_str(), (long long)l.params(),
                    dtypeName(l.dtype));
    }
    return 0;
}

} // namespace ql::cli
