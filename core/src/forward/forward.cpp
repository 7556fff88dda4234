#include "quantlens/forward/forward.h"

#include "quantlens/forward/blockops.h"
#include "quantlens/quant/actquant.h"
#include "quantlens/forward/rotation.h"
#include "quantlens/base/threadscope.h"
#include "quantlens/model/safetensors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace ql {

namespace {

// The block's points as the integers the block code compares (execution order, BlockPoint's).
enum Slot { Input, AttnIn, Q, K, V, OIn, AttnOut, MlpIn, Gate, Up, DownIn, MlpOut, Output, SlotCount };
static_assert(SlotCount == kBlockPointCount && int(BlockPoint::DownIn) == DownIn && int(BlockPoint::Output) == Output);

// The slot of a site name ("attn_in", "o_in", "mlp_in", "down_in"), -1 for anything else.
int siteSlot(const std::string& name)
{
    const auto p = parsePoint(name);
    return p && siteIndex(*p) >= 0 ? int(*p) : -1;
}

// Query columns handled together in attention: keys beyond the block's last query are
// skipped, so the causal half of the score matrix is mostly never computed.
constexpr int kQueryBlock = 128;

// out = head · x with bf16 operands (RuntimeNumerics::bf16Products), the input packed into `in`.
void headProduct(const ConstRowMap& head, const Eigen::Ref<const Eigen::MatrixXf>& x, bf16::PackedInput& in,
                 Eigen::MatrixXf& out)
{
    in.pack(x);
    bf16::multiply(head.data(), head.rows(), head.cols(), in, out);
}

// out = head · x in blocks of vocabulary rows, the blocks shared among threads: one product over
// the whole vocabulary streams a result far larger than the caches and runs at a third of the
// speed of the blocks' products. Each block's product is the same whichever thread runs it.
void headProduct(const ConstRowMap& head, const Eigen::Ref<const Eigen::MatrixXf>& x, Eigen::MatrixXf& out)
{
    constexpr Eigen::Index kRows = 1024;
    out.resize(head.rows(), x.cols());
    const Eigen::Index blocks = (head.rows() + kRows - 1) / kRows;
#pragma omp parallel for schedule(dynamic)
    for (Eigen::Index b = 0; b < blocks; ++b) {
        const Eigen::Index r0 = b * kRows, rows = std::min(kRows, head.rows() - r0);
        out.middleRows(r0, rows).noalias() = head.middleRows(r0, rows) * x;
    }
}

} // namespace

ForwardEngine::ForwardEngine(const ModelConfig& config, const WeightSource& weights)
    : m_config(config), m_weights(weights)
{
    m_names.resize(config.layers);
    for (int i = 0; i < config.layers; ++i)
        for (int s = 0; s < SlotCount; ++s) m_names[i].push_back(siteName(i, BlockPoint(s)));
}

Expected<void> ForwardEngine::useBf16(const RuntimeNumerics& runtime)
{
    m_bf16 = runtime.bf16Products;
    if (m_bf16 && !bf16::supported())
        return makeError("forward pass: bf16 products need a CPU with AVX512-BF16, which this one lacks; use fp32");
    return {};
}

void ForwardEngine::publish(int layer, int slot, int seq, const Eigen::MatrixXf& x)
{
    if (m_observer) m_observer(Activation{m_names[layer][slot], layer, seq, x, BlockPoint(slot)});
}

double ForwardEngine::flopsPerSequence(int n, int logitTokens) const
{
    return flops(m_config, n, logitTokens);
}

double ForwardEngine::flops(const ModelConfig& c, int n, int logitTokens)
{
    const double qDim = double(c.heads) * c.headDim, kvDim = double(c.kvHeads) * c.headDim;
    const double linear = 2.0 * n * (c.hidden * (qDim + 2 * kvDim) + qDim * c.hidden + 3.0 * c.hidden * c.intermediate);
    double attn = 0;
    for (int j0 = 0; j0 < n; j0 += kQueryBlock) {
        const int jb = std::min(kQueryBlock, n - j0);
        attn += 2.0 * 2.0 * double(j0 + jb) * jb * c.headDim * c.heads; // scores and weighted values
    }
    return c.layers * (linear + attn) + 2.0 * c.vocab * c.hidden * logitTokens;
}

