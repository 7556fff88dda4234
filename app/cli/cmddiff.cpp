#include "clicommon.h"

#include "quantlens/store/rundiff.h"

#include <cstdio>
#include <iostream>

namespace ql::cli {

namespace {

// A number for the table, or "-" when the side or the measure is absent.
std::string cellText(const std::optional<double>& v, const char* format)
{
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, format, *v);
    return buf;
}

std::optional<double> bitsOf(const std::optional<RunLayer>& l)
{
    return l ? std::optional<double>(l->bitsPerWeight) : std::nullopt;
}

std::optional<double> outputErrorOf(const std::optional<RunLayer>& l)
{
    return l ? l->outputRelMse : std::nullopt;
}

nlohmann::json sideJson(const std::optional<RunLayer>& l)
{
    if (!l) return nullptr;
    nlohmann::json j{{"label", runLayerLabel(*l)}, {"bits_per_weight", l->bitsPerWeight}, {"spec", l->spec}};
    if (l->weightRelError) j["weight_rel_error"] = *l->weightRelError;
    if (l->outputRelMse) j["output_rel_mse"] = *l->outputRelMse;
    return j;
}

} // namespace

int cmdDiff(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("all"), QStringLiteral("List every layer, not only those whose specs differ.")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print JSON.")});
    if (!parseArgs(p, args, 2, "quantlens-cli diff RUN_A RUN_B [--all] [--json]")) return 1;
    auto a = readRunReport(p.positionalArguments()[0].toStdString());
    if (!a) return fail(a.message());
    auto b = readRunReport(p.positionalArguments()[1].toStdString());
    if (!b) return fail(b.message());
    const RunDiff d = diffRuns(*a, *b);
    const bool all = p.isSet(QStringLiteral("all"));
    if (!d.sameModel) std::cerr << "warning: the runs were quantized from different weights (model_sha256 differs)\n";
    if (p.isSet(QStringLiteral("json"))) {
        nlohmann::json rows = nlohmann::json::array();
        for (const RunDiffRow& r : d.rows)
            if (all || !r.changed.empty())
                rows.push_back(
                    {{"layer", r.layer}, {"a", sideJson(r.a)}, {"b", sideJson(r.b)}, {"changed", r.changed}});
        printJson({{"a", {{"folder", a->folder}, {"bits_per_weight", a->bitsPerWeight}}},
                   {"b", {{"folder", b->folder}, {"bits_per_weight", b->bitsPerWeight}}},
                   {"layers", d.rows.size()},
                   {"changed_layers", d.changedLayers},
                   {"same_model", d.sameModel},
                   {"rows", rows}});
        return 0;
    }
    std::printf("%-40s %-28s %-28s %13s %23s  %s\n", "layer", "A", "B", "bits A -> B", "output error A -> B",
                "changed");
    for (const RunDiffRow& r : d.rows) {
        if (!all && r.changed.empty()) continue;
        std::string changed;
        for (const std::string& k : r.changed) changed += (changed.empty() ? "" : ",") + k;
        std::printf("%-40s %-28s %-28s %6s %6s %11s %11s  %s\n", r.layer.c_str(),
                    r.a ? runLayerLabel(*r.a).c_str() : "-", r.b ? runLayerLabel(*r.b).c_str() : "-",
                    cellText(bitsOf(r.a), "%.3f").c_str(), cellText(bitsOf(r.b), "%.3f").c_str(),
                    cellText(outputErrorOf(r.a), "%.3e").c_str(), cellText(outputErrorOf(r.b), "%.3e").c_str(),
                    changed.c_str());
    }
    std::printf("%d of %zu layers differ; bits per weight %.4f (A) and %.4f (B)\n", d.changedLayers, d.rows.size(),
                a->bitsPerWeight, b->bitsPerWeight);
    return 0;
}

} // namespace ql::cli
