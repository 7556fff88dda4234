#include "quantlens/model/model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace ql {

namespace {

struct LinearDesc {
    LinearKind kind;
    const char* module; // path under model.layers.<i>.
};

// The block's linears in execution order and their Hugging Face module paths.
constexpr LinearDesc kLinears[kLinearCount] = {
    {LinearKind::Q, "self_attn.q_proj"}, {LinearKind::K, "self_attn.k_proj"}, {LinearKind::V, "self_attn.v_proj"},
    {LinearKind::O, "self_attn.o_proj"}, {LinearKind::Gate, "mlp.gate_proj"}, {LinearKind::Up, "mlp.up_proj"},
    {LinearKind::Down, "mlp.down_proj"},
};

std::string shapeString(const std::vector<int64_t>& s)
{
    TensorInfo t;
    t.shape = s;
    return t.shapeString();
}

bool isFloatType(DType t)
{
    return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

// Fails on the first NaN or Inf of a tensor's fp32 values, naming the tensor, the element and
// its file. All-finite data costs one vectorised pass.
Expected<void> checkFiniteValues(const TensorInfo& t, const float* v, int64_t n, int64_t offset = 0)
{
    // Checked in parallel pieces: this scan is a large part of reading a model once.
    constexpr int64_t kPiece = int64_t(1) << 18;
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (n > 4 * kPiece)
    for (int64_t p = 0; p < n; p += kPiece)
        finite = finite && Eigen::Map<const Eigen::ArrayXf>(v + p, Eigen::Index(std::min(kPiece, n - p))).allFinite();
    if (finite) return {};
    int64_t i = 0;
    while (std::isfinite(v[i])) ++i;
    const int64_t flat = offset + i, cols = t.shape.size() > 1 ? t.shape.back() : 0;
    const std::string where = cols > 0 ? "[" + std::to_string(flat / cols) + ", " + std::to_string(flat % cols) + "]"
                                       : "[" + std::to_string(flat) + "]";
    return makeError(t.file + ": tensor " + t.name + " holds " +
                     (std::isnan(v[i]) ? "NaN"
                      : v[i] > 0       ? "+Inf"
                                       : "-Inf") +
                     " at " + where +
                     "; expected finite weights (the checkpoint is damaged or was saved from a "
                     "diverged run)");
}

} // namespace

std::string Model::attnNormName(int i)
{
    return "model.layers." + std::to_string(i) + ".input_layernorm.weight";
}
std::string Model::mlpNormName(int i)
{
    return "model.layers." + std::to_string(i) + ".post_attention_layernorm.weight";
}
std::string Model::linearName(int i, LinearKind k)
{
    return "model.layers." + std::to_string(i) + "." + kLinears[static_cast<int>(k)].module;
}

std::optional<std::pair<int, LinearKind>> Model::parseLinearName(std::string_view name)
{
    constexpr std::string_view prefix = "model.layers.", suffix = ".weight";
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
        name.remove_suffix(suffix.size());
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    name.remove_prefix(prefix.size());
    const size_t dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
    int block = 0;
    for (char c : name.substr(0, dot)) {
        if (c < '0' || c > '9' || block > 100000000) return std::nullopt;
        block = block * 10 + (c - '0');
    }
    if (name[0] == '0' && dot > 1) return std::nullopt;
    for (const LinearDesc& d : kLinears)
        if (name.substr(dot + 1) == d.module) return std::pair{block, d.kind};
    return std::nullopt;
}

Expected<Model> Model::open(const std::string& dirIn)
{
    Model m;
    std::error_code ec;
    if (!fs::is_directory(dirIn, ec)) return makeError(dirIn + ": not a folder (expected a Hugging Face model folder)");
    m.m_dir = fs::path(dirIn).lexically_normal().string();
    m.m_folder = m.m_dir;
    auto cfg = ModelConfig::fromFile((fs::path(m.m_dir) / "config.json").string());
    if (!cfg) return cfg.error();
    m.m_config = *cfg;

    const fs::path index = fs::path(m.m_dir) / "model.safetensors.index.json";
    const fs::path single = fs::path(m.m_dir) / "model.safetensors";
    if (fs::exists(index)) {
        std::ifstream in(index);
        std::stringstream ss;
        ss << in.rdbuf();
        std::set<std::string> files;
        try {
            const auto j = nlohmann::json::parse(ss.str());
            for (const auto& [name, file] : j.at("weight_map").items()) files.insert(file.get<std::string>());
        } catch (const std::exception& e) {
            return makeError(index.string() + ": invalid shard index (needs a weight_map object): " + e.what());
        }
        for (const auto& f : files) m.m_files.push_back((fs::path(m.m_dir) / f).string());
    } else if (fs::exists(single)) {
        m.m_files.push_back(single.string());
    } else {
        for (const auto& e : fs::directory_iterator(m.m_dir, ec))
            if (e.path().extension() == ".safetensors") m.m_files.push_back(e.path().string());
        std::sort(m.m_files.begin(), m.m_files.end());
    }
    if (m.m_files.empty())
        return makeError(m.m_dir + ": no safetensors weights (expected model.safetensors or "
                                   "model.safetensors.index.json; PyTorch .bin checkpoints are not supported)");

    for (const auto& f : m.m_files) {
        auto st = SafetensorsFile::open(f);
        if (!st) return st.error();
        for (const auto& t : st->tensors()) {
            if (m.m_tensors.count(t.name))
                return makeError(f + ": tensor " + t.name + " also appears in " + m.m_tensors[t.name].file);
            m.m_tensors[t.name] = t;
        }
        m.m_shards.push_back(std::move(*st));
    }
    auto ok = m.validate();
    if (!ok) return ok.error();
    m.m_blockChecked.reset(new std::atomic<bool>[size_t(std::max(1, m.m_config.layers))]()); // all false
    return m;
}

Expected<void> Model::validate()
{
    const ModelConfig& c = m_config;
    auto expect = [&](const std::string& name, std::vector<int64_t> shape) -> Expected<void> {
        auto it = m_tensors.find(name);
        if (it == m_tensors.end())
            return makeError(m_dir + ": missing tensor " + name + " (expected shape " + shapeString(shape) + ")");
        const TensorInfo& t = it->second;
        if (t.shape != shape)
            return makeError(t.file + ": tensor " + name + " has shape " + t.shapeString() + ", expected " +
                             shapeString(shape) + " from config.json");
        if (!isFloatType(t.dtype))
            return makeError(t.file + ": tensor " + name + " has dtype " + dtypeName(t.dtype) +
                             ", expected F32, F16 or BF16");
        return {};
    };
    const int64_t h = c.hidden, qDim = int64_t(c.heads) * c.headDim, kvDim = int64_t(c.kvHeads) * c.headDim;
    QL_TRY(expect("model.embed_tokens.weight", {c.vocab, h}));
    QL_TRY(expect("model.norm.weight", {h}));
    m_lmHeadName = "model.embed_tokens.weight";
    if (!c.tieEmbeddings) {
        m_lmHeadName = "lm_head.weight";
        QL_TRY(expect(m_lmHeadName, {c.vocab, h}));
    }
    m_linears.clear();
    for (int i = 0; i < c.layers; ++i) {
        QL_TRY(expect(attnNormName(i), {h}));
        QL_TRY(expect(mlpNormName(i), {h}));
        for (const auto& d : kLinears) {
            int64_t out = 0, in = 0;
            bool bias = false;
            switch (d.kind) {
            case LinearKind::Q: out = qDim, in = h, bias = c.qkvBias; break;
            case LinearKind::K:
            case LinearKind::V: out = kvDim, in = h, bias = c.qkvBias; break;
            case LinearKind::O: out = h, in = qDim, bias = c.oBias; break;
            case LinearKind::Gate:
            case LinearKind::Up: out = c.intermediate, in = h, bias = c.mlpBias; break;
            case LinearKind::Down: out = h, in = c.intermediate, bias = c.mlpBias; break;
            }
            LinearLayer l;
            l.name = linearName(i, d.kind);
            l.site = siteName(i, siteOf(d.kind));
            l.block = i;
            l.kind = d.kind;
            l.outFeatures = out;
            l.inFeatures = in;
            l.hasBias = bias;
            QL_TRY(expect(l.name + ".weight", {out, in}));
            l.dtype = m_tensors[l.name + ".weight"].dtype;
            if (bias) QL_TRY(expect(l.name + ".bias", {out}));
            m_linears.push_back(std::move(l));
        }
    }
    return {};
}

int64_t Model::parameterCount() const
{
    int64_t n = 0;
    for (const auto& [name, t] : m_tensors) n += t.numel();
    return n;
}

Expected<RowMatrix> Model::tensorAsFloat(const std::string& name) const
{
    auto it = m_tensors.find(name);
    if (it == m_tensors.end()) return makeError(m_dir + ": missing tensor " + name);
    const TensorInfo& t = it->second;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const int64_t rows = cols == 0 ? 0 : t.numel() / cols;
    RowMatrix m(rows, cols);
    convertToFloat(t.dtype, t.data, m.data(), static_cast<size_t>(t.numel()));
    if (!m_allowNonFinite) QL_TRY(checkFiniteValues(t, m.data(), m.size()));
    return m;
}

std::vector<std::string> Model::nonFiniteTensors() const
{
    std::vector<std::string> bad;
    std::vector<float> buf;
    for (const auto& [name, t] : m_tensors) {
        if (!isFloatType(t.dtype)) continue;
        constexpr int64_t kChunk = int64_t(1) << 20; // converted a piece at a time: no full copy of a large tensor
        for (int64_t i0 = 0; i0 < t.numel(); i0 += kChunk) {
            const int64_t n = std::min(kChunk, t.numel() - i0);
            buf.resize(size_t(n));
            convertToFloat(t.dtype, t.data + size_t(i0) * dtypeSize(t.dtype), buf.data(), size_t(n));
            if (auto r = checkFiniteValues(t, buf.data(), n, i0); !r) {
                bad.push_back(r.message());
                break;
            }
        }
    }
    return bad;
}

Expected<Eigen::VectorXf> Model::vector(const std::string& name) const
{
    auto m = tensorAsFloat(name);
    if (!m) return m.error();
    return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(m->data(), m->size()));
}

