#include "quantlens/alloc/measuredoptions.h"

#include "quantlens/analysis/analyzer.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/recipe/plansize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace ql {

namespace {

// The item a layer belongs to under the constraints: its own name, or its block's tied group.
std::string itemKey(const LinearLayer& l, const AllocConstraints& c)
{
    const bool qkv = l.kind == LinearKind::Q || l.kind == LinearKind::K || l.kind == LinearKind::V;
    const bool gateUp = l.kind == LinearKind::Gate || l.kind == LinearKind::Up;
    if (c.tieQkv && qkv) return "block " + std::to_string(l.block) + " q/k/v";
    if (c.tieGateUp && gateUp) return "block " + std::to_string(l.block) + " gate/up";
    return l.name;
}

Expected<double> measured(const LayerSensitivity& s, size_t k, AllocMeasure m)
{
    // An optional column: what it is called and which analysis writes it, for the error.
    auto column = [&](const std::vector<double>& v, const char* what, const char* run) -> Expected<double> {
        if (v.size() != s.bits.size())
            return makeError("allocation: " + s.name + " has no " + what + " in the analysis; run analyze " + run +
                             ", or use another measure");
        return v[k];
    };
    switch (m) {
    case AllocMeasure::Hawq: return makeError("allocation: the hawq measure is computed from the weights");
    case AllocMeasure::Proxy: return s.proxy.at(k);
    case AllocMeasure::Output: return s.relMse.at(k);
    case AllocMeasure::Kl: return column(s.kl, "end-to-end KL", "--sensitivity full");
    case AllocMeasure::Fisher: return column(s.fisher, "Fisher measure", "--sensitivity fisher (or full)");
    case AllocMeasure::FisherOut: return column(s.fisherOut, "output-Fisher measure", "--sensitivity fisher (or full)");
    }
    return makeError("allocation: unknown measure");
}

} // namespace

Expected<AllocMeasure> parseAllocMeasure(std::string_view name)
{
    if (name == "proxy") return AllocMeasure::Proxy;
    if (name == "output") return AllocMeasure::Output;
    if (name == "kl") return AllocMeasure::Kl;
    if (name == "hawq") return AllocMeasure::Hawq;
    if (name == "fisher") return AllocMeasure::Fisher;
    if (name == "fisher-out") return AllocMeasure::FisherOut;
    return makeError("measure must be proxy, output, kl, hawq, fisher or fisher-out, got '" + std::string(name) + "'");
}

Expected<AllocMeasure> measureFor(const std::string& allocator, const std::string& requested,
                                  const AnalysisResult& analysis, std::string* name)
{
    if (allocator == "hawq" && !requested.empty() && requested != "hawq")
        return makeError("the hawq allocator uses its own measure; drop --measure");
    const bool hasKl = !analysis.sensitivity.empty() && !analysis.sensitivity.front().kl.empty();
    *name = allocator == "hawq" ? "hawq" : !requested.empty() ? requested : hasKl ? "kl" : "proxy";
    return parseAllocMeasure(*name);
}

int64_t linearWeights(const std::vector<LinearLayer>& layers)
{
    int64_t n = 0;
    for (const LinearLayer& l : layers) n += l.outFeatures * l.inFeatures;
    return n;
}

