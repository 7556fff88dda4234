#include "quantlens/store/rundiff.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace ql {

namespace {

using RunJson = nlohmann::json;

Expected<RunJson> readJson(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path.string() + ": cannot open (not a run folder?)");
    std::stringstream text;
    text << in.rdbuf();
    try {
        return RunJson::parse(text.str());
    } catch (const std::exception& e) {
        return makeError(path.string() + ": not valid JSON: " + e.what());
    }
}

// Leaves become "a.b" keys with their JSON text (strings unquoted), so specs compare field by field.
void flatten(const RunJson& j, const std::string& prefix, std::map<std::string, std::string>& out)
{
    if (j.is_object() && !j.empty()) {
        for (auto it = j.begin(); it != j.end(); ++it)
            flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
        return;
    }
    if (j.is_object()) return; // an empty object (no params) says nothing
    out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
}

std::optional<double> number(const RunJson& j, const char* key)
{
    auto it = j.find(key);
    if (it == j.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
}

} // namespace

Expected<RunReport> readRunReport(const std::string& folder)
{
    const std::filesystem::path dir(folder);
    auto resolved = readJson(dir / "resolved.json");
    if (!resolved) return resolved.error();
    auto report = readJson(dir / "report.json");
    if (!report) return report.error();
    const std::string resolvedPath = (dir / "resolved.json").string(), reportPath = (dir / "report.json").string();
    if (!resolved->is_object()) return makeError(resolvedPath + ": expected an object of layer specs");
    auto layers = report->find("layers");
    if (!report->is_object() || layers == report->end() || !layers->is_array())
        return makeError(reportPath + ": no \"layers\" array");
    RunReport r;
    r.folder = folder;
    if (auto sha = report->find("model_sha256"); sha != report->end() && sha->is_string()) r.modelSha256 = *sha;
    r.bitsPerWeight = number(*report, "bits_per_weight").value_or(0);
    for (size_t i = 0; i < layers->size(); ++i) {
        const RunJson& l = (*layers)[i];
        auto name = l.find("layer");
        if (!l.is_object() || name == l.end() || !name->is_string())
            return makeError(reportPath + ": layers[" + std::to_string(i) + "] has no \"layer\" name");
        RunLayer layer;
        auto spec = resolved->find(name->get<std::string>());
        if (spec == resolved->end())
            return makeError(resolvedPath + ": no spec for " + name->get<std::string>() + " (which report.json lists)");
        flatten(*spec, "", layer.spec);
        if (l.value("method", std::string()) != "float") {
            auto bits = number(l, "bits_per_weight");
            if (!bits) return makeError(reportPath + ": " + name->get<std::string>() + " has no bits_per_weight");
            layer.bitsPerWeight = *bits;
            layer.weightRelError = number(l, "weight_rel_error");
            layer.outputRelMse = number(l, "output_rel_mse");
        }
        r.order.push_back(*name);
        r.layers[*name] = std::move(layer);
    }
    return r;
}

RunDiff diffRuns(const RunReport& a, const RunReport& b)
{
    RunDiff d;
    d.sameModel = a.modelSha256 == b.modelSha256;
    std::vector<std::string> order = a.order;
    for (const std::string& n : b.order)
        if (!a.layers.count(n)) order.push_back(n);
    for (const std::string& n : order) {
        RunDiffRow row;
        row.layer = n;
        if (auto it = a.layers.find(n); it != a.layers.end()) row.a = it->second;
        if (auto it = b.layers.find(n); it != b.layers.end()) row.b = it->second;
        std::set<std::string> keys;
        for (const auto* side : {&row.a, &row.b})
            if (*side)
                for (const auto& kv : (*side)->spec) keys.insert(kv.first);
        for (const std::string& k : keys) {
            auto value = [&k](const std::optional<RunLayer>& s) -> std::optional<std::string> {
                if (!s) return std::nullopt;
                auto it = s->spec.find(k);
                return it == s->spec.end() ? std::nullopt : std::optional<std::string>(it->second);
            };
            if (!row.a || !row.b || value(row.a) != value(row.b)) row.changed.push_back(k);
        }
        if (!row.changed.empty()) ++d.changedLayers;
        d.rows.push_back(std::move(row));
    }
    return d;
}

std::string runLayerLabel(const RunLayer& layer)
{
    auto get = [&layer](const char* k) {
        auto it = layer.spec.find(k);
        return it == layer.spec.end() ? std::string() : it->second;
    };
    if (get("skip") == "true" || get("method").empty()) return "float";
    const std::string group = get("group");
    const bool numeric = !group.empty() && group.find_first_not_of("0123456789") == std::string::npos;
    return get("method") + " " + get("format") + (group.empty() ? "" : " " + (numeric ? "g" + group : group));
}

} // namespace ql