Expected<void> Model::block(int i, BlockWeights& b) const
{
    if (i < 0 || i >= m_config.layers)
        return makeError("block index " + std::to_string(i) + " out of range (model has " +
                         std::to_string(m_config.layers) + ")");
    auto an = vector(attnNormName(i));
    if (!an) return an.error();
    auto mn = vector(mlpNormName(i));
    if (!mn) return mn.error();
    b.attnNorm = std::move(*an);
    b.mlpNorm = std::move(*mn);
    b.clearHooks(); // the object may have been filled by a source that installs hooks
    for (const auto& d : kLinears) {
        const int k = static_cast<int>(d.kind);
        const std::string base = linearName(i, d.kind);
        const TensorInfo& t = m_tensors.at(base + ".weight");
        const Eigen::Index rows = t.shape[0], cols = t.shape[1];
        // F32 weights are used in place from the mapping, as llama.cpp does; others are
        // converted into storage that stays allocated across blocks of the same shape.
        if (const auto view = floatView(base + ".weight")) {
            b.setView(d.kind, view->data(), rows, cols);
        } else {
            b.storage[k].resize(rows, cols);
            convertToFloat(t.dtype, t.data, b.storage[k].data(), static_cast<size_t>(t.numel()));
            b.useStorage(d.kind);
        }
        b.bias[k].resize(0);
        if (m_tensors.count(base + ".bias")) {
            auto bias = vector(base + ".bias");
            if (!bias) return bias.error();
            b.bias[k] = std::move(*bias);
        }
    }
    // The linears are checked the first time the block is converted (norms and biases are
    // checked by vector() on every call); later calls trust the verdict.
    if (!m_allowNonFinite && !m_blockChecked[size_t(i)].load(std::memory_order_acquire)) {
        for (const auto& d : kLinears) {
            const ConstRowMap w = b[d.kind];
            QL_TRY(checkFiniteValues(m_tensors.at(linearName(i, d.kind) + ".weight"), w.data(), w.size()));
        }
        m_blockChecked[size_t(i)].store(true, std::memory_order_release);
    }
    return {};
}

