#include "quantlens/forward/sitecapture.h"

#include "quantlens/forward/forward.h"

#include <vector>

namespace ql {

Expected<RowMatrix> captureSite(const WeightSource& weights, const ModelConfig& config, std::span<const int32_t> tokens,
                                const std::string& site, int threads, Feedback* feedback)
{
    auto parsed = parseSite(site, config.layers);
    if (!parsed) return makeError("capture: " + parsed.message());
    if (tokens.empty()) return makeError("capture: the token window is empty");
    // Checked here rather than left to the source's embed(), so every WeightSource gives the same message.
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= config.vocab)
            return makeError("capture: token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                             " is outside the vocabulary (ids 0.." + std::to_string(config.vocab - 1) + ")");
    if (feedback && feedback->isCanceled()) return makeError(canceledMessage());

    std::vector<Eigen::MatrixXf> states(1);
    QL_TRY(weights.embed(tokens, states[0]));
    ForwardEngine engine(config, weights);
    RowMatrix out;
    bool seen = false;
    engine.setObserver([&](const Activation& a) {
        if (a.layer != parsed->layer || a.point != parsed->point) return;
        out = a.x.transpose(); // features × tokens, column-major: the same bytes as tokens × features row-major
        seen = true;
    });
    ForwardOptions options;
    options.threads = threads;
    options.computeLogits = false;
    options.stopAfterSite = pointName(parsed->point);
    QL_TRY(engine.runLayers(0, parsed->layer + 1, states, options, feedback));
    if (!seen) return makeError("capture: the forward pass did not publish " + site);
    return out;
}

} // namespace ql
