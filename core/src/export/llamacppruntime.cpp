#include "quantlens/export/llamacppruntime.h"

#include "quantlens/export/ggufexport.h"
#include "quantlens/model/safetensors.h"

namespace ql {

ActQuantSpec ggmlInputGrid(GgmlType t)
{
    ActQuantSpec s;
    switch (t) {
    case GgmlType::F32: break;
    case GgmlType::F16: s.grid = ActGrid::F16; break;
    case GgmlType::BF16: s.grid = ActGrid::BF16; break;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0: s.grid = ActGrid::Q8_0; break;
    default: s.grid = ActGrid::Q8_K; break; // the K types
    }
    return s;
}

Expected<LlamaCppRuntime> LlamaCppRuntime::make(const WeightSource& weights, const GgufFile& file,
                                                const ModelConfig& config)
{
    const int layers = config.layers;
    LlamaCppRuntime r;
    // llama.cpp's CPU flash attention takes its tiled fp32 path only when head_dim is a multiple
    // of the SIMD width of the build it loads (16 floats with AVX-512, 8 with AVX2); otherwise it
    // runs the per-query kernel with an fp16 accumulator (ggml-cpu ops.cpp, flash_attn_ext).
    const int simd = __builtin_cpu_supports("avx512f") ? 16 : 8;
    r.m_flashF16 = config.headDim % simd != 0;
    r.m_weights = &weights;
    r.m_inputs.resize(size_t(layers));
    r.m_mins.resize(size_t(layers));
    for (int i = 0; i < layers; ++i)
        for (int k = 0; k < kLinearCount; ++k) {
            const LinearKind kind = LinearKind(k);
            const std::string name = ggufLinearName(i, kind);
            const GgufFile::Tensor* t = file.tensor(name);
            if (!t) return makeError(file.path() + ": no tensor " + name);
            r.m_inputs[size_t(i)][size_t(k)] = ggmlInputGrid(t->type);
            if (t->type != GgmlType::Q4_1 && t->type != GgmlType::Q5_1) continue;
            // The minimum m is the second fp16 of each block; Q and K rows are stored permuted.
            auto raw = file.readRaw(*t);
            if (!raw) return raw.error();
            const Eigen::Index cols = Eigen::Index(t->dims[0]), rows = Eigen::Index(t->dims[1]), blocks = cols / 32;
            const int blockBytes = ggmlTypeInfo(t->type)->blockBytes;
            const int heads = kind == LinearKind::Q ? config.heads : kind == LinearKind::K ? config.kvHeads : 0;
            const std::vector<Eigen::Index> order = heads ? rotaryRowOrder(rows, heads) : std::vector<Eigen::Index>{};
            auto mins = std::make_shared<RowMatrix>(rows, blocks);
            for (Eigen::Index row = 0; row < rows; ++row)
                for (Eigen::Index b = 0; b < blocks; ++b) {
                    const uint8_t* p = raw->data() + (row * blocks + b) * blockBytes + 2;
                    (*mins)(order.empty() ? row : order[size_t(row)], b) = halfToFloat(uint16_t(p[0] | (p[1] << 8)));
                }
            r.m_mins[size_t(i)][size_t(k)] = std::move(mins);
        }
    const GgufFile::Tensor* head = file.tensor("output.weight");
    if (!head) head = file.tensor("token_embd.weight"); // tied
    if (!head) return makeError(file.path() + ": no tensor output.weight or token_embd.weight");
    r.m_lmHeadInput = ggmlInputGrid(head->type);
    return r;
}

void LlamaCppRuntime::apply(EvalOptions& opt) const
{
    opt.runtime = {true, m_flashF16, m_lmHeadInput};
}

Expected<void> LlamaCppRuntime::block(int i, BlockWeights& out) const
{
    QL_TRY(m_weights->block(i, out));
    if (i < 0 || size_t(i) >= m_inputs.size()) return makeError("no block " + std::to_string(i));
    for (int k = 0; k < kLinearCount; ++k) {
        out.actQuant[size_t(k)] = m_inputs[size_t(i)][size_t(k)];
        out.q8_1Mins[size_t(k)] = m_mins[size_t(i)][size_t(k)];
    }
    return {};
}

} // namespace ql