Expected<void> Model::embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const
{
    const TensorInfo& t = m_tensors.at("model.embed_tokens.weight");
    const int64_t h = m_config.hidden;
    out.resize(h, static_cast<Eigen::Index>(ids.size()));
    const size_t rowBytes = static_cast<size_t>(h) * dtypeSize(t.dtype);
    for (size_t j = 0; j < ids.size(); ++j) {
        if (ids[j] < 0 || ids[j] >= m_config.vocab)
            return makeError("token id " + std::to_string(ids[j]) + " at position " + std::to_string(j) +
                             " is outside the vocabulary (size " + std::to_string(m_config.vocab) + ")");
        convertToFloat(t.dtype, t.data + rowBytes * static_cast<size_t>(ids[j]), out.col(j).data(),
                       static_cast<size_t>(h));
        if (!m_allowNonFinite) QL_TRY(checkFiniteValues(t, out.col(j).data(), h, int64_t(ids[j]) * h));
    }
    return {};
}

Expected<Eigen::VectorXf> Model::finalNorm() const
{
    return vector("model.norm.weight");
}

Expected<RowMatrix> Model::lmHead() const
{
    return tensorAsFloat(m_lmHeadName);
}

Expected<std::optional<ConstRowMap>> Model::lmHeadView() const
{
    auto view = floatView(m_lmHeadName);
    if (view) QL_TRY(checkFinite(m_lmHeadName, view->data(), view->size()));
    return view;
}

std::optional<ConstRowMap> Model::floatView(const std::string& name) const
{
    const auto it = m_tensors.find(name);
    if (it == m_tensors.end()) return std::nullopt;
    const TensorInfo& t = it->second;
    if (t.dtype != DType::F32 || reinterpret_cast<uintptr_t>(t.data) % alignof(float) != 0) return std::nullopt;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const int64_t rows = cols == 0 ? 0 : t.numel() / cols;
    return ConstRowMap(reinterpret_cast<const float*>(t.data), Eigen::Index(rows), Eigen::Index(cols));
}

Expected<void> Model::checkFinite(const std::string& name, const float* values, int64_t n, int64_t offset) const
{
    if (m_allowNonFinite) return {};
    const auto it = m_tensors.find(name);
    if (it == m_tensors.end()) return makeError(m_dir + ": missing tensor " + name);
    return checkFiniteValues(it->second, values, n, offset);
}

} // namespace ql
