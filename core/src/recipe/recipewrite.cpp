// Writing recipes and resolved plans as JSON, in the canonical form parseRecipe reads back.
#include "quantlens/recipe/recipe.h"

#include "recipe/recipefields.h"

#include <algorithm>
#include <cctype>

namespace ql {

using detail::Json;

namespace {

Json ruleJson(const RecipeRule& rule)
{
    Json j = Json::object();
    j["match"] = rule.match;
    j["method"] = rule.spec.method;
    detail::writeFormatSpec(j, rule.spec.weight);
    j["params"] = detail::paramsJson(rule.spec.params);
    if (!rule.spec.channels.empty()) {
        Json ch = Json::array();
        for (const ChannelOverride& c : rule.spec.channels) ch.push_back(detail::channelOverrideJson(c));
        j["channels"] = ch;
    }
    return j;
}

Json patchJson(const SpecPatch& p)
{
    Json j = Json::object();
    if (p.method) j["method"] = *p.method;
    if (p.params) j["params"] = detail::paramsJson(*p.params);
    if (p.format) j["format"] = *p.format;
    if (p.bits) j["bits"] = *p.bits;
    if (p.symmetric) j["sym"] = *p.symmetric;
    // "per_group" without a size keeps the layer's size, which only the granularity key can say.
    if (p.groupSize)
        j["group"] = *p.groupSize;
    else if (p.granularity == Granularity::PerGroup)
        j["granularity"] = "per_group";
    else if (p.granularity)
        j["group"] = detail::groupJson(*p.granularity, 0);
    if (p.channels) {
        Json ch = Json::array();
        for (const ChannelOverride& c : *p.channels) ch.push_back(detail::channelOverrideJson(c));
        j["channels"] = ch;
    }
    if (p.actBits || p.actPerToken || p.actSymmetric) {
        Json a = Json::object();
        if (p.actBits) a["bits"] = *p.actBits;
        if (p.actPerToken) a["granularity"] = *p.actPerToken ? "per_token" : "per_tensor";
        if (p.actSymmetric) a["sym"] = *p.actSymmetric;
        j["activations"] = a;
    }
    return j;
}

Json specJson(const QuantSpec& s)
{
    Json j = Json::object();
    if (s.skip) {
        j["skip"] = true;
        return j;
    }
    j["method"] = s.method;
    detail::writeFormatSpec(j, s.weight);
    j["params"] = detail::paramsJson(s.params);
    Json ch = Json::array();
    for (const ChannelOverride& c : s.channels) ch.push_back(detail::channelOverrideJson(c));
    j["channels"] = ch;
    j["activations"] = detail::activationsJson(s.activations);
    return j;
}

// Digit runs compare as numbers, so layers.2 sorts before layers.10 as in the model.
bool naturalLess(const std::string& a, const std::string& b)
{
    size_t i = 0, k = 0;
    while (i < a.size() && k < b.size()) {
        const bool da = std::isdigit(static_cast<unsigned char>(a[i])),
                   db = std::isdigit(static_cast<unsigned char>(b[k]));
        if (da && db) {
            size_t ie = i, ke = k;
            while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
            while (ke < b.size() && std::isdigit(static_cast<unsigned char>(b[ke]))) ++ke;
            size_t is = i, ks = k; // skip leading zeros, then the longer run is the larger number
            while (is + 1 < ie && a[is] == '0') ++is;
            while (ks + 1 < ke && b[ks] == '0') ++ks;
            if (ie - is != ke - ks) return ie - is < ke - ks;
            const int c = a.compare(is, ie - is, b, ks, ke - ks);
            if (c != 0) return c < 0;
            i = ie;
            k = ke;
            continue;
        }
        if (a[i] != b[k]) return a[i] < b[k];
        ++i;
        ++k;
    }
    if (a.size() - i != b.size() - k) return a.size() - i < b.size() - k;
    return a < b; // equal up to leading zeros: any fixed order will do
}

} // namespace

std::string recipeToJson(const Recipe& r)
{
    Json j = Json::object();
    j["version"] = r.version;
    j["name"] = r.name;
    j["description"] = r.description;
    Json c = Json::object();
    if (!r.calibrationFile.empty()) c["file"] = r.calibrationFile;
    c["samples"] = r.calibration.samples;
    c["seqlen"] = r.calibration.seqlen;
    c["sampling"] = samplingName(r.calibration.sampling);
    c["seed"] = r.calibration.seed;
    c["held_out"] = r.calibration.heldOut;
    j["calibration"] = c;
    j["pipeline"] = pipelineModeName(r.mode);
    Json transforms = Json::array();
    for (const TransformStep& t : r.transforms) {
        Json step = Json::object();
        step["method"] = t.method;
        step["params"] = detail::paramsJson(t.params);
        transforms.push_back(step);
    }
    j["transforms"] = transforms;
    j["activations"] = detail::activationsJson(r.activations);
    Json rules = Json::array();
    for (const RecipeRule& rule : r.rules) rules.push_back(ruleJson(rule));
    j["rules"] = rules;
    Json overrides = Json::object();
    for (const RecipeOverride& o : r.overrides) overrides[o.match] = patchJson(o.patch);
    j["overrides"] = overrides;
    j["skip"] = r.skip;
    if (!r.modelSha256.empty() || !r.calibrationSha256.empty()) {
        Json pv = Json::object();
        if (!r.modelSha256.empty()) pv["model_sha256"] = r.modelSha256;
        if (!r.calibrationSha256.empty()) pv["calibration_sha256"] = r.calibrationSha256;
        j["provenance"] = pv;
    }
    return j.dump(2) + "\n";
}

std::string resolvedToJson(const std::map<std::string, QuantSpec>& specs)
{
    std::vector<const std::string*> names;
    for (const auto& kv : specs) names.push_back(&kv.first);
    std::sort(names.begin(), names.end(),
              [](const std::string* a, const std::string* b) { return naturalLess(*a, *b); });
    Json j = Json::object();
    for (const std::string* n : names) j[*n] = specJson(specs.at(*n));
    return j.dump(2) + "\n";
}

} // namespace ql
