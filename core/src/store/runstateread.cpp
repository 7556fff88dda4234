#include "quantlens/store/runstate.h"

#include "quantlens/forward/rotation.h"
#include "quantlens/model/safetensors.h"
#include "store/runstatekeys.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <map>

namespace ql {

namespace {

using StateJson = nlohmann::json;

// The file's tensors by name, with shape and dtype checks that name the file and the tensor.
class StateTensors {
public:
    explicit StateTensors(const SafetensorsFile& f) : m_path(f.path())
    {
        for (const auto& t : f.tensors()) m_byName[t.name] = &t;
    }

    bool has(const std::string& name) const { return m_byName.count(name) > 0; }

    Expected<const TensorInfo*> get(const std::string& name, DType dtype, std::vector<int64_t> shape) const
    {
        auto it = m_byName.find(name);
        if (it == m_byName.end()) return makeError(m_path + ": tensor " + name + " is missing");
        const TensorInfo* t = it->second;
        if (t->dtype != dtype || (!shape.empty() && t->shape != shape)) {
            TensorInfo want;
            want.shape = shape;
            return makeError(m_path + ": tensor " + name + " is " + dtypeName(t->dtype) + " " + t->shapeString() +
                             ", expected " + dtypeName(dtype) + " " + want.shapeString());
        }
        return t;
    }

    Expected<RowMatrix> matrix(const std::string& name, int64_t rows, int64_t cols) const
    {
        auto t = get(name, DType::F32, {rows, cols});
        if (!t) return t.error();
        RowMatrix m(rows, cols);
        std::memcpy(m.data(), (*t)->data, (*t)->nbytes);
        return m;
    }

