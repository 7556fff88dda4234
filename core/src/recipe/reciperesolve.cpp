// Resolving a recipe against a model's linear layers, and channel selectors against statistics.
#include "quantlens/recipe/recipe.h"

#include "quantlens/analysis/analysis.h"
#include "quantlens/quant/formats.h"
#include "quantlens/base/glob.h"
#include "recipe/recipefields.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace ql {

using detail::childPath;
using detail::errorAt;
using detail::itemPath;

namespace {

std::string overridePath(const RecipeOverride& o)
{
    return childPath("overrides", o.match);
}

// Applies one override to a quantized layer's spec (the field semantics of SpecPatch).
Expected<void> applyPatch(QuantSpec& spec, const SpecPatch& p, const std::string& path, const std::string& layer)
{
    if (p.method && *p.method != spec.method) {
        // Parameters are method-specific: the rule's would be invalid for another method.
        spec.params.clear();
        spec.method = *p.method;
    }
    if (p.params)
        for (const auto& [name, value] : *p.params) spec.params[name] = value;
    if (p.format) {
        spec.weight.format = *p.format;
    } else if (p.bits || p.symmetric) {
        auto found = findFormat(spec.weight.format);
        if (!found) return errorAt(path, "layer " + layer + ": " + found.message());
        const WeightFormat* current = *found;
        const bool isInt = current->kind == FormatKind::IntSym || current->kind == FormatKind::IntAsym;
        if (!p.bits && !isInt)
            return errorAt(childPath(path, "sym"), "layer " + layer + " has the non-integer format " +
                                                       spec.weight.format +
                                                       ", so \"sym\" needs \"bits\" (or give a \"format\")");
        const int bits = p.bits ? *p.bits : int(current->bits);
        const bool sym = p.symmetric ? *p.symmetric : isInt && current->kind == FormatKind::IntSym;
        auto id = intFormatId(bits, sym);
        if (!id) return errorAt(childPath(path, "bits"), id.message());
        spec.weight.format = *id;
    }
    if (p.granularity) {
        const bool wasGroup = spec.weight.granularity == Granularity::PerGroup;
        spec.weight.granularity = *p.granularity;
        if (*p.granularity != Granularity::PerGroup)
            spec.weight.groupSize = 0;
        else
            spec.weight.groupSize = p.groupSize ? *p.groupSize : wasGroup ? spec.weight.groupSize : 128;
    }
    if (p.channels) spec.channels = *p.channels;
    if (p.actBits) spec.activations.bits = *p.actBits;
    if (p.actPerToken) spec.activations.perToken = *p.actPerToken;
    if (p.actSymmetric) spec.activations.symmetric = *p.actSymmetric;
    return {};
}

// Checks a resolved spec against its layer. Explicit channel lists are checked now, against the
// layer's width, so a recipe that cannot apply fails before any quantization; selectors wait for
// the statistics. Formats are rechecked because a recipe may be built in code, not parsed.
Expected<void> checkSpec(const QuantSpec& spec, const std::string& path, const std::string& channelsPath,
                         const LinearLayer& layer)
{
    const auto checkFormat = [&](const FormatSpec& f, const std::string& where) -> Expected<void> {
        if (auto found = findFormat(f.format); !found)
            return errorAt(where, "layer " + layer.name + ": " + found.message());
        if (f.granularity == Granularity::PerGroup && f.groupSize <= 0)
            return errorAt(where,
                           "layer " + layer.name + ": group size " + std::to_string(f.groupSize) + " is not positive");
        return {};
    };
    QL_TRY(checkFormat(spec.weight, path));
    for (size_t i = 0; i < spec.channels.size(); ++i) {
        QL_TRY(checkFormat(spec.channels[i].weight, itemPath(channelsPath, i)));
        if (!spec.channels[i].selector.empty()) continue;
        auto ok = selectChannels(spec.channels[i], nullptr, int(layer.inFeatures));
        if (!ok) return errorAt(itemPath(channelsPath, i), "layer " + layer.name + ": " + ok.message());
    }
    return {};
}

} // namespace