Expected<void> ForwardEngine::run(const std::vector<std::vector<int32_t>>& seqs, const LogitsSink& sink,
                                  const ForwardOptions& opt, Feedback* fb)
{
    for (const auto& s : seqs)
        if (s.empty()) return makeError("forward pass: empty token sequence");
    std::vector<Eigen::MatrixXf> xs(seqs.size());
    for (size_t s = 0; s < seqs.size(); ++s) QL_TRY(m_weights.embed(seqs[s], xs[s]));
    return runFrom(0, xs, sink, opt, fb);
}

Expected<void> ForwardEngine::runLayers(int first, int last, std::vector<Eigen::MatrixXf>& xs,
                                        const ForwardOptions& opt, Feedback* fb)
{
    return layers(first, last, xs, opt, fb, double(last - first) * double(xs.size()));
}

Expected<void> ForwardEngine::runBlockPart(int layer, std::vector<Eigen::MatrixXf>& xs, BlockCheckpoint& cp,
                                           const ForwardOptions& opt, Feedback* fb)
{
    int start = Input;
    if (cp.layer == layer) {
        start = siteSlot(cp.site);
        if (start < 0) return makeError("forward pass: checkpoint at \"" + cp.site + "\" is not a site");
        if (cp.values.size() != xs.size())
            return makeError("forward pass: checkpoint holds " + std::to_string(cp.values.size()) +
                             " sequences, states " + std::to_string(xs.size()));
    }
    if (!opt.stopAfterSite.empty()) {
        const int stop = siteSlot(opt.stopAfterSite);
        if (stop >= 0 && stop <= start)
            return makeError("forward pass: cannot run block " + std::to_string(layer) + " from \"" + cp.site +
                             "\" to \"" + opt.stopAfterSite + "\", which comes before it");
    }
    cp.values.resize(xs.size());
    m_startSlot = start;
    m_checkpoint = &cp;
    auto ran = layers(layer, layer + 1, xs, opt, fb, double(xs.size()));
    m_startSlot = Input;
    m_checkpoint = nullptr;
    if (!ran) {
        cp = BlockCheckpoint(); // a half-updated checkpoint is never resumed
        return ran;
    }
    if (opt.stopAfterSite.empty()) {
        cp = BlockCheckpoint();
    } else {
        cp.layer = layer;
        cp.site = opt.stopAfterSite;
    }
    return {};
}

Expected<void> ForwardEngine::layers(int first, int last, std::vector<Eigen::MatrixXf>& xs, const ForwardOptions& opt,
                                     Feedback* fb, double units)
{
    const ThreadScope threads(opt.threads);
    if (first < 0 || first > last || last > m_config.layers)
        return makeError("forward pass: blocks [" + std::to_string(first) + ", " + std::to_string(last) +
                         ") do not exist in a model of " + std::to_string(m_config.layers));
    const int nSeq = static_cast<int>(xs.size());
    size_t maxLen = 0;
    for (const auto& x : xs) {
        if (x.cols() == 0) return makeError("forward pass: empty token sequence");
        if (x.rows() != m_config.hidden)
            return makeError("forward pass: hidden state has " + std::to_string(x.rows()) + " rows, expected " +
                             std::to_string(m_config.hidden));
        maxLen = std::max(maxLen, static_cast<size_t>(x.cols()));
    }
    if (m_config.maxPositions > 0 && maxLen > static_cast<size_t>(m_config.maxPositions) && fb)
        fb->message("warning: sequence length " + std::to_string(maxLen) + " exceeds max_position_embeddings " +
                    std::to_string(m_config.maxPositions));

    ropeTables(m_config, static_cast<Eigen::Index>(maxLen), m_cos, m_sin);

    QL_TRY(useBf16(opt.runtime));
    m_kvF16 = opt.runtime.kvCacheF16;
    m_flashF16 = opt.runtime.kvCacheF16 && opt.runtime.flashAttentionF16;
    m_stopLayer = m_stopSlot = -1;
    if (!opt.stopAfterSite.empty()) {
        m_stopSlot = siteSlot(opt.stopAfterSite);
        if (m_stopSlot < 0)
            return makeError("forward pass: cannot stop after \"" + opt.stopAfterSite + "\", not a site");
        m_stopLayer = last - 1;
    }
    for (int layer = first; layer < last; ++layer) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        QL_TRY(m_weights.block(layer, m_block));
        if (m_bf16)
            for (int k = 0; k < kLinearCount; ++k) {
                const ConstRowMap wk = m_block[LinearKind(k)];
                m_packed[size_t(k)].pack(wk.data(), wk.rows(), wk.cols());
            }
        for (int s = 0; s < nSeq; ++s) {
            if (fb && fb->isCanceled()) return makeError(canceledMessage());
            runBlock(layer, m_block, xs[s], s);
            if (fb && units > 0) fb->progress((double(layer - first) * nSeq + s + 1) / units);
        }
    }
    return {};
}

