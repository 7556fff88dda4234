#include "quantlens/sitecapture.h"

#include "quantlens/forward.h"

#include <charconv>
#include <system_error>
#include <vector>

namespace ql {

namespace {

constexpr const char* kSiteSuffixes[] = {"attn_in", "o_in", "mlp_in", "down_in"};

struct SiteName {
    int layer = -1;
    std::string slot; ///< one of kSiteSuffixes
};

// Parses "layers.<i>.<slot>" with i a plain decimal in [0, layers); no signs, spaces or leading
// zeros, so each site has exactly one spelling.
Expected<SiteName> parseSite(const std::string& site, int layers)
{
    const auto invalid = [&](const std::string& why) {
        return makeError("capture: unknown site \"" + site + "\" (" + why +
                         "); valid sites are layers.<i>.attn_in, layers.<i>.o_in, layers.<i>.mlp_in and "
                         "layers.<i>.down_in with 0 <= i < " + std::to_string(layers) + " (the model has " +
                         std::to_string(layers) + " layers)");
    };
    const std::string prefix = "layers.";
    if (site.compare(0, prefix.size(), prefix) != 0) return invalid("does not start with \"layers.\"");
    const char* first = site.data() + prefix.size();
    const char* end = site.data() + site.size();
    SiteName out;
    const bool digit = first != end && *first >= '0' && *first <= '9'; // from_chars would take a '-'
    const auto [next, ec] = std::from_chars(first, end, out.layer);
    if (!digit || ec != std::errc() || (*first == '0' && next - first > 1) || next == end || *next != '.')
        return invalid("no layer number after \"layers.\"");
    out.slot.assign(next + 1, end);
    bool known = false;
    for (const char* s : kSiteSuffixes) known = known || out.slot == s;
    if (!known) return invalid("\"" + out.slot + "\" is not a site");
    if (out.layer >= layers) return invalid("layer " + std::to_string(out.layer) + " does not exist");
    return out;
}

} // namespace

Expected<RowMatrix> captureSite(const WeightSource& weights, const ModelConfig& config, std::span<const int32_t> tokens,
                                const std::string& site, int threads, Feedback* feedback)
{
    auto parsed = parseSite(site, config.layers);
    if (!parsed) return parsed.error();
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
        if (a.layer != parsed->layer || a.name != site) return;
        out = a.x.transpose(); // features × tokens, column-major: the same bytes as tokens × features row-major
        seen = true;
    });
    ForwardOptions options;
    options.threads = threads;
    options.computeLogits = false;
    options.stopAfterSite = parsed->slot;
    QL_TRY(engine.runLayers(0, parsed->layer + 1, states, options, feedback));
    if (!seen) return makeError("capture: the forward pass did not publish " + site);
    return out;
}

} // namespace ql