Expected<std::map<std::string, QuantSpec>> resolveRecipe(const Recipe& recipe, const std::vector<LinearLayer>& layers)
{
    std::set<std::string> names;
    for (const LinearLayer& l : layers)
        if (!names.insert(l.name).second)
            return makeError("layer " + l.name + " appears twice in the model's layer list");
    // An exact name that names no layer is a typo or a recipe for another model; a glob that
    // matches nothing is normal for a recipe shared across models.
    const auto mustExist = [&](const std::string& match, const std::string& path) -> Expected<void> {
        if (isGlobPattern(match) || names.count(match)) return {};
        return errorAt(path, "no linear layer named \"" + match +
                                 "\" in this model (lm_head and embeddings are never quantized)");
    };
    for (size_t i = 0; i < recipe.skip.size(); ++i) QL_TRY(mustExist(recipe.skip[i], itemPath("skip", i)));
    for (const RecipeOverride& o : recipe.overrides) QL_TRY(mustExist(o.match, overridePath(o)));

    std::map<std::string, QuantSpec> out;
    for (const LinearLayer& layer : layers) {
        QuantSpec spec;
        std::string why; // why the layer is float, for an exact override that contradicts it
        const auto skipped = std::find_if(recipe.skip.begin(), recipe.skip.end(),
                                          [&](const std::string& g) { return globMatch(g, layer.name); });
        const auto rule = std::find_if(recipe.rules.begin(), recipe.rules.end(),
                                       [&](const RecipeRule& r) { return globMatch(r.match, layer.name); });
        std::string specPath, channelsPath;
        if (skipped != recipe.skip.end()) {
            why = "skipped by " + itemPath("skip", size_t(skipped - recipe.skip.begin()));
        } else if (rule == recipe.rules.end()) {
            why = "matched by no rule";
        } else {
            spec = rule->spec;
            spec.activations = recipe.activations;
            spec.skip = false;
            specPath = itemPath("rules", size_t(rule - recipe.rules.begin()));
            channelsPath = childPath(specPath, "channels");
        }
        if (!why.empty()) {
            spec = QuantSpec{};
            spec.skip = true;
            // A float layer has no format to patch: an override naming it exactly contradicts the
            // recipe, while a glob override just passes over it.
            for (const RecipeOverride& o : recipe.overrides)
                if (!isGlobPattern(o.match) && o.match == layer.name)
                    return errorAt(overridePath(o), "layer " + layer.name + " is kept in float (" + why +
                                                        "), so it cannot be overridden");
            out.emplace(layer.name, std::move(spec));
            continue;
        }
        for (const RecipeOverride& o : recipe.overrides) {
            if (!globMatch(o.match, layer.name)) continue;
            QL_TRY(applyPatch(spec, o.patch, overridePath(o), layer.name));
            if (o.patch.format || o.patch.bits || o.patch.symmetric || o.patch.granularity) specPath = overridePath(o);
            if (o.patch.channels) channelsPath = childPath(overridePath(o), "channels");
        }
        QL_TRY(checkSpec(spec, specPath, channelsPath, layer));
        out.emplace(layer.name, std::move(spec));
    }
    return out;
}

Expected<std::vector<int32_t>> selectChannels(const ChannelOverride& c, const SiteStats* site, int inFeatures)
{
    if (inFeatures <= 0)
        return makeError("a layer needs at least one input channel, got " + std::to_string(inFeatures));
    if (c.selector.empty()) {
        if (c.channels.empty()) return makeError("the channel override lists no channels and has no selector");
        std::vector<int32_t> out = c.channels;
        for (int32_t ch : out)
            if (ch < 0 || ch >= inFeatures)
                return makeError("input channel " + std::to_string(ch) + " is out of range for a layer with " +
                                 std::to_string(inFeatures) + " inputs");
        std::sort(out.begin(), out.end());
        if (auto dup = std::adjacent_find(out.begin(), out.end()); dup != out.end())
            return makeError("input channel " + std::to_string(*dup) + " is listed twice");
        return out;
    }
    if (!c.channels.empty()) return makeError("the channel override has both a channel list and a selector");
    if (c.selector != "top_absmax_percent")
        return makeError("unknown channel selector '" + c.selector + "'; expected one of: top_absmax_percent");
    if (!(c.selectorValue > 0 && c.selectorValue <= 100))
        return makeError("top_absmax_percent needs a percentage in (0, 100], got " + std::to_string(c.selectorValue));
    if (!site)
        return makeError(
            "the selector top_absmax_percent needs the site's activation statistics (run an analysis first)");
    if (site->absmax.size() != inFeatures)
        return makeError("site " + site->name + " has " + std::to_string(site->absmax.size()) +
                         " channels but the layer has " + std::to_string(inFeatures) + " inputs");
    for (int i = 0; i < inFeatures; ++i)
        if (std::isnan(site->absmax[i]))
            return makeError("site " + site->name + " has a NaN absmax at channel " + std::to_string(i) +
                             "; the statistics are unusable for channel selection");
    return topChannels(site->absmax, c.selectorValue);
}

std::vector<int32_t> topChannels(const Eigen::VectorXf& scores, double percent)
{
    const int n = int(scores.size());
    if (n == 0) return {};
    // ceil, so any positive percentage keeps at least one channel; the epsilon stops 10 % of
    // 1000 from becoming 101 through rounding of p·n/100.
    const double exact = percent * n / 100.0;
    const int k = std::clamp(int(std::ceil(exact - 1e-9)), 1, n);
    std::vector<int32_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
        const float va = scores[a], vb = scores[b];
        return va != vb ? va > vb : a < b;
    });
    order.resize(size_t(k));
    std::sort(order.begin(), order.end());
    return order;
}

} // namespace ql
