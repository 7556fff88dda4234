#include "embeddinghead.h"

#include "quantlens/model/model.h"
#include "quantlens/quant/quantizedmodel.h"

#include <numeric>

namespace ql {

Expected<EmbeddingAndHead> readEmbeddingAndHead(const WeightSource& weights, const ModelConfig& c)
{
    // A run serves its base weights' embedding and lm_head unchanged.
    if (const auto* run = dynamic_cast<const QuantizedModel*>(&weights)) return readEmbeddingAndHead(run->base(), c);
    auto head = weights.lmHead();
    if (!head) return head.error();
    EmbeddingAndHead out;
    const bool plainModel = dynamic_cast<const Model*>(&weights) != nullptr;
    if (plainModel && c.tieEmbeddings) {
        out.embedding = std::move(*head);
        return out;
    }
    std::vector<int32_t> ids(static_cast<size_t>(c.vocab));
    std::iota(ids.begin(), ids.end(), 0);
    Eigen::MatrixXf cols; // hidden × vocab: column i is token i's row
    QL_TRY(weights.embed(ids, cols));
    out.embedding = cols.transpose();
    if (!c.tieEmbeddings || *head != out.embedding) out.lmHead = std::move(*head);
    return out;
}

} // namespace ql
