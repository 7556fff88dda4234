// Reading a recipe: JSON to Recipe, every error naming the JSON path at fault.
#include "quantlens/recipe/recipe.h"

#include "quantlens/base/glob.h"
#include "recipe/recipefields.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace ql {

using detail::childPath;
using detail::errorAt;
using detail::itemPath;
using detail::Json;
using detail::shortDump;

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

Expected<void> readCalibration(const Json& v, const std::string& path, Recipe& r)
{
    if (!v.is_object()) return errorAt(path, "expected an object, got " + shortDump(v));
    QL_TRY(detail::checkKeys(v, path, {"file", "samples", "seqlen", "sampling", "seed", "held_out"}));
    CalibrationSpec& c = r.calibration;
    if (v.contains("file")) {
        auto f = detail::readString(v["file"], childPath(path, "file"), false);
        if (!f) return f.error();
        r.calibrationFile = *f;
    }
    if (v.contains("samples")) {
        auto n = detail::readInt(v["samples"], childPath(path, "samples"), 1, kIntMax);
        if (!n) return n.error();
        c.samples = int(*n);
    }
    if (v.contains("seqlen")) {
        auto n = detail::readInt(v["seqlen"], childPath(path, "seqlen"), 2, kIntMax);
        if (!n) return n.error();
        c.seqlen = int(*n);
    }
    if (v.contains("sampling")) {
        const Json& s = v["sampling"];
        const auto parsed = s.is_string() ? parseSampling(s.get<std::string>()) : std::nullopt;
        if (!parsed)
            return errorAt(childPath(path, "sampling"), "expected \"contiguous\" or \"random\", got " + shortDump(s));
        c.sampling = *parsed;
    }
    if (v.contains("seed")) {
        auto s = detail::readUnsigned(v["seed"], childPath(path, "seed"));
        if (!s) return s.error();
        c.seed = *s;
    }
    if (v.contains("held_out")) {
        auto n = detail::readInt(v["held_out"], childPath(path, "held_out"), 0, kIntMax);
        if (!n) return n.error();
        c.heldOut = int(*n);
    }
    return {};
}

Expected<std::vector<ChannelOverride>> readChannelList(const Json& v, const std::string& path)
{
    if (!v.is_array()) return errorAt(path, "expected an array of channel overrides, got " + shortDump(v));
    std::vector<ChannelOverride> out;
    for (size_t i = 0; i < v.size(); ++i) {
        auto c = detail::readChannelOverride(v[i], itemPath(path, i));
        if (!c) return c.error();
        out.push_back(std::move(*c));
    }
    return out;
}

Expected<RecipeRule> readRule(const Json& v, const std::string& path)
{
    if (!v.is_object()) return errorAt(path, "expected an object, got " + shortDump(v));
    QL_TRY(detail::checkKeys(
        v, path, {"match", "method", "params", "format", "bits", "sym", "group", "granularity", "channels"}));
    RecipeRule rule;
    if (!v.contains("match"))
        return errorAt(childPath(path, "match"), "missing; give a glob on layer names, e.g. \"*\"");
    auto match = detail::readGlob(v["match"], childPath(path, "match"));
    if (!match) return match.error();
    rule.match = *match;
    if (!v.contains("method"))
        return errorAt(childPath(path, "method"), "missing; give a quantizer id, e.g. \"rtn\" or \"gptq\"");
    auto method = detail::readMethod(v["method"], childPath(path, "method"));
    if (!method) return method.error();
    rule.spec.method = *method;
    if (v.contains("params")) {
        auto p = detail::readParams(v["params"], childPath(path, "params"));
        if (!p) return p.error();
        rule.spec.params = std::move(*p);
    }
    auto fields = detail::readWeightFields(v, path);
    if (!fields) return fields.error();
    auto weight = detail::toFormatSpec(*fields, path, Granularity::PerGroup);
    if (!weight) return weight.error();
    rule.spec.weight = *weight;
    if (v.contains("channels")) {
        auto ch = readChannelList(v["channels"], childPath(path, "channels"));
        if (!ch) return ch.error();
        rule.spec.channels = std::move(*ch);
    }
    return rule;
}

