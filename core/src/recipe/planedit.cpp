#include "quantlens/recipe/planedit.h"

#include "quantlens/base/glob.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

namespace ql {

namespace {

// A value of an edit as JSON: integers, reals and booleans typed, anything else a string.
nlohmann::json editValue(const std::string& v)
{
    if (v == "true") return true;
    if (v == "false") return false;
    if (!v.empty()) {
        char* end = nullptr;
        const long long i = std::strtoll(v.c_str(), &end, 10);
        if (*end == '\0') return i;
        const double d = std::strtod(v.c_str(), &end);
        if (*end == '\0') return d;
    }
    return v;
}

template <class T>
void mergeField(std::optional<T>& into, const std::optional<T>& from)
{
    if (from) into = from;
}

} // namespace

Expected<RecipeOverride> parsePlanEdit(std::string_view edit)
{
    const size_t colon = edit.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == edit.size())
        return makeError("edit '" + std::string(edit) +
                         "': expected LAYER:key=value[,key=value...], e.g. model.layers.3.mlp.down_proj:bits=3");
    RecipeOverride o;
    o.match = std::string(edit.substr(0, colon));
    nlohmann::json fields = nlohmann::json::object();
    std::string_view rest = edit.substr(colon + 1);
    while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return makeError("edit '" + std::string(edit) + "': '" + std::string(item) + "' is not key=value");
        const std::string key(item.substr(0, eq));
        const nlohmann::json value = editValue(std::string(item.substr(eq + 1)));
        if (key.rfind("params.", 0) == 0 && key.size() > 7)
            fields["params"][key.substr(7)] = value; // one method parameter, merged by name
        else
            fields[key] = value;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    auto patch = parseSpecPatch(fields.dump(), "edit '" + std::string(edit) + "'");
    if (!patch) return patch.error();
    o.patch = std::move(*patch);
    return o;
}

Recipe applyPlanEdit(Recipe recipe, const RecipeOverride& edit)
{
    for (RecipeOverride& o : recipe.overrides) {
        if (o.match != edit.match) continue;
        SpecPatch& p = o.patch;
        const SpecPatch& e = edit.patch;
        if (e.method && e.method != p.method) p.params.reset(); // a new method drops the old one's params
        mergeField(p.method, e.method);
        if (e.params) {
            if (!p.params) p.params = ParamMap{};
            for (const auto& [k, v] : *e.params) (*p.params)[k] = v;
        }
        // A format and bits/symmetric exclude each other: the edit's kind replaces the other.
        if (e.format) p.bits.reset(), p.symmetric.reset();
        if (e.bits || e.symmetric) p.format.reset();
        mergeField(p.format, e.format);
        mergeField(p.bits, e.bits);
        mergeField(p.symmetric, e.symmetric);
        if (e.granularity) p.groupSize = e.groupSize; // a group size belongs to its granularity
        mergeField(p.granularity, e.granularity);
        mergeField(p.groupSize, e.groupSize);
        mergeField(p.channels, e.channels);
        mergeField(p.actBits, e.actBits);
        mergeField(p.actPerToken, e.actPerToken);
        mergeField(p.actSymmetric, e.actSymmetric);
        return recipe;
    }
    recipe.overrides.push_back(edit);
    return recipe;
}

Expected<Recipe> setLayerFloat(Recipe recipe, const std::string& layer, bool keep)
{
    auto& skip = recipe.skip;
    const auto exact = std::find(skip.begin(), skip.end(), layer);
    if (keep) {
        if (exact == skip.end()) skip.push_back(layer);
        // The overrides naming it exactly would contradict the skip entry (a float layer has no
        // format to patch); glob overrides just pass over it.
        std::erase_if(recipe.overrides, [&](const RecipeOverride& o) { return o.match == layer; });
        return recipe;
    }
    if (exact != skip.end()) skip.erase(exact);
    for (size_t i = 0; i < skip.size(); ++i)
        if (globMatch(skip[i], layer))
            return makeError(layer + " stays float: skip[" + std::to_string(i) + "] \"" + skip[i] +
                             "\" matches it; edit that entry in the rules");
    const bool ruled = std::any_of(recipe.rules.begin(), recipe.rules.end(),
                                   [&](const RecipeRule& r) { return globMatch(r.match, layer); });
    if (!ruled) return makeError(layer + " stays float: no rule matches it; add one in the rules");
    return recipe;
}

Expected<Recipe> applyPlanEditText(Recipe recipe, std::string_view edit)
{
    const size_t colon = edit.rfind(':');
    if (colon != std::string_view::npos && colon > 0) {
        const std::string_view what = edit.substr(colon + 1);
        if (what == "float=true" || what == "float=false")
            return setLayerFloat(std::move(recipe), std::string(edit.substr(0, colon)), what == "float=true");
    }
    auto o = parsePlanEdit(edit);
    if (!o) return o.error();
    return applyPlanEdit(std::move(recipe), *o);
}

std::string planSource(const Recipe& recipe, const std::string& layer)
{
    for (size_t i = 0; i < recipe.skip.size(); ++i)
        if (globMatch(recipe.skip[i], layer)) return "skip[" + std::to_string(i) + "] " + recipe.skip[i];
    std::string out = "float (no rule)";
    for (size_t i = 0; i < recipe.rules.size(); ++i)
        if (globMatch(recipe.rules[i].match, layer)) {
            out = "rules[" + std::to_string(i) + "] " + recipe.rules[i].match;
            break;
        }
    if (out.front() == 'f') return out; // overrides change quantized layers only
    for (size_t j = 0; j < recipe.overrides.size(); ++j)
        if (globMatch(recipe.overrides[j].match, layer)) out += " + overrides[" + std::to_string(j) + "]";
    return out;
}

} // namespace ql
