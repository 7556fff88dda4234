#include "quantlens/export/llamacppruntime.h"

#include "quantlens/export/ggufexport.h"

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
    for (int i = 0; i < layers; ++i)
        for (int k = 0; k < kLinearCount; ++k) {
            const std::string name = ggufLinearName(i, LinearKind(k));
            const GgufFile::Tensor* t = file.tensor(name);
            if (!t) return makeError(file.path() + ": no tensor " + name);
            r.m_inputs[size_t(i)][size_t(k)] = ggmlInputGrid(t->type);
        }
    const GgufFile::Tensor* head = file.tensor("output.weight");
    if (!head) head = file.tensor("token_embd.weight"); // tied
    if (!head) return makeError(file.path() + ": no tensor output.weight or token_embd.weight");
    r.m_lmHeadInput = ggmlInputGrid(head->type);
    return r;
}

void LlamaCppRuntime::apply(EvalOptions& opt) const
{
    opt.kvCacheF16 = true;
    opt.flashAttentionF16 = m_flashF16;
    opt.lmHeadInput = m_lmHeadInput;
}

Expected<void> LlamaCppRuntime::block(int i, BlockWeights& out) const
{
    QL_TRY(m_weights->block(i, out));
    if (i < 0 || size_t(i) >= m_inputs.size()) return makeError("no block " + std::to_string(i));
    for (int k = 0; k < kLinearCount; ++k) out.actQuant[size_t(k)] = m_inputs[size_t(i)][size_t(k)];
    return {};
}

} // namespace ql
