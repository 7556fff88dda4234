#include "quantlens/model/memoryestimate.h"

#include "quantlens/model/model.h"

#include <algorithm>

namespace ql {

namespace {

// The process before any work: code, Qt, libraries, thread stacks and allocator slack (measured:
// quantlens-cli info on a small model peaks near 60 MiB; the margin covers fragmentation).
constexpr int64_t kProgramBytes = 192ll << 20;
// The evaluator's cap on the states of one batch of windows (evaluator.cpp, maxBatchBytes).
constexpr int64_t kEvalBatchBytes = 512ll << 20;

// The shapes every term is a function of.
struct Shapes {
    int64_t h, q, kv, inter, layers, heads, vocab;
    int64_t blockParams = 0;     // the seven linears of the largest block
    int64_t linearParams = 0;    // every linear
    int64_t maxOutIn = 0;        // the largest linear
    int64_t maxIn = 0;           // the widest site (a Hessian is maxIn²)
    int64_t maxTensor = 0;       // the largest tensor, elements
    bool blockConverted = false; // linears stored in another dtype than F32: a block is converted
    bool headConverted = false;  // the lm_head likewise
};

Shapes shapesOf(const Model& model)
{
    const ModelConfig& c = model.config();
    Shapes s{c.hidden, int64_t(c.heads) * c.headDim, int64_t(c.kvHeads) * c.headDim, c.intermediate, c.layers, c.heads,
             c.vocab};
    std::vector<int64_t> perBlock(size_t(std::max(1, c.layers)), 0);
    for (const LinearLayer& l : model.linearLayers()) {
        if (l.block >= 0 && size_t(l.block) < perBlock.size()) perBlock[size_t(l.block)] += l.params();
        s.linearParams += l.params();
        s.maxOutIn = std::max(s.maxOutIn, l.outFeatures * l.inFeatures);
        s.maxIn = std::max(s.maxIn, l.inFeatures);
        s.blockConverted = s.blockConverted || l.dtype != DType::F32;
    }
    s.blockParams = *std::max_element(perBlock.begin(), perBlock.end());
    for (const auto& [name, t] : model.tensors()) s.maxTensor = std::max(s.maxTensor, t.numel());
    if (auto head = model.tensors().find(model.lmHeadTensor()); head != model.tensors().end())
        s.headConverted = head->second.dtype != DType::F32;
    return s;
}

// What one block's backward pass keeps of one window: the activations it recomputes from and the
// attention probabilities of every head.
MemoryTerm tapeTerm(const Shapes& s, int64_t seqlen)
{
    return {"backward tape of one window",
            4 * seqlen * (4 * s.h + 2 * s.q + 2 * s.kv + 3 * s.inter) + 4 * s.heads * seqlen * seqlen};
}

// Adds the terms of a quantize run: calibration buffers, Hessians, the method's working memory,
// the quantized layers kept to the end, and the transforms' fp32 model.
void addQuantize(std::vector<MemoryTerm>& t, const Shapes& s, const MemoryJob& job)
{
    const int64_t nt = job.windows * job.seqlen;
    if (job.calibrated) {
        t.push_back({"calibration states", 4 * nt * s.h});
        t.push_back({"one site's calibration inputs", 4 * nt * s.maxIn});
    }
    if (job.hessians) {
        t.push_back({"one site's Hessian", 12 * s.maxIn * s.maxIn});
        t.push_back({"GPTQ working memory", 12 * s.maxIn * s.maxIn + 40 * s.maxOutIn});
    }
    if (job.blockMethod) {
        t.push_back({"block-method target states", 4 * nt * s.h});
        t.push_back(tapeTerm(s, job.seqlen));
        t.push_back({"block parameters and gradients", 16 * s.blockParams});
    }
    // Each layer keeps its fp32 dequantized weight and its codes until the run is written.
    t.push_back({"quantized layers", 5 * s.linearParams * std::max<int64_t>(1, job.plansKept)});
    t.push_back({"run state being written", s.linearParams});
    if (job.transforms) t.push_back({"the model in fp32 for the transforms", 4 * (s.linearParams + 2 * s.vocab * s.h)});
}

} // namespace

int64_t MemoryEstimate::peakBytes() const
{
    int64_t sum = 0;
    for (const MemoryTerm& t : terms) sum += t.bytes;
    return sum;
}

std::string MemoryEstimate::summary(size_t n) const
{
    std::string s = formatBytes(peakBytes()) + " (";
    for (size_t i = 0; i < std::min(n, terms.size()); ++i)
        s += (i ? ", " : "") + terms[i].what + " " + formatBytes(terms[i].bytes);
    if (terms.size() > n) s += ", ...";
    return s + ")";
}

MemoryEstimate estimateMemory(const Model& model, const MemoryJob& job)
{
    const Shapes s = shapesOf(model);
    std::vector<MemoryTerm> t;
    t.push_back({"program", kProgramBytes});
    if (s.blockConverted) t.push_back({"one block converted to fp32", 4 * s.blockParams});
    const int64_t nt = job.windows * job.seqlen;
    const int64_t head = s.headConverted ? 4 * s.vocab * s.h : 0;
    switch (job.kind) {
    case MemoryJob::Kind::Analyze:
        t.push_back({"calibration states", 4 * nt * s.h});
        t.push_back({"per-site activation buffers", 4 * nt * (2 * s.h + s.q + s.inter)});
        t.push_back({"per-token statistics", nt * s.layers * 21});
        t.push_back({"one site's Hessian", 12 * s.maxIn * s.maxIn});
        if (job.sensitivity) t.push_back({"sensitivity temporaries", 20 * s.maxOutIn});
        if (job.gptqSensitivity) t.push_back({"GPTQ working memory", 12 * s.maxIn * s.maxIn + 40 * s.maxOutIn});
        if (job.keepHessians)
            t.push_back({"kept Hessians", 8 * s.layers * (2 * s.h * s.h + s.q * s.q + s.inter * s.inter)});
        if (job.fisher) {
            t.push_back({"diagonal Fisher", 4 * s.linearParams});
            t.push_back({"Fisher block inputs", 16 * s.layers * job.seqlen * s.h});
            t.push_back(tapeTerm(s, job.seqlen));
            t.push_back({"gradients and head backward", 4 * s.blockParams + 8 * s.vocab * job.seqlen + head});
        }
        if (job.klContext) t.push_back({"the --kl-context plan's layers", 5 * s.linearParams});
        if (job.heldOut > 0)
            t.push_back(
                {"end-to-end KL references", 4 * job.heldOut * job.seqlen * (s.layers * s.h + s.vocab + s.h) + head});
        break;
    case MemoryJob::Kind::Quantize: addQuantize(t, s, job); break;
    case MemoryJob::Kind::Eval: {
        const int64_t states = std::min(kEvalBatchBytes, 4 * std::max<int64_t>(1, job.evalWindows) * job.ctx * s.h);
        t.push_back({"evaluation states", states});
        t.push_back({"forward scratch", 4 * job.ctx * (2 * s.h + 2 * s.q + 2 * s.kv + 2 * s.inter)});
        t.push_back({"logits", 4 * s.vocab * job.ctx});
        if (head) t.push_back({"lm_head in fp32", head});
        if (job.quickWindows > 0) {
            t.push_back({"quick-slice float log-probabilities", 4 * job.quickWindows * job.ctx * s.vocab});
            t.push_back({"quick-slice block inputs", 4 * (s.layers + 1) * job.quickWindows * job.ctx * s.h});
        }
        if (job.quantizes) addQuantize(t, s, job);
        if (job.loadsRun) t.push_back({"the saved run's layers", 5 * s.linearParams});
        break;
    }
    case MemoryJob::Kind::Export:
        t.push_back({"the tensor being encoded", 8 * s.maxTensor});
        if (head) t.push_back({"embedding and head in fp32", 2 * head});
        if (job.loadsRun) t.push_back({"the saved run's layers", 5 * s.linearParams});
        break;
    }
    std::erase_if(t, [](const MemoryTerm& m) { return m.bytes <= 0; });
    std::stable_sort(t.begin(), t.end(), [](const MemoryTerm& a, const MemoryTerm& b) { return a.bytes > b.bytes; });
    MemoryEstimate e;
    e.terms = std::move(t);
    for (const auto& [name, info] : model.tensors()) e.mappedBytes += int64_t(info.nbytes);
    return e;
}

Expected<void> checkMemory(const MemoryEstimate& estimate, const AvailableMemory& available, const std::string& what)
{
    if (available.bytes < 0 || estimate.peakBytes() <= available.bytes) return {};
    return makeError(what + " needs an estimated " + estimate.summary() + " at its peak, but " +
                     formatBytes(available.bytes) + " is available (" + available.source +
                     "); set QL_MEMORY_LIMIT=none to run anyway");
}

} // namespace ql