Expected<SpecPatch> readPatch(const Json& v, const std::string& path)
{
    if (!v.is_object()) return errorAt(path, "expected an object of the fields to change, got " + shortDump(v));
    QL_TRY(detail::checkKeys(
        v, path, {"method", "params", "format", "bits", "sym", "group", "granularity", "channels", "activations"}));
    SpecPatch p;
    if (v.contains("method")) {
        auto m = detail::readMethod(v["method"], childPath(path, "method"));
        if (!m) return m.error();
        p.method = *m;
    }
    if (v.contains("params")) {
        auto params = detail::readParams(v["params"], childPath(path, "params"));
        if (!params) return params.error();
        p.params = std::move(*params);
    }
    auto f = detail::readWeightFields(v, path);
    if (!f) return f.error();
    p.format = f->format;
    p.bits = f->bits;
    p.symmetric = f->symmetric;
    p.granularity = f->granularity;
    p.groupSize = f->groupSize;
    if (v.contains("channels")) {
        auto ch = readChannelList(v["channels"], childPath(path, "channels"));
        if (!ch) return ch.error();
        p.channels = std::move(*ch);
    }
    if (v.contains("activations")) {
        auto a = detail::readActivations(v["activations"], childPath(path, "activations"));
        if (!a) return a.error();
        p.actBits = a->bits;
        p.actPerToken = a->perToken;
        p.actSymmetric = a->symmetric;
    }
    return p;
}

Expected<void> readBody(const Json& j, Recipe& r)
{
    if (!j.is_object()) return makeError("expected a JSON object at the top level, got " + shortDump(j));
    QL_TRY(detail::checkKeys(j, "",
                             {"version", "name", "description", "calibration", "pipeline", "transforms", "activations",
                              "rules", "overrides", "skip", "provenance"}));
    if (j.contains("version")) {
        auto v = detail::readInt(j["version"], "version", 1, kIntMax);
        if (!v) return v.error();
        if (*v != kRecipeVersion)
            return errorAt("version", "recipe version " + std::to_string(*v) + " is newer than this QuantLens reads (" +
                                          std::to_string(kRecipeVersion) + ")");
        r.version = int(*v);
    }
    for (const char* key : {"name", "description"}) {
        if (!j.contains(key)) continue;
        auto s = detail::readString(j[key], key);
        if (!s) return s.error();
        (std::string_view(key) == "name" ? r.name : r.description) = *s;
    }
    if (j.contains("provenance")) {
        const Json& pv = j["provenance"];
        if (!pv.is_object()) return errorAt("provenance", "expected an object, got " + shortDump(pv));
        QL_TRY(detail::checkKeys(pv, "provenance", {"model_sha256", "calibration_sha256"}));
        for (const char* key : {"model_sha256", "calibration_sha256"}) {
            if (!pv.contains(key)) continue;
            auto s = detail::readString(pv[key], std::string("provenance.") + key);
            if (!s) return s.error();
            (std::string_view(key) == "model_sha256" ? r.modelSha256 : r.calibrationSha256) = *s;
        }
    }
    if (j.contains("calibration")) QL_TRY(readCalibration(j["calibration"], "calibration", r));
    if (j.contains("pipeline")) {
        const Json& m = j["pipeline"];
        if (m == "sequential")
            r.mode = Recipe::PipelineMode::Sequential;
        else if (m == "parallel")
            r.mode = Recipe::PipelineMode::Parallel;
        else
            return errorAt("pipeline", "expected \"sequential\" or \"parallel\", got " + shortDump(m));
    }
    if (j.contains("transforms")) {
        const Json& t = j["transforms"];
        if (!t.is_array()) return errorAt("transforms", "expected an array, got " + shortDump(t));
        for (size_t i = 0; i < t.size(); ++i) {
            const std::string p = itemPath("transforms", i);
            if (!t[i].is_object()) return errorAt(p, "expected an object, got " + shortDump(t[i]));
            QL_TRY(detail::checkKeys(t[i], p, {"method", "params"}));
            TransformStep step;
            if (!t[i].contains("method"))
                return errorAt(childPath(p, "method"), "missing; give a transform id, e.g. \"hadamard\"");
            auto m = detail::readMethod(t[i]["method"], childPath(p, "method"));
            if (!m) return m.error();
            step.method = *m;
            if (t[i].contains("params")) {
                auto params = detail::readParams(t[i]["params"], childPath(p, "params"));
                if (!params) return params.error();
                step.params = std::move(*params);
            }
            r.transforms.push_back(std::move(step));
        }
    }
    if (j.contains("activations")) {
        auto a = detail::readActivations(j["activations"], "activations");
        if (!a) return a.error();
        r.activations.bits = a->bits.value_or(r.activations.bits);
        r.activations.perToken = a->perToken.value_or(r.activations.perToken);
        r.activations.symmetric = a->symmetric.value_or(r.activations.symmetric);
    }
    // Required even when empty: a recipe without the key is more likely a mistake than a plan.
    if (!j.contains("rules"))
        return errorAt("rules", "missing; give an array of rules ([] keeps every layer in float)");
    const Json& rules = j["rules"];
    if (!rules.is_array()) return errorAt("rules", "expected an array, got " + shortDump(rules));
    for (size_t i = 0; i < rules.size(); ++i) {
        auto rule = readRule(rules[i], itemPath("rules", i));
        if (!rule) return rule.error();
        r.rules.push_back(std::move(*rule));
    }
    if (j.contains("overrides")) {
        const Json& o = j["overrides"];
        if (!o.is_object())
            return errorAt("overrides",
                           "expected an object mapping layer names or globs to changes, got " + shortDump(o));
        for (auto it = o.begin(); it != o.end(); ++it) {
            const std::string p = childPath("overrides", it.key());
            if (auto ok = checkGlob(it.key()); !ok) return errorAt(p, ok.message());
            auto patch = readPatch(it.value(), p);
            if (!patch) return patch.error();
            r.overrides.push_back({it.key(), std::move(*patch)});
        }
    }
    if (j.contains("skip")) {
        const Json& s = j["skip"];
        if (!s.is_array()) return errorAt("skip", "expected an array of layer names or globs, got " + shortDump(s));
        for (size_t i = 0; i < s.size(); ++i) {
            auto g = detail::readGlob(s[i], itemPath("skip", i));
            if (!g) return g.error();
            r.skip.push_back(*g);
        }
    }
    return {};
}

} // namespace

