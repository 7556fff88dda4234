#include "quantlens/model/floatweights.h"

#include "quantlens/base/feedback.h"

namespace ql {

Expected<FloatWeights> FloatWeights::load(const Model& model, Feedback* fb)
{
    FloatWeights w;
    w.m_config = model.config();
    const int n = w.m_config.layers;
    w.m_blocks.resize(size_t(n));
    BlockWeights tmp;
    for (int i = 0; i < n; ++i) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        QL_TRY(model.block(i, tmp));
        BlockWeights& b = w.m_blocks[size_t(i)];
        b.attnNorm = tmp.attnNorm;
        b.mlpNorm = tmp.mlpNorm;
        b.bias = tmp.bias;
        // Own storage even where the model serves mmapped views: transforms write in place.
        for (int k = 0; k < kLinearCount; ++k) b.storage[size_t(k)] = tmp[static_cast<LinearKind>(k)];
        if (fb) fb->progress(double(i + 1) / (n + 1));
    }
    auto emb = model.tensorAsFloat("model.embed_tokens.weight");
    if (!emb) return emb.error();
    w.m_embedding = std::move(*emb);
    auto fn = model.finalNorm();
    if (!fn) return fn.error();
    w.m_finalNorm = std::move(*fn);
    w.m_tied = w.m_config.tieEmbeddings;
    if (!w.m_tied) {
        auto head = model.lmHead();
        if (!head) return head.error();
        w.m_lmHead = std::move(*head);
    }
    w.refreshViews();
    if (fb) fb->progress(1.0);
    return w;
}

// A copied BlockWeights still views the source's storage: point every copy at its own.
FloatWeights::FloatWeights(const FloatWeights& o)
    : m_config(o.m_config), m_blocks(o.m_blocks), m_embedding(o.m_embedding), m_lmHead(o.m_lmHead),
      m_finalNorm(o.m_finalNorm), m_tied(o.m_tied)
{
    refreshViews();
}

FloatWeights& FloatWeights::operator=(const FloatWeights& o)
{
    if (this != &o) {
        FloatWeights copy(o);
        *this = std::move(copy);
    }
    return *this;
}

void FloatWeights::refreshViews()
{
    for (BlockWeights& b : m_blocks)
        for (int k = 0; k < kLinearCount; ++k) b.useStorage(static_cast<LinearKind>(k));
}

BlockWeights& FloatWeights::blockWeights(int i)
{
    BlockWeights& b = m_blocks.at(size_t(i));
    for (int k = 0; k < kLinearCount; ++k) b.useStorage(static_cast<LinearKind>(k));
    return b;
}

void FloatWeights::untieLmHead()
{
    if (!m_tied) return;
    m_lmHead = m_embedding;
    m_tied = false;
    m_config.tieEmbeddings = false;
}

RowMatrix& FloatWeights::lmHeadWeight()
{
    untieLmHead();
    return m_lmHead;
}

Expected<void> FloatWeights::validate() const
{
    const ModelConfig& c = m_config;
    const Eigen::Index h = c.hidden, qDim = Eigen::Index(c.heads) * c.headDim,
                       kvDim = Eigen::Index(c.kvHeads) * c.headDim;
    auto check = [](const std::string& what, Eigen::Index rows, Eigen::Index cols, Eigen::Index wantRows,
                    Eigen::Index wantCols, bool finite) -> Expected<void> {
        if (rows != wantRows || cols != wantCols)
            return makeError(what + " has shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                             "], expected [" + std::to_string(wantRows) + ", " + std::to_string(wantCols) + "]");
        if (!finite) return makeError(what + " has NaN or infinite values");
        return {};
    };
    if (int(m_blocks.size()) != c.layers)
        return makeError("float weights hold " + std::to_string(m_blocks.size()) + " blocks, the config " +
                         std::to_string(c.layers));
    for (int i = 0; i < c.layers; ++i) {
        const BlockWeights& b = m_blocks[size_t(i)];
        const std::string p = "block " + std::to_string(i) + " ";
        QL_TRY(check(p + "input norm", b.attnNorm.size(), 1, h, 1, b.attnNorm.allFinite()));
        QL_TRY(check(p + "post-attention norm", b.mlpNorm.size(), 1, h, 1, b.mlpNorm.allFinite()));
        for (int k = 0; k < kLinearCount; ++k) {
            const auto kind = static_cast<LinearKind>(k);
            Eigen::Index out = h, in = h;
            switch (kind) {
            case LinearKind::Q: out = qDim; break;
            case LinearKind::K:
            case LinearKind::V: out = kvDim; break;
            case LinearKind::O: in = qDim; break;
            case LinearKind::Gate:
            case LinearKind::Up: out = c.intermediate; break;
            case LinearKind::Down: in = c.intermediate; break;
            }
            const RowMatrix& w = b.storage[size_t(k)];
            QL_TRY(check(p + linearShortName(kind), w.rows(), w.cols(), out, in, w.allFinite()));
            const Eigen::VectorXf& bias = b.bias[size_t(k)];
            if (bias.size())
                QL_TRY(check(p + linearShortName(kind) + " bias", bias.size(), 1, out, 1, bias.allFinite()));
        }
    }
    QL_TRY(check("embedding", m_embedding.rows(), m_embedding.cols(), c.vocab, h, m_embedding.allFinite()));
    QL_TRY(check("final norm", m_finalNorm.size(), 1, h, 1, m_finalNorm.allFinite()));
    if (!m_tied) QL_TRY(check("lm_head", m_lmHead.rows(), m_lmHead.cols(), c.vocab, h, m_lmHead.allFinite()));
    return {};
}

Expected<void> FloatWeights::block(int i, BlockWeights& out) const
{
    if (i < 0 || i >= layers())
        return makeError("block index " + std::to_string(i) + " out of range (model has " + std::to_string(layers()) +
                         ")");
    const BlockWeights& b = m_blocks[size_t(i)];
    out.attnNorm = b.attnNorm;
    out.mlpNorm = b.mlpNorm;
    out.bias = b.bias;
    out.downInputRotation = b.downInputRotation;
    out.actQuant = b.actQuant;
    // Views of the stored matrices themselves (not of b's views, which an edit may have outdated).
    for (int k = 0; k < kLinearCount; ++k) {
        const RowMatrix& w = b.storage[size_t(k)];
        out.setView(static_cast<LinearKind>(k), w.data(), w.rows(), w.cols());
    }
    return {};
}

Expected<void> FloatWeights::embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const
{
    out.resize(m_embedding.cols(), static_cast<Eigen::Index>(ids.size()));
    for (size_t j = 0; j < ids.size(); ++j) {
        if (ids[j] < 0 || ids[j] >= m_embedding.rows())
            return makeError("token id " + std::to_string(ids[j]) + " at position " + std::to_string(j) +
                             " is outside the vocabulary (size " + std::to_string(m_embedding.rows()) + ")");
        out.col(Eigen::Index(j)) = m_embedding.row(ids[j]).transpose();
    }
    return {};
}

} // namespace ql
