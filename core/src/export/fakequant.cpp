#include "quantlens/export/fakequant.h"

#include "export/embeddinghead.h"
#include "export/modelfiles.h"

#include "quantlens/base/stagedfolder.h"
#include "quantlens/model/safetensorswriter.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

namespace ql {

namespace {

namespace fs = std::filesystem;

// values as a tensor of dtype (F32, F16 or BF16).
TensorData fakeQuantTensor(std::string name, DType dtype, std::vector<int64_t> shape, const float* v, size_t n)
{
    if (dtype == DType::F32) return makeTensorData(std::move(name), dtype, std::move(shape), v, n);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = dtype == DType::F16 ? floatToHalf(v[i]) : floatToBf16(v[i]);
    return makeTensorData(std::move(name), dtype, std::move(shape), h.data(), n);
}

} // namespace

Expected<FakeQuantReport> exportFakeQuant(const Model& model, const WeightSource& weights, const std::string& outDir,
                                          const FakeQuantOptions& opt, Feedback* fb)
{
    const auto t0 = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    DType dtype = model.tensors().at("model.embed_tokens.weight").dtype;
    if (!opt.dtype.empty()) {
        if (opt.dtype == "F32")
            dtype = DType::F32;
        else if (opt.dtype == "F16")
            dtype = DType::F16;
        else if (opt.dtype == "BF16")
            dtype = DType::BF16;
        else
            return makeError("fake-quant dtype must be F32, F16 or BF16, got '" + opt.dtype + "'");
    }
    if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16) dtype = DType::F32;

    auto staged = StagedFolder::begin(outDir, opt.overwrite);
    if (!staged) return staged.error();

    std::vector<TensorData> tensors;
    auto both = readEmbeddingAndHead(weights, c);
    if (!both) return both.error();
    const RowMatrix &emb = both->embedding, &head = both->lmHead;
    tensors.push_back(fakeQuantTensor("model.embed_tokens.weight", dtype, {c.vocab, c.hidden}, emb.data(), emb.size()));
    const bool tied = both->tied();
    if (!tied)
        tensors.push_back(
            fakeQuantTensor("lm_head.weight", dtype, {head.rows(), head.cols()}, head.data(), head.size()));
    auto norm = weights.finalNorm();
    if (!norm) return norm.error();
    tensors.push_back(fakeQuantTensor("model.norm.weight", dtype, {norm->size()}, norm->data(), norm->size()));
    BlockWeights b;
    for (int i = 0; i < c.layers; ++i) {
        if (fb && fb->isCanceled()) return makeError("canceled");
        QL_TRY(weights.block(i, b));
        if (b.downInputRotation)
            return makeError("block " + std::to_string(i) +
                             " rotates down_proj's input online (QuaRot's online Hadamard), which a Hugging Face "
                             "model cannot run; export the run as GGUF or without the online rotation");
        tensors.push_back(
            fakeQuantTensor(Model::attnNormName(i), dtype, {b.attnNorm.size()}, b.attnNorm.data(), b.attnNorm.size()));
        tensors.push_back(
            fakeQuantTensor(Model::mlpNormName(i), dtype, {b.mlpNorm.size()}, b.mlpNorm.data(), b.mlpNorm.size()));
        for (int k = 0; k < kLinearCount; ++k) {
            const LinearKind kind = LinearKind(k);
            const RowMatrix w = b[kind]; // a view: copied so the next block cannot change it
            tensors.push_back(fakeQuantTensor(Model::linearName(i, kind) + ".weight", dtype, {w.rows(), w.cols()},
                                              w.data(), w.size()));
            const Eigen::VectorXf& bias = b.bias[size_t(k)];
            if (bias.size())
                tensors.push_back(fakeQuantTensor(Model::linearName(i, kind) + ".bias", dtype, {bias.size()},
                                                  bias.data(), bias.size()));
        }
        if (fb) fb->progress(0.9 * double(i + 1) / c.layers);
    }
    const fs::path dir(staged->path());
    QL_TRY(writeSafetensorsFile((dir / "model.safetensors").string(), tensors, {{"format", "pt"}}));

    // config.json: the model's own, with what changed.
    auto read = readConfigJson(model.folder());
    nlohmann::json cfg = read ? std::move(*read) : nlohmann::json::object();
    cfg["tie_word_embeddings"] = tied;
    cfg["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::F16 ? "float16" : "bfloat16";
    cfg.erase("quantization_config");
    QL_TRY(writeTextFile(dir / "config.json", cfg.dump(2) + "\n"));
    QL_TRY(staged->copyModelFiles(model.folder()));
    QL_TRY(staged->commit());

    FakeQuantReport r;
    r.tensors = int(tensors.size());
    for (const auto& t : tensors) r.bytes += t.bytes.size();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.dtype = dtypeName(dtype);
    r.tied = tied;
    if (fb) fb->progress(1.0);
    return r;
}

} // namespace ql
