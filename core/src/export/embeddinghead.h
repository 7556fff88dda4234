#pragma once

// The token embedding and the output projection as every exporter writes them (internal to the
// export code).

#include "quantlens/base/expected.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

namespace ql {

/// A model's embedding and, when it is not tied to it, its lm_head, both [vocab, hidden].
struct EmbeddingAndHead {
    RowMatrix embedding;
    RowMatrix lmHead; ///< empty while tied
    bool tied() const { return lmHead.size() == 0; }
};

/// Reads both from weights. They count as tied when the config ties them and the weights'
/// lm_head still equals the embedding: a transform that folds a norm into a tied lm_head unties
/// it, and the file then needs its own output weight. The model itself needs no comparison.
Expected<EmbeddingAndHead> readEmbeddingAndHead(const WeightSource& weights, const ModelConfig& config);

} // namespace ql
