#include "quantlens/export/ggufexport.h"

#include "export/embeddinghead.h"

#include "export/ggufvocab.h"
#include "quantlens/export/ggmlmapping.h"
#include "quantlens/export/ggufwriter.h"
#include "quantlens/quant/quantizedmodel.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <map>
#include <mutex>
#include <regex>

namespace ql {

namespace {

const char* ggufLinearStem(LinearKind k)
{
    switch (k) {
    case LinearKind::Q: return "attn_q";
    case LinearKind::K: return "attn_k";
    case LinearKind::V: return "attn_v";
    case LinearKind::O: return "attn_output";
    case LinearKind::Gate: return "ffn_gate";
    case LinearKind::Up: return "ffn_up";
    case LinearKind::Down: return "ffn_down";
    }
    return "";
}

// llama.cpp's general.file_type for a model whose weights are mostly of type t.
uint32_t ggufFileType(GgmlType t)
{
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::BF16: return 32;
    case GgmlType::Q2_K: return 10;
    case GgmlType::Q3_K: return 11; // Q3_K_S: every weight q3_K
    case GgmlType::Q4_K: return 14; // Q4_K_S
    case GgmlType::Q5_K: return 16; // Q5_K_S
    case GgmlType::Q6_K: return 18;
    }
    return 0;
}

// Where each output row of an encoded matrix comes from: row order[r] of the source (rotary
// rows put in llama.cpp's order without a copy; empty: row r), and the model that checks rows
// read unchecked from its mapping for NaN and Inf (null: already checked).
struct RowPlan {
    const std::vector<Eigen::Index>* order = nullptr;
    const Model* check = nullptr;
    std::string tensor; ///< the HF tensor the rows come from, for check's messages
};

// Encodes a row-major matrix row by row into out, each row's errors weighted by importance (one
// weight per column, or empty). A row read from the mapping is checked while it is in cache, so
// the model is read from memory once.
Expected<void> ggufEncodeMatrix(const Eigen::Ref<const RowMatrix>& w, GgmlType t, std::span<uint8_t> out,
                                std::span<const float> importance = {}, const RowPlan& plan = {})
{
    if (!importance.empty() && Eigen::Index(importance.size()) != w.cols())
        return makeError("importance matrix has " + std::to_string(importance.size()) + " values for rows of " +
                         std::to_string(w.cols()));
    const int64_t rowBytes = ggmlRowBytes(t, w.cols());
    const size_t cols = size_t(w.cols());
    // Rows are independent blocks: encoded in parallel (the error of the first failing row wins).
    std::string error;
    Eigen::Index errorRow = w.rows();
#pragma omp parallel for schedule(static) if (w.size() > (int64_t(1) << 16))
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
        const Eigen::Index src = plan.order && !plan.order->empty() ? (*plan.order)[size_t(r)] : r;
        const float* row = w.row(src).data();
        Expected<void> e;
        if (plan.check && !Eigen::Map<const Eigen::ArrayXf>(row, Eigen::Index(cols)).allFinite())
            e = plan.check->checkFinite(plan.tensor, row, int64_t(cols), int64_t(src) * int64_t(cols));
        if (e)
            e = encodeGgmlRow(t, std::span<const float>(row, cols), out.subspan(size_t(r * rowBytes), size_t(rowBytes)),
                              importance);
        if (!e) {
#pragma omp critical(ql_gguf_encode_error)
            if (src < errorRow) { // the first bad row of the source, whatever the schedule
                errorRow = src;
                error = e.error().message;
            }
        }
    }
    if (!error.empty()) return makeError(error);
    return {};
}

// The last block read, shared by the seven linears and two norms of a block, which the writer
// asks for one after another.
class BlockCache {
public:
    explicit BlockCache(const WeightSource& w) : m_w(w) {}
    Expected<const BlockWeights*> get(int i)
    {
        std::lock_guard lock(m_mutex);
        if (m_index != i) {
            QL_TRY(m_w.block(i, m_block));
            m_index = i;
        }
        return &m_block;
    }

private:
    const WeightSource& m_w;
    std::mutex m_mutex;
    BlockWeights m_block;
    int m_index = -1;
};

} // namespace

std::string ggufLinearName(int block, LinearKind k)
{
    return "blk." + std::to_string(block) + "." + ggufLinearStem(k) + ".weight";
}

std::vector<Eigen::Index> rotaryRowOrder(Eigen::Index rows, int heads)
{
    const Eigen::Index d = rows / heads, half = d / 2;
    std::vector<Eigen::Index> order(static_cast<size_t>(rows));
    for (Eigen::Index h = 0; h < heads; ++h)
        for (Eigen::Index i = 0; i < 2; ++i)
            for (Eigen::Index j = 0; j < half; ++j) order[size_t(h * d + 2 * j + i)] = h * d + i * half + j;
    return order;
}