    Expected<void> vector(const std::string& name, Eigen::VectorXf& v) const
    {
        auto t = get(name, DType::F32, {v.size()});
        if (!t) return t.error();
        std::memcpy(v.data(), (*t)->data, (*t)->nbytes);
        return {};
    }

private:
    std::string m_path;
    std::map<std::string, const TensorInfo*> m_byName;
};

Expected<LayerResult> readLayer(const StateTensors& st, const LinearLayer& info, const StateJson& j)
{
    LayerResult r;
    if (j.value("input_norm", false)) { // its norm's width is the linear's input width
        r.inputNorm.resize(info.inFeatures);
        QL_TRY(st.vector(info.name + ".input_norm", r.inputNorm));
    }
    if (!j.value("packed", false)) {
        auto w = st.matrix(info.name + ".weight", info.outFeatures, info.inFeatures);
        if (!w) return w.error();
        r.dequantized = std::move(*w);
        return r;
    }
    FormatSpec spec;
    spec.format = j.at("format").get<std::string>();
    const std::string granularity = j.at("granularity").get<std::string>();
    const auto g = granularityFromName(granularity);
    if (!g) return makeError(info.name + ": unknown granularity '" + granularity + "'");
    spec.granularity = *g;
    spec.groupSize = j.at("group").get<int>();
    auto empty = QuantizedTensor::create(info.outFeatures, info.inFeatures, spec);
    if (!empty) return makeError(info.name + ": " + empty.message());
    auto codesT = st.get(info.name + ".qcodes", DType::I32, {info.outFeatures, empty->wordsPerRow()});
    if (!codesT) return codesT.error();
    std::vector<uint32_t> codes(size_t((*codesT)->numel()));
    std::memcpy(codes.data(), (*codesT)->data, (*codesT)->nbytes);
    auto scales = st.matrix(info.name + ".scales", info.outFeatures, empty->groups());
    if (!scales) return scales.error();
    auto zeros = st.matrix(info.name + ".zeros", info.outFeatures, empty->groups());
    if (!zeros) return zeros.error();
    auto gT = st.get(info.name + ".g_idx", DType::I32, {info.inFeatures});
    if (!gT) return gT.error();
    std::vector<int32_t> gIdx(size_t(info.inFeatures));
    std::memcpy(gIdx.data(), (*gT)->data, (*gT)->nbytes);
    auto t = QuantizedTensor::fromParts(info.outFeatures, info.inFeatures, spec, std::move(codes), *scales, *zeros,
                                        std::move(gIdx));
    if (!t) return makeError(info.name + ": " + t.message());
    r.dequantized = t->dequantize();
    r.tensor = std::move(*t);
    return r;
}

// Puts the stored float tensors and the online rotations into a fresh copy of the model's weights.
Expected<std::unique_ptr<FloatWeights>> readTransformed(const StateTensors& st, const Model& model,
                                                        const QuantizedModel& qm, const StateJson& rotations)
{
    auto loaded = FloatWeights::load(model);
    if (!loaded) return loaded.error();
    auto fw = std::make_unique<FloatWeights>(std::move(*loaded));
    const ModelConfig& c = model.config();
    auto emb = st.matrix("model.embed_tokens.weight", c.vocab, c.hidden);
    if (!emb) return emb.error();
    fw->embedding() = std::move(*emb);
    QL_TRY(st.vector("model.norm.weight", fw->finalNormWeight()));
    if (st.has("lm_head.weight")) {
        auto head = st.matrix("lm_head.weight", c.vocab, c.hidden);
        if (!head) return head.error();
        fw->lmHeadWeight() = std::move(*head);
    }
    for (int i = 0; i < fw->layers(); ++i) {
        BlockWeights& b = fw->blockWeights(i);
        QL_TRY(st.vector(Model::attnNormName(i), b.attnNorm));
        QL_TRY(st.vector(Model::mlpNormName(i), b.mlpNorm));
        for (int k = 0; k < kLinearCount; ++k) {
            const std::string module = Model::linearName(i, LinearKind(k));
            if (b.bias[size_t(k)].size()) QL_TRY(st.vector(module + ".bias", b.bias[size_t(k)]));
            if (qm.layer(module)) continue;
            RowMatrix& w = fw->linear(i, LinearKind(k));
            auto stored = st.matrix(module + ".weight", w.rows(), w.cols());
            if (!stored) return stored.error();
            w = std::move(*stored);
        }
        const std::string key = std::to_string(i);
        if (!rotations.contains(key)) continue;
        const StateJson& r = rotations[key];
        auto rot = HadamardRotation::create(r.at("size").get<int>(), std::stoull(r.at("seed").get<std::string>()),
                                            r.at("random_signs").get<bool>());
        if (!rot) return makeError("block " + key + " online rotation: " + rot.message());
        if (rot->construction() != r.value("construction", rot->construction()))
            return makeError("block " + key + " online rotation: stored as " + r.value("construction", "") +
                             ", rebuilt as " + rot->construction());
        b.downInputRotation = std::make_shared<const HadamardRotation>(std::move(*rot));
    }
    QL_TRY(fw->validate());
    return fw;
}

} // namespace

Expected<RunState> readRunState(const std::string& path, const Model& model)
{
    auto file = SafetensorsFile::open(path);
    if (!file) return file.error();
    const auto& meta = file->metadata();
    auto metaValue = [&](const std::string& key) {
        auto it = meta.find(key);
        return it == meta.end() ? std::string() : it->second;
    };
    if (metaValue("format") != detail::kRunStateFormat)
        return makeError(path + ": not a QuantLens run state (metadata format is '" + metaValue("format") + "')");
    if (metaValue("version") != std::to_string(detail::kRunStateVersion))
        return makeError(path + ": run state version " + metaValue("version") + ", this QuantLens reads version " +
                         std::to_string(detail::kRunStateVersion) + "; quantize again");
    StateJson layers, rotations;
    try {
        layers = StateJson::parse(metaValue("layers"));
        rotations = StateJson::parse(metaValue("online_rotations"));
    } catch (const std::exception& e) {
        return makeError(path + ": unreadable metadata: " + e.what());
    }

    RunState out;
    out.modelSha256 = metaValue("model_sha256");
    const StateTensors st(*file);
    std::map<std::string, const LinearLayer*> byName;
    for (const auto& l : model.linearLayers()) byName[l.name] = &l;
    std::vector<QuantizedLayer> quantized;
    std::vector<const StateJson*> specs;
    try {
        for (const auto& [name, j] : layers.items()) {
            auto it = byName.find(name);
            if (it == byName.end()) return makeError(path + ": layer " + name + " is not in " + model.dir());
            QuantizedLayer q{name, it->second->block, it->second->kind, {}, nullptr};
            q.spec.method = j.value("method", "");
            q.spec.weight.format = j.value("format", "");
            q.spec.weight.groupSize = j.value("group", 0);
            if (auto g = granularityFromName(j.value("granularity", "per_group"))) q.spec.weight.granularity = *g;
            if (j.contains("activations")) {
                const StateJson& a = j["activations"];
                q.spec.activations = {a.at("bits").get<int>(), a.at("per_token").get<bool>(),
                                      a.at("symmetric").get<bool>()};
            }
            quantized.push_back(std::move(q));
            specs.push_back(&j);
        }
    } catch (const std::exception& e) {
        return makeError(path + ": malformed layer metadata: " + e.what());
    }
    // Unpacking and dequantizing the layers is most of reading a run: the layers are independent.
    std::vector<std::string> errors(quantized.size());
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < quantized.size(); ++i) {
        try {
            auto r = readLayer(st, *byName.at(quantized[i].name), *specs[i]);
            if (!r)
                errors[i] = path + ": " + r.message();
            else
                quantized[i].result = std::make_shared<const LayerResult>(std::move(*r));
        } catch (const std::exception& e) {
            errors[i] = path + ": malformed layer metadata: " + e.what();
        }
    }
    for (const std::string& e : errors)
        if (!e.empty()) return makeError(e);

    // The layers are known before the transformed weights are read: those left in float are stored whole.
    QuantizedModel probe(model);
    for (const auto& q : quantized) probe.setLayer(q);
    if (metaValue("transformed") == "true") {
        auto fw = readTransformed(st, model, probe, rotations);
        if (!fw) return makeError(path + ": " + fw.message());
        out.floatWeights = std::move(*fw);
        out.model = std::make_shared<QuantizedModel>(model, *out.floatWeights);
    } else {
        out.model = std::make_shared<QuantizedModel>(model);
    }
    for (auto& q : quantized) out.model->setLayer(std::move(q));
    return out;
}

} // namespace ql