Expected<void> ForwardEngine::runFrom(int firstLayer, std::vector<Eigen::MatrixXf>& xs, const LogitsSink& sink,
                                      const ForwardOptions& opt, Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    if (firstLayer < 0 || firstLayer > m_config.layers)
        return makeError("forward pass: no block " + std::to_string(firstLayer) + " in a model of " +
                         std::to_string(m_config.layers));
    const int nSeq = static_cast<int>(xs.size());
    const double units = double(m_config.layers - firstLayer) * nSeq + nSeq;
    QL_TRY(layers(firstLayer, m_config.layers, xs, opt, fb, units));

    if (m_finalNorm.size() == 0 || !m_cacheLmHead) {
        auto fn = m_weights.finalNorm();
        if (!fn) return fn.error();
        m_finalNorm = std::move(*fn);
    }
    std::optional<ConstRowMap> head; // m_bf16 was set by layers() above, even when no block ran
    if (opt.computeLogits) {
        auto view = m_weights.lmHeadView();
        if (!view) return view.error();
        if (*view) {
            head.emplace(**view);
            m_lmHead = RowMatrix();
        } else {
            if (m_lmHead.size() == 0 || !m_cacheLmHead) {
                auto owned = m_weights.lmHead();
                if (!owned) return owned.error();
                m_lmHead = std::move(*owned);
            }
            head.emplace(m_lmHead.data(), m_lmHead.rows(), m_lmHead.cols());
        }
    }
    auto product = [&](const Eigen::Ref<const Eigen::MatrixXf>& x) {
        if (m_bf16)
            headProduct(*head, x, m_packedIn, m_logits);
        else
            headProduct(*head, x, m_logits);
    };
    for (int s = 0; s < nSeq; ++s) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        rmsNorm(xs[s], m_finalNorm, m_config.rmsEps, m_h);
        if (m_observer) m_observer(Activation{m_finalName, -1, s, m_h, BlockPoint::Output});
        if (opt.computeLogits) {
            const Eigen::Index n = m_h.cols();
            Eigen::Index from = opt.logitsFrom < 0 ? n + opt.logitsFrom : opt.logitsFrom;
            from = std::clamp<Eigen::Index>(from, 0, n - 1);
            if (opt.runtime.lmHeadInput.active()) {
                fakeQuantizeActivations(m_h.rightCols(n - from), opt.runtime.lmHeadInput, m_xq);
                product(m_xq);
            } else {
                product(m_h.rightCols(n - from));
            }
            if (sink) QL_TRY(sink(s, m_logits));
        }
        if (fb) fb->progress((double(m_config.layers - firstLayer) * nSeq + s + 1) / units);
    }
    if (!m_cacheLmHead) {
        m_lmHead = RowMatrix();
        m_finalNorm = Eigen::VectorXf();
    }
    return {};
}

