#include "quantlens/store/runstate.h"

#include "quantlens/forward/rotation.h"
#include "quantlens/model/safetensorswriter.h"
#include "store/runstatekeys.h"

#include <nlohmann/json.hpp>

namespace ql {

namespace {

void addMatrix(std::vector<TensorData>& out, const std::string& name, const RowMatrix& m)
{
    out.push_back(makeTensorData(name, DType::F32, {m.rows(), m.cols()}, m.data(), size_t(m.size())));
}

void addVector(std::vector<TensorData>& out, const std::string& name, const Eigen::VectorXf& v)
{
    out.push_back(makeTensorData(name, DType::F32, {v.size()}, v.data(), size_t(v.size())));
}

nlohmann::json layerJson(const QuantizedLayer& l)
{
    const FormatSpec& f = l.result->tensor ? l.result->tensor->spec() : l.spec.weight;
    nlohmann::json j = {{"method", l.spec.method},
                        {"format", f.format},
                        {"granularity", granularityName(f.granularity)},
                        {"group", f.groupSize},
                        {"packed", l.result->tensor.has_value()}};
    if (l.result->inputNorm.size()) j["input_norm"] = true;
    if (l.spec.activations.bits > 0)
        j["activations"] = {{"bits", l.spec.activations.bits},
                            {"per_token", l.spec.activations.perToken},
                            {"symmetric", l.spec.activations.symmetric}};
    return j;
}

// The float tensors a transform may rewrite: embeddings, norms, biases, lm_head and the
// linears left in float; plus each block's online rotation as the arguments that rebuild it.
void addTransformed(std::vector<TensorData>& out, nlohmann::json& rotations, const QuantizedModel& qm,
                    const FloatWeights& fw)
{
    addMatrix(out, "model.embed_tokens.weight", fw.embedding());
    addVector(out, "model.norm.weight", fw.finalNormWeight());
    if (!fw.lmHeadTied()) addMatrix(out, "lm_head.weight", fw.lmHeadWeight());
    for (int i = 0; i < fw.layers(); ++i) {
        BlockWeights b;
        (void)fw.block(i, b); // FloatWeights::block copies from memory and cannot fail
        addVector(out, Model::attnNormName(i), b.attnNorm);
        addVector(out, Model::mlpNormName(i), b.mlpNorm);
        for (int k = 0; k < kLinearCount; ++k) {
            const std::string module = Model::linearName(i, LinearKind(k));
            if (b.bias[size_t(k)].size()) addVector(out, module + ".bias", b.bias[size_t(k)]);
            if (!qm.layer(module)) addMatrix(out, module + ".weight", fw.linear(i, LinearKind(k)));
        }
        if (b.downInputRotation) {
            const HadamardRotation& r = *b.downInputRotation;
            rotations[std::to_string(i)] = {{"size", r.size()},
                                            {"seed", std::to_string(r.seed())},
                                            {"random_signs", r.randomSigns()},
                                            {"construction", r.construction()}};
        }
    }
}

} // namespace

Expected<void> writeRunState(const std::string& path, const QuantizedModel& qm, const FloatWeights* transformed,
                             const std::string& modelSha256)
{
    std::vector<TensorData> tensors;
    nlohmann::json layers = nlohmann::json::object();
    for (const auto& [name, l] : qm.layers()) {
        layers[name] = layerJson(l);
        const LayerResult& r = *l.result;
        if (r.inputNorm.size()) addVector(tensors, name + ".input_norm", r.inputNorm);
        if (!r.tensor) {
            addMatrix(tensors, name + ".weight", r.dequantized);
            continue;
        }
        const QuantizedTensor& t = *r.tensor;
        const auto& codes = t.packedCodes();
        tensors.push_back(
            makeTensorData(name + ".qcodes", DType::I32, {t.rows(), t.wordsPerRow()}, codes.data(), codes.size()));
        const RowMatrix scales = t.scales(), zeros = t.zeros();
        addMatrix(tensors, name + ".scales", scales);
        addMatrix(tensors, name + ".zeros", zeros);
        const auto& g = t.groupIndex();
        tensors.push_back(makeTensorData(name + ".g_idx", DType::I32, {int64_t(g.size())}, g.data(), g.size()));
    }
    nlohmann::json rotations = nlohmann::json::object();
    if (transformed) addTransformed(tensors, rotations, qm, *transformed);
    return writeSafetensorsFile(path, tensors,
                                {{"format", detail::kRunStateFormat},
                                 {"version", std::to_string(detail::kRunStateVersion)},
                                 {"model_sha256", modelSha256},
                                 {"transformed", transformed ? "true" : "false"},
                                 {"layers", layers.dump()},
                                 {"online_rotations", rotations.dump()}});
}

} // namespace ql