Expected<GgufExportReport> exportGguf(const Model& model, const WeightSource& weights, const Tokenizer& tokenizer,
                                      const GgufExportOptions& opt, const std::string& path, Feedback* fb)
{
    const auto t0 = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    if (c.arch != Arch::Llama)
        return makeError(model.dir() + ": GGUF export writes the llama architecture; this model is " +
                         archName(c.arch));
    if (c.qkvBias || c.oBias || c.mlpBias)
        return makeError(model.dir() +
                         ": GGUF export of linear biases is not supported (llama.cpp's llama graph has none)");
    if (c.ropeScaling != RopeScaling::None)
        return makeError(model.dir() + ": GGUF export of RoPE scaling is not supported yet");
    GgufWriter w;
    const std::string name = opt.name.empty() ? std::filesystem::path(model.dir()).filename().string() : opt.name;
    w.set("general.architecture", std::string("llama"));
    w.set("general.name", name);
    w.set("llama.context_length", uint32_t(c.maxPositions));
    w.set("llama.embedding_length", uint32_t(c.hidden));
    w.set("llama.block_count", uint32_t(c.layers));
    w.set("llama.feed_forward_length", uint32_t(c.intermediate));
    w.set("llama.rope.dimension_count", uint32_t(c.headDim));
    w.set("llama.attention.head_count", uint32_t(c.heads));
    w.set("llama.attention.head_count_kv", uint32_t(c.kvHeads));
    w.set("llama.attention.layer_norm_rms_epsilon", c.rmsEps);
    w.set("llama.rope.freq_base", float(c.ropeTheta));
    if (c.headDim * c.heads != c.hidden)
        w.set("llama.attention.key_length", uint32_t(c.headDim)),
            w.set("llama.attention.value_length", uint32_t(c.headDim));
    w.set("general.file_type", ggufFileType(opt.type));

    // The tokenizer's own folder holds the tokenizer.json a Hugging Face tokenizer was read from.
    if (auto v = detail::writeGgufVocabulary(w, tokenizer, model.folder()); !v)
        return makeError(model.dir() + ": " + v.error().message);

    std::vector<std::regex> rules;
    for (const auto& [pattern, type] : opt.tensorTypes) {
        try {
            rules.emplace_back(pattern);
        } catch (const std::regex_error& e) {
            return makeError("tensor type rule '" + pattern + "': not a regular expression (" + e.what() + ")");
        }
    }
    // A weight's importance (E[x²] per input feature) from the options' matrix, or empty.
    auto importanceOf = [&opt](const std::string& tensor) {
        return std::make_shared<const std::vector<float>>(opt.importance ? opt.importance->importance(tensor)
                                                                         : std::vector<float>{});
    };
    GgufExportReport report;
    bool quantized = false;
    // A 2-D weight [rows, cols]: its asked type, or the fallback when the type's blocks do not
    // divide a row: llama-quantize's for K types (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0; q2_K and
    // q3_K → q4_0 where it would take iq4_nl, which QuantLens does not write), f16 when no
    // 32-element type fits either.
    auto choose = [&](const std::string& tensor, int64_t cols) {
        const auto it = opt.overrides.find(tensor);
        GgmlType asked = opt.type;
        if (it != opt.overrides.end()) {
            asked = it->second;
        } else {
            for (size_t r = 0; r < rules.size(); ++r)
                if (std::regex_search(tensor, rules[r])) {
                    asked = opt.tensorTypes[r].second;
                    break;
                }
        }
        GgufExportReport::Entry e{tensor, asked, asked, {}};
        const int block = ggmlTypeInfo(asked)->blockSize;
        if (cols % block != 0) {
            GgmlType fallback = GgmlType::F16;
            if (block == 256 && cols % 32 == 0)
                fallback = asked == GgmlType::Q4_K   ? GgmlType::Q5_0
                           : asked == GgmlType::Q5_K ? GgmlType::Q5_1
                           : asked == GgmlType::Q6_K ? GgmlType::Q8_0
                                                     : GgmlType::Q4_0;
            e.written = fallback;
            e.note = std::string("rows of ") + std::to_string(cols) + " elements are not a multiple of " +
                     ggmlTypeInfo(asked)->name + "'s " + std::to_string(block) + "; written as " +
                     ggmlTypeInfo(fallback)->name;
        }
        if (e.written != GgmlType::F32 && e.written != GgmlType::F16 && e.written != GgmlType::BF16) quantized = true;
        report.tensors.push_back(e);
        return e.written;
    };
    auto vectorTensor = [&](const std::string& tensor, std::function<Expected<Eigen::VectorXf>()> get, int64_t n) {
        report.tensors.push_back({tensor, GgmlType::F32, GgmlType::F32, {}});
        w.addTensor({tensor, {uint64_t(n)}, GgmlType::F32, [get](std::span<uint8_t> out) -> Expected<void> {
                         auto v = get();
                         if (!v) return v.error();
                         std::memcpy(out.data(), v->data(), out.size());
                         return {};
                     }});
    };

    // A plain model's fp32 weights are encoded straight from its mapping, each row checked for
    // NaN and Inf as it is encoded: the model is read from memory once, and nothing is copied.
    const auto* run = dynamic_cast<const QuantizedModel*>(&weights);
    const Model* plain = dynamic_cast<const Model*>(&weights);
    // A run's embedding, lm_head and norms are its base weights': the model's, unless transformed.
    const Model* plainBase = dynamic_cast<const Model*>(run ? &run->base() : &weights);
    const std::string embName = "model.embed_tokens.weight";
    const auto embView = plainBase ? plainBase->floatView(embName) : std::nullopt;
    const auto headView = plainBase ? plainBase->floatView(plainBase->lmHeadTensor()) : std::nullopt;
    auto embedding = std::make_shared<RowMatrix>(), lmHead = std::make_shared<RowMatrix>();
    bool tied = true;
    if (embView && headView) {
        tied = c.tieEmbeddings; // a model's lm_head is its embedding exactly when the config ties them
    } else { // read once up front: whether the file needs its own output.weight decides the tensor table
        auto both = readEmbeddingAndHead(weights, c);
        if (!both) return both.error();
        tied = both->tied();
        *embedding = std::move(both->embedding);
        *lmHead = std::move(both->lmHead);
    }
    const GgmlType embType = choose("token_embd.weight", c.hidden);
    w.addTensor({"token_embd.weight",
                 {uint64_t(c.hidden), uint64_t(c.vocab)},
                 embType,
                 [embedding, embView, plainBase, embName, embType](std::span<uint8_t> out) -> Expected<void> {
                     if (embView) return ggufEncodeMatrix(*embView, embType, out, {}, {nullptr, plainBase, embName});
                     return ggufEncodeMatrix(*embedding, embType, out);
                 }});
    vectorTensor(
        "output_norm.weight", [&weights]() { return weights.finalNorm(); }, c.hidden);
    if (!tied) {
        const GgmlType outType = choose("output.weight", c.hidden);
        w.addTensor({"output.weight",
                     {uint64_t(c.hidden), uint64_t(c.vocab)},
                     outType,
                     [lmHead, headView, plainBase, outType,
                      imp = importanceOf("output.weight")](std::span<uint8_t> out) -> Expected<void> {
                         if (headView)
                             return ggufEncodeMatrix(*headView, outType, out, *imp,
                                                     {nullptr, plainBase, plainBase->lmHeadTensor()});
                         return ggufEncodeMatrix(*lmHead, outType, out, *imp);
                     }});
    }
    auto cache = std::make_shared<BlockCache>(weights);
    // A norm of block i: from the model directly (no block read), or from the block of a run.
    auto norm = [cache, plainBase, run](int i, bool attn) -> Expected<Eigen::VectorXf> {
        if (plainBase && !(run && run->changesNorms(i))) {
            auto m = plainBase->tensorAsFloat(attn ? Model::attnNormName(i) : Model::mlpNormName(i));
            if (!m) return m.error();
            return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(m->data(), m->size()));
        }
        auto b = cache->get(i);
        if (!b) return b.error();
        if (attn && (*b)->downInputRotation)
            return makeError(
                "block " + std::to_string(i) +
                " rotates down_proj's input online (QuaRot's online Hadamard), which llama.cpp cannot run");
        return attn ? (*b)->attnNorm : (*b)->mlpNorm;
    };
    for (int i = 0; i < c.layers; ++i) {
        vectorTensor(
            "blk." + std::to_string(i) + ".attn_norm.weight", [norm, i]() { return norm(i, true); }, c.hidden);
        for (int k = 0; k < kLinearCount; ++k) {
            const LinearKind kind = LinearKind(k);
            const bool down = kind == LinearKind::Down;
            const int64_t rows = kind == LinearKind::Q                              ? int64_t(c.heads) * c.headDim
                                 : (kind == LinearKind::K || kind == LinearKind::V) ? int64_t(c.kvHeads) * c.headDim
                                 : kind == LinearKind::O                            ? c.hidden
                                 : down                                             ? c.hidden
                                                                                    : c.intermediate;
            const int64_t cols = down                    ? c.intermediate
                                 : kind == LinearKind::O ? int64_t(c.heads) * c.headDim
                                                         : c.hidden;
            const std::string tensor = ggufLinearName(i, kind);
            const int heads = kind == LinearKind::Q ? c.heads : kind == LinearKind::K ? c.kvHeads : 0;
            auto order = std::make_shared<const std::vector<Eigen::Index>>(heads > 0 ? rotaryRowOrder(rows, heads)
                                                                                     : std::vector<Eigen::Index>{});
            // A run's layer whose codes a ggml type holds exactly keeps them.
            const QuantizedLayer* layer = run ? run->layer(Model::linearName(i, kind)) : nullptr;
            const QuantizedTensor* qt = layer && layer->result && layer->result->tensor ? &*layer->result->tensor
                                                                                        : nullptr;
            std::string runNote;
            if (layer && layer->result && !qt)
                runNote = "the run's result is not codes of one format (salient channels in another format, or "
                          "PB-LLM); encoded from the dequantized weights";
            if (qt) {
                if (auto mapped = losslessGgmlType(*qt)) {
                    report.tensors.push_back({tensor, opt.type, *mapped, {}, true});
                    quantized = true;
                    w.addTensor(
                        {tensor,
                         {uint64_t(cols), uint64_t(rows)},
                         *mapped,
                         [result = layer->result, type = *mapped, order](std::span<uint8_t> out) -> Expected<void> {
                             return encodeQuantizedRows(*result->tensor, type, *order, out);
                         }});
                } else {
                    runNote = mapped.error().message + "; encoded from the dequantized weights";
                }
            }
            if (!qt || !runNote.empty()) { // not kept: encoded from the weights
                const GgmlType type = choose(tensor, cols);
                if (!runNote.empty()) {
                    std::string& note = report.tensors.back().note;
                    note = note.empty() ? runNote : runNote + "; " + note;
                }
                w.addTensor(
                    {tensor,
                     {uint64_t(cols), uint64_t(rows)},
                     type,
                     [cache, plain, i, kind, type, order, rows, cols, hf = Model::linearName(i, kind) + ".weight",
                      imp = importanceOf(tensor)](std::span<uint8_t> out) -> Expected<void> {
                         auto shape = [&](const ConstRowMap& m) -> Expected<void> {
                             if (m.rows() == rows && m.cols() == cols) return {};
                             return makeError("weight is [" + std::to_string(m.rows()) + ", " +
                                              std::to_string(m.cols()) + "], expected [" + std::to_string(rows) + ", " +
                                              std::to_string(cols) + "]");
                         };
                         if (const auto view = plain ? plain->floatView(hf) : std::nullopt) {
                             QL_TRY(shape(*view));
                             return ggufEncodeMatrix(*view, type, out, *imp, {order.get(), plain, hf});
                         }
                         auto b = cache->get(i);
                         if (!b) return b.error();
                         const ConstRowMap m = (**b)[kind];
                         QL_TRY(shape(m));
                         return ggufEncodeMatrix(m, type, out, *imp, {order.get(), nullptr, {}});
                     }});
            }
            if (kind == LinearKind::O)
                vectorTensor(
                    "blk." + std::to_string(i) + ".ffn_norm.weight", [norm, i]() { return norm(i, false); }, c.hidden);
        }
    }
    if (quantized) w.set("general.quantization_version", uint32_t(2));
    if (opt.importance) { // as llama-quantize records the importance matrix it used
        if (!opt.importance->datasets.empty()) w.set("quantize.imatrix.dataset", opt.importance->datasets.front());
        w.set("quantize.imatrix.entries_count", int32_t(opt.importance->entries.size()));
        w.set("quantize.imatrix.chunks_count", int32_t(opt.importance->chunkCount));
    }
    if (opt.dryRun) {
        report.bytes = w.dataBytes();
        return report;
    }
    QL_TRY(w.write(path, fb));
    std::error_code ec;
    report.bytes = std::filesystem::file_size(path, ec);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

std::string tensorTypeRules(const GgufExportReport& report)
{
    std::string rules;
    for (const auto& e : report.tensors) {
        if (e.written == GgmlType::F32) continue; // 1-D: llama-quantize keeps them f32
        // An anchored pattern with escaped dots, so blk.1 does not also match blk.10.
        std::string pattern = "^";
        for (char ch : e.name) pattern += ch == '.' ? std::string("\\.") : std::string(1, ch);
        rules += pattern + "$=" + ggmlTypeInfo(e.written)->name + "\n";
    }
    return rules;
}

} // namespace ql
