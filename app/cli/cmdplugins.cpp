#include "clicommon.h"

#include "pluginregistry.h"
#include "quantlens/base/params.h"

#include <cstdio>

namespace ql::cli {

namespace {

nlohmann::json paramValueJson(const ParamValue& v)
{
    if (const bool* b = std::get_if<bool>(&v)) return *b;
    if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
    if (const double* d = std::get_if<double>(&v)) return *d;
    return std::get<std::string>(v);
}

} // namespace

int cmdPlugins(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("json"), QStringLiteral("Print JSON.")});
    if (!parseArgs(p, args, 0, "quantlens-cli plugins [--json]")) return 1;
    PluginRegistry reg;
    reg.scanDefault();
    nlohmann::json j;
    j["plugin_dirs"] = nlohmann::json::array();
    for (const QString& d : PluginRegistry::defaultDirs()) j["plugin_dirs"].push_back(d.toStdString());
    j["methods"] = nlohmann::json::array();
    auto describe = [](const std::vector<ParamSpec>& specs) {
        nlohmann::json params = nlohmann::json::array();
        for (const ParamSpec& s : specs) {
            nlohmann::json ps{{"name", s.name},
                              {"type", paramTypeName(s.type)},
                              {"default", paramValueJson(s.defaultValue)},
                              {"help", s.help}};
            if (s.min <= s.max && (s.type == ParamSpec::Type::Int || s.type == ParamSpec::Type::Double))
                ps["range"] = {s.min, s.max};
            if (!s.choices.empty()) ps["choices"] = s.choices;
            params.push_back(ps);
        }
        return params;
    };
    for (const auto& [id, m] : reg.methods())
        j["methods"].push_back({{"id", id},
                                {"kind", m.quantizer->asBlockQuantizer() ? "block quantizer" : "quantizer"},
                                {"plugin", m.plugin},
                                {"file", m.file},
                                {"description", m.quantizer->description()},
                                {"needs_hessian", m.quantizer->needsHessian()},
                                {"parameters", describe(m.quantizer->parameters())}});
    for (const auto& [id, t] : reg.transforms())
        j["methods"].push_back({{"id", id},
                                {"kind", "transform"},
                                {"plugin", t.plugin},
                                {"file", t.file},
                                {"description", t.transform->description()},
                                {"needs_statistics", t.transform->needsStatistics()},
                                {"parameters", describe(t.transform->parameters())}});
    j["problems"] = reg.problems();
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    for (const auto& m : j["methods"]) {
        std::printf("%-12s %-9s %s  [%s]\n", m["id"].get<std::string>().c_str(), m["kind"].get<std::string>().c_str(),
                    m["description"].get<std::string>().c_str(), m["file"].get<std::string>().c_str());
        for (const auto& ps : m["parameters"])
            std::printf("    %-18s %-7s default %-10s %s\n", ps["name"].get<std::string>().c_str(),
                        ps["type"].get<std::string>().c_str(), ps["default"].dump().c_str(),
                        ps["help"].get<std::string>().c_str());
    }
    for (const auto& problem : reg.problems()) std::fprintf(stderr, "warning: %s\n", problem.c_str());
    if (reg.methods().empty() && reg.transforms().empty())
        return fail("no quantization methods found in " + j["plugin_dirs"].dump());
    return 0;
}

} // namespace ql::cli