void ForwardEngine::runBlock(int layer, const BlockWeights& w, Eigen::MatrixXf& x, int seq)
{
    const ModelConfig& c = m_config;
    const Eigen::Index n = x.cols();
    const int hd = c.headDim;
    // runBlockPart: resume after the checkpoint's site with its value, or save the value where
    // the run stops (swapped, not copied: the scratch takes over the checkpoint's old buffer).
    const int start = m_checkpoint ? m_startSlot : Input;
    auto resumeInto = [&](Eigen::MatrixXf& scratch) { std::swap(scratch, m_checkpoint->values[size_t(seq)]); };
    auto stopAt = [&](int slot, Eigen::MatrixXf& value) {
        if (!stopHere(layer, slot)) return false;
        if (m_checkpoint) std::swap(value, m_checkpoint->values[size_t(seq)]);
        return true;
    };
    if (start == Input) {
        publish(layer, Input, seq, x);
        rmsNorm(x, w.attnNorm, c.rmsEps, m_h);
        publish(layer, AttnIn, seq, m_h);
        if (stopAt(AttnIn, m_h)) return;
    }
    // Simulated activation quantization: the GEMM reads a fake-quantized copy of its input, made
    // once per site for linears with equal specs (q/k/v, gate/up); observers saw the float value.
    const Eigen::MatrixXf* quantizedFrom = nullptr;
    ActQuantSpec quantizedAs;
    // With bf16 products the input is packed once per site too (packedFrom: what m_packedIn holds).
    const Eigen::MatrixXf* packedFrom = nullptr;
    auto input = [&](LinearKind k, const Eigen::MatrixXf& in) -> const Eigen::MatrixXf& {
        const ActQuantSpec& a = w.actQuant[static_cast<int>(k)];
        if (!a.active()) return in;
        if (quantizedFrom != &in || !(quantizedAs == a)) {
            fakeQuantizeActivations(in, a, m_xq);
            quantizedFrom = &in;
            quantizedAs = a;
            if (packedFrom == &m_xq) packedFrom = nullptr;
        }
        return m_xq;
    };
    auto project = [&](LinearKind k, const Eigen::MatrixXf& in, Eigen::MatrixXf& out) {
        const Eigen::MatrixXf& x = input(k, in);
        if (m_bf16) {
            if (packedFrom != &x) {
                m_packedIn.pack(x);
                packedFrom = &x;
            }
            bf16::multiply(m_packed[static_cast<size_t>(k)], m_packedIn, out);
        } else {
            out.noalias() = w[k] * x;
        }
        if (const auto& mins = w.q8_1Mins[static_cast<int>(k)]) {
            q8_1Correction(in, m_q81);
            out.noalias() += *mins * m_q81;
        }
        const Eigen::VectorXf& b = w.bias[static_cast<int>(k)];
        if (b.size()) out.colwise() += b;
    };
    if (start <= AttnIn) {
        if (start == AttnIn) resumeInto(m_h);
        project(LinearKind::Q, m_h, m_q);
        project(LinearKind::K, m_h, m_k);
        project(LinearKind::V, m_h, m_v);
        publish(layer, Q, seq, m_q);
        publish(layer, K, seq, m_k);
        publish(layer, V, seq, m_v);
        applyRope(m_q, hd, m_cos, m_sin);
        applyRope(m_k, hd, m_cos, m_sin);
        if (m_kvF16)
            for (Eigen::MatrixXf* m : {&m_k, &m_v}) m->noalias() = m->unaryExpr([](float v) { return roundToHalf(v); });

        m_attn.resize(static_cast<Eigen::Index>(c.heads) * hd, n);
        const int group = c.heads / c.kvHeads;
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        const int window = c.slidingWindow;
        if (m_flashF16) {
            flashAttentionF16(m_q, m_k, m_v, m_attn, scale);
        } else
#pragma omp parallel
        {
            Eigen::MatrixXf scores;
#pragma omp for schedule(dynamic)
            for (int head = 0; head < c.heads; ++head) {
                const int kvh = head / group;
                const auto qh = m_q.middleRows(static_cast<Eigen::Index>(head) * hd, hd);
                const auto kh = m_k.middleRows(static_cast<Eigen::Index>(kvh) * hd, hd);
                const auto vh = m_v.middleRows(static_cast<Eigen::Index>(kvh) * hd, hd);
                auto out = m_attn.middleRows(static_cast<Eigen::Index>(head) * hd, hd);
                for (Eigen::Index j0 = 0; j0 < n; j0 += kQueryBlock) {
                    const Eigen::Index jb = std::min<Eigen::Index>(kQueryBlock, n - j0);
                    const Eigen::Index keys = j0 + jb;
                    scores.noalias() = kh.leftCols(keys).transpose() * qh.middleCols(j0, jb);
                    for (Eigen::Index cidx = 0; cidx < jb; ++cidx) {
                        const Eigen::Index j = j0 + cidx;
                        const Eigen::Index lo = window > 0 ? std::max<Eigen::Index>(0, j - window + 1) : 0;
                        maskedSoftmax(scores.col(cidx).data(), lo, j, keys, scale);
                    }
                    out.middleCols(j0, jb).noalias() = vh.leftCols(keys) * scores;
                }
            }
        }
        publish(layer, OIn, seq, m_attn);
        if (stopAt(OIn, m_attn)) return;
    }
    if (start <= OIn) {
        if (start == OIn) resumeInto(m_attn);
        project(LinearKind::O, m_attn, m_o);
        publish(layer, AttnOut, seq, m_o);
        x += m_o;
        rmsNorm(x, w.mlpNorm, c.rmsEps, m_h);
        quantizedFrom = nullptr; // m_h holds a new site now
        packedFrom = nullptr;
        publish(layer, MlpIn, seq, m_h);
        if (stopAt(MlpIn, m_h)) return;
    }
    if (start <= MlpIn) {
        if (start == MlpIn) resumeInto(m_h);
        project(LinearKind::Gate, m_h, m_g);
        project(LinearKind::Up, m_h, m_u);
        publish(layer, Gate, seq, m_g);
        publish(layer, Up, seq, m_u);
#pragma omp parallel for schedule(static)
        for (Eigen::Index j = 0; j < n; ++j) {
            auto g = m_g.col(j).array();
            g = g / (1.0f + (-g).exp()) * m_u.col(j).array();
        }
        // The online rotation is part of the function (down_proj's weight was stored as W·Rᵀ), so
        // down_in is published rotated: it is what down_proj reads and what its quantizer must see.
        if (w.downInputRotation) w.downInputRotation->leftMultiply(m_g);
        publish(layer, DownIn, seq, m_g);
        if (stopAt(DownIn, m_g)) return;
    }
    if (start == DownIn) resumeInto(m_g);
    project(LinearKind::Down, m_g, m_o);
    publish(layer, MlpOut, seq, m_o);
    x += m_o;
    publish(layer, Output, seq, x);
}