Expected<std::vector<AllocItem>> measuredItems(const std::vector<LinearLayer>& layers, const AnalysisResult& analysis,
                                               AllocMeasure measure, const AllocConstraints& constraints,
                                               const WeightSource* weights)
{
    if (measure == AllocMeasure::Hawq && !weights) return makeError("allocation: the hawq measure needs the weights");
    BlockWeights block;
    int blockLoaded = -1;
    std::map<std::string, const LayerSensitivity*> sens;
    for (const LayerSensitivity& s : analysis.sensitivity) sens[s.name] = &s;
    std::map<std::string, const SiteStats*> sites;
    for (const SiteStats& s : analysis.sites) sites[s.name] = &s;
    std::set<int> massiveAfter; // blocks whose output carries a massive activation
    for (const MassiveActivation& m : analysis.massive) massiveAfter.insert(m.layer);
    for (const auto& pinned : constraints.pinnedBits)
        if (const std::string& layer = pinned.first;
            !std::any_of(layers.begin(), layers.end(), [&](const LinearLayer& l) { return l.name == layer; }))
            return makeError("allocation: cannot pin " + layer + ", the model has no such linear layer");
    std::vector<AllocItem> items;
    std::vector<std::vector<SensitivityOption>> measuredAs; // per item, the options it was measured with
    std::map<std::string, size_t> itemOf;
    for (const LinearLayer& l : layers) {
        const auto it = sens.find(l.name);
        if (it == sens.end() || it->second->bits.empty())
            return makeError("allocation: the analysis has no sensitivity for " + l.name +
                             "; run analyze with sensitivity on this model");
        const LayerSensitivity& s = *it->second;
        const std::string key = itemKey(l, constraints);
        auto [at, fresh] = itemOf.try_emplace(key, items.size());
        std::vector<SensitivityOption> opts;
        for (size_t k = 0; k < s.bits.size(); ++k) opts.push_back(s.option(k));
        if (fresh) {
            AllocItem item;
            for (const SensitivityOption& o : opts) {
                auto spec = sensitivityOptionSpec(o);
                if (!spec) return makeError("allocation: " + l.name + ": " + spec.error().message);
                item.options.push_back({sensitivityOptionLabel(o), *spec, 0, 0.0});
            }
            item.entropyBits = std::numeric_limits<double>::infinity();
            items.push_back(std::move(item));
            measuredAs.push_back(opts);
        } else if (measuredAs[at->second] != opts) {
            return makeError("allocation: " + l.name + " was measured with other options than " +
                             items[at->second].layers.front() + ", which it is tied to");
        }
        AllocItem& item = items[at->second];
        item.layers.push_back(l.name);
        item.weights += l.outFeatures * l.inFeatures;
        // A spike: outlier channels at the input site, or a massive activation in the residual
        // stream the block reads.
        if (const auto site = sites.find(l.site); site != sites.end()) {
            item.entropyBits = std::min(item.entropyBits, site->second->valueEntropyBits);
            item.spiky = item.spiky || !site->second->outlierChannels.empty();
        }
        item.spiky = item.spiky || massiveAfter.count(l.block - 1) > 0;
        double meanSquare = 0; // HAWQ: the input Hessian's mean diagonal over n
        if (measure == AllocMeasure::Hawq) {
            const auto site = sites.find(l.site);
            if (site == sites.end()) return makeError("allocation: the analysis has no statistics of " + l.site);
            meanSquare = inputMeanSquare(*site->second);
            if (s.weightSq.empty() && blockLoaded != l.block) { // older stores: RTN's perturbation, recomputed
                QL_TRY(weights->block(l.block, block));
                blockLoaded = l.block;
            }
        }
        for (size_t k = 0; k < s.bits.size(); ++k) {
            AllocOption& o = item.options[k];
            const double perWeight = specBitsPerWeight(o.spec, l.outFeatures, l.inFeatures);
            o.bits += std::llround(perWeight * double(l.outFeatures) * double(l.inFeatures));
            if (measure == AllocMeasure::Hawq) {
                if (!s.weightSq.empty()) {
                    o.error += meanSquare * s.weightSq[k];
                    continue;
                }
                const ConstRowMap w = block[l.kind];
                o.error += meanSquare * (rtnFakeQuant(w, s.bits[k], opts[k].group) - w).cast<double>().squaredNorm();
                continue;
            }
            auto e = measured(s, k, measure);
            if (!e) return e.error();
            o.error += *e;
        }
    }
    for (AllocItem& item : items)
        if (std::isinf(item.entropyBits)) item.entropyBits = 0; // no site statistics
    // Pins keep one option; tied layers must agree.
    for (size_t i = 0; i < items.size(); ++i) {
        int pin = 0;
        for (const std::string& layer : items[i].layers) {
            const auto p = constraints.pinnedBits.find(layer);
            if (p == constraints.pinnedBits.end()) continue;
            if (pin && pin != p->second)
                return makeError("allocation: " + layer + " is pinned to " + std::to_string(p->second) +
                                 " bits, a layer tied to it to " + std::to_string(pin));
            pin = p->second;
        }
        if (!pin) continue;
        std::vector<AllocOption> kept; // every measured option at the pinned width
        for (size_t k = 0; k < measuredAs[i].size(); ++k)
            if (measuredAs[i][k].bits == pin) kept.push_back(items[i].options[k]);
        if (kept.empty())
            return makeError("allocation: " + items[i].layers.front() + " is pinned to " + std::to_string(pin) +
                             " bits, which the analysis did not measure");
        items[i].options = std::move(kept);
    }
    return items;
}

Recipe allocationRecipe(const std::vector<AllocItem>& items, const Allocation& a)
{
    // The most common chosen spec (by layers) becomes the "*" rule.
    std::vector<std::pair<QuantSpec, size_t>> counts;
    for (size_t i = 0; i < items.size(); ++i) {
        const QuantSpec& s = items[i].options[size_t(a.choice[i])].spec;
        auto c = std::find_if(counts.begin(), counts.end(), [&](const auto& p) { return p.first == s; });
        if (c == counts.end())
            counts.push_back({s, items[i].layers.size()});
        else
            c->second += items[i].layers.size();
    }
    Recipe r;
    r.name = "allocation";
    if (counts.empty()) return r;
    const QuantSpec base = std::max_element(counts.begin(), counts.end(), [](const auto& x, const auto& y) {
                               return x.second < y.second;
                           })->first;
    for (size_t i = 0; i < items.size(); ++i) {
        const QuantSpec& s = items[i].options[size_t(a.choice[i])].spec;
        if (s == base) continue;
        for (const std::string& layer : items[i].layers) r.rules.push_back({layer, s});
    }
    r.rules.push_back({"*", base});
    return r;
}

} // namespace ql