const char* pipelineModeName(Recipe::PipelineMode mode)
{
    return mode == Recipe::PipelineMode::Parallel ? "parallel" : "sequential";
}

bool Recipe::operator==(const Recipe& o) const
{
    // CalibrationSpec has no operator==, so its fields are compared here.
    const CalibrationSpec &a = calibration, &b = o.calibration;
    const bool sameCalibration = a.samples == b.samples && a.seqlen == b.seqlen && a.sampling == b.sampling &&
                                 a.seed == b.seed && a.heldOut == b.heldOut;
    return version == o.version && name == o.name && description == o.description && sameCalibration &&
           calibrationFile == o.calibrationFile && mode == o.mode && transforms == o.transforms && rules == o.rules &&
           overrides == o.overrides && skip == o.skip && activations == o.activations && modelSha256 == o.modelSha256 &&
           calibrationSha256 == o.calibrationSha256;
}

Expected<SpecPatch> parseSpecPatch(std::string_view json, const std::string& path)
{
    auto doc = detail::parseStrictJson(json);
    if (!doc) return doc.error();
    return readPatch(*doc, path);
}

Expected<Recipe> parseRecipe(std::string_view json)
{
    auto doc = detail::parseStrictJson(json);
    if (!doc) return doc.error();
    Recipe r;
    QL_TRY(readBody(*doc, r));
    return r;
}

Expected<Recipe> loadRecipe(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open the recipe file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return makeError(path + ": cannot read the recipe file");
    auto r = parseRecipe(text.str());
    if (!r) return makeError(path + ": " + r.message());
    r->source = path;
    // A calibration file is written relative to the recipe, so a recipe folder can be moved whole.
    namespace fs = std::filesystem;
    if (!r->calibrationFile.empty() && fs::path(r->calibrationFile).is_relative()) {
        std::error_code ec;
        const fs::path dir = fs::absolute(fs::path(path), ec).parent_path();
        if (!ec) r->calibrationFile = (dir / r->calibrationFile).lexically_normal().string();
    }
    return r;
}

} // namespace ql