void ForwardEngine::flashAttentionF16(const Eigen::MatrixXf& q, const Eigen::MatrixXf& k, const Eigen::MatrixXf& v,
                                      Eigen::MatrixXf& out, float scale) const
{
    const ModelConfig& c = m_config;
    const int hd = c.headDim, group = c.heads / c.kvHeads, window = c.slidingWindow;
    const Eigen::Index n = q.cols();
#pragma omp parallel for schedule(dynamic)
    for (int head = 0; head < c.heads; ++head) {
        const int kvh = head / group;
        std::vector<float> q16(static_cast<size_t>(hd)), acc(static_cast<size_t>(hd));
        for (Eigen::Index j = 0; j < n; ++j) {
            for (int d = 0; d < hd; ++d) q16[size_t(d)] = roundToHalf(q(Eigen::Index(head) * hd + d, j));
            std::fill(acc.begin(), acc.end(), 0.f);
            float M = -std::numeric_limits<float>::infinity(), S = 0.f;
            const Eigen::Index lo = window > 0 ? std::max<Eigen::Index>(0, j - window + 1) : 0;
            for (Eigen::Index key = lo; key <= j; ++key) {
                float s = 0.f;
                for (int d = 0; d < hd; ++d) s += k(Eigen::Index(kvh) * hd + d, key) * q16[size_t(d)];
                s *= scale;
                float ms = 1.f, vs = 1.f;
                if (s > M) { // a new maximum rescales the fp16 accumulator
                    const float old = M;
                    M = s;
                    ms = std::exp(old - M);
                    for (float& a : acc) a = roundToHalf(a * ms);
                } else {
                    vs = std::exp(s - M);
                }
                for (int d = 0; d < hd; ++d)
                    acc[size_t(d)] = roundToHalf(acc[size_t(d)] + v(Eigen::Index(kvh) * hd + d, key) * vs);
                S = S * ms + vs;
            }
            const float inv = S == 0.f ? 0.f : 1.f / S;
            for (int d = 0; d < hd; ++d) out(Eigen::Index(head) * hd + d, j) = acc[size_t(d)] * inv;
        }
    }
}

} // namespace ql
