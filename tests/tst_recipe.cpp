// Recipes: JSON schema errors with their paths, canonical round trip, resolution to per-layer
// specs (first match wins, skip, overrides), channel selectors against a naive sort, globs,
// and the example recipes shipped in resources/recipes.
#include "quantlens/analysis/analysis.h"
#include "quantlens/base/glob.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/planedit.h"
#include "quantlens/recipe/plansize.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/quant/quantizer.h"
#include "quantlens/quant/formats.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <set>

namespace {

// A LLaMA-shaped layer list: hidden 64, ffn 172 (down_proj takes 172 inputs).
std::vector<ql::LinearLayer> fixtureLayers(int blocks = 2)
{
    std::vector<ql::LinearLayer> out;
    for (int b = 0; b < blocks; ++b)
        for (int k = 0; k <= int(ql::LinearKind::Down); ++k) {
            ql::LinearLayer l;
            l.kind = ql::LinearKind(k);
            l.name = ql::Model::linearName(b, l.kind);
            l.block = b;
            l.inFeatures = l.kind == ql::LinearKind::Down ? 172 : 64;
            l.outFeatures = l.kind == ql::LinearKind::Gate || l.kind == ql::LinearKind::Up ? 172 : 64;
            out.push_back(l);
        }
    return out;
}

std::string layerName(int block, ql::LinearKind k)
{
    return ql::Model::linearName(block, k);
}

// JSON written with single quotes, so the test data needs neither escapes nor raw strings
// (which moc cannot read).
std::string J(std::string s)
{
    std::replace(s.begin(), s.end(), '\'', '"');
    return s;
}

// A recipe with one rule body and optional extra top-level members.
std::string withRule(const std::string& rule, const std::string& extra = {})
{
    return J("{'rules': [") + rule + "]" + (extra.empty() ? "" : ", " + extra) + "}";
}

const std::string kFull = J(
    "{\n"
    "  'version': 1, 'name': 'full', 'description': 'every key \\u00e9',\n"
    "  'calibration': {'file': '/data/c4.jsonl', 'samples': 64, 'seqlen': 256, 'sampling': 'random',\n"
    "                  'seed': 18446744073709551615, 'held_out': 4},\n"
    "  'pipeline': 'parallel',\n"
    "  'transforms': [{'method': 'hadamard', 'params': {'seed': 7, 'online_down': true}},\n"
    "                 {'method': 'smoothquant', 'params': {'alpha': 0.5}}],\n"
    "  'activations': {'bits': 8, 'granularity': 'per_tensor', 'sym': false},\n"
    "  'rules': [\n"
    "    {'match': '*.down_proj', 'method': 'gptq', 'bits': 3, 'sym': true, 'group': -1,\n"
    "     'params': {'damp': 0.01, 'block_size': 128, 'act_order': true, 'note': 'x', 'big': -9007199254740993},\n"
    "     'channels': [{'select': 'top_absmax_percent', 'value': 1, 'bits': 8},\n"
    "                  {'channels': [5, 1, 3], 'format': 'fp8_e4m3', 'group': 32}]},\n"
    "    {'match': 'model.layers.[01].self_attn.?_proj', 'method': 'rtn', 'format': 'nf4', 'group': 'per_tensor'},\n"
    "    {'match': '*', 'method': 'awq', 'bits': 4, 'granularity': 'per_group', 'params': {'alpha_grid': 20}}\n"
    "  ],\n"
    "  'overrides': {\n"
    "    'model.layers.0.*': {'bits': 8, 'activations': {'bits': 0}},\n"
    "    'model.layers.1.mlp.up_proj': {'method': 'rtn', 'params': {'mse_clip': true}, 'granularity': 'per_group',\n"
    "                                   'channels': [], 'activations': {'granularity': 'per_token'}},\n"
    "    '*.gate_proj': {'sym': true, 'group': 64},\n"
    "    '*.o_proj': {'format': 'int2_asym', 'group': 'per_channel', 'activations': {'sym': true}}\n"
    "  },\n"
    "  'skip': ['*.k_proj', 'model.layers.1.self_attn.v_proj']\n"
    "}");

} // namespace

class TestRecipe : public QObject {
    Q_OBJECT

private slots:
    void glob_data()
    {
        QTest::addColumn<QString>("pattern");
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("match");
        const auto row = [](const char* p, const char* t, bool m) {
            QTest::addRow("%s | %s", p, t) << QString::fromUtf8(p) << QString::fromUtf8(t) << m;
        };
        row("*", "model.layers.0.mlp.down_proj", true);
        row("*", "", true);
        row("", "", true);
        row("", "a", false);
        row("*.down_proj", "model.layers.3.mlp.down_proj", true);
        row("*.down_proj", "model.layers.3.mlp.up_proj", false);
        row("*down_proj", "model.layers.3.mlp.down_proj", true);
        row("model.layers.?.mlp.*", "model.layers.3.mlp.gate_proj", true);
        row("model.layers.?.mlp.*", "model.layers.10.mlp.gate_proj", false);
        row("model.layers.*.mlp.*", "model.layers.10.mlp.gate_proj", true);
        row("model.layers.[0-2].*", "model.layers.1.self_attn.q_proj", true);
        row("model.layers.[0-2].*", "model.layers.3.self_attn.q_proj", false);
        row("model.layers.[!0].*", "model.layers.0.self_attn.q_proj", false);
        row("model.layers.[!0].*", "model.layers.5.self_attn.q_proj", true);
        row("model.layers.[^0].*", "model.layers.5.self_attn.q_proj", true);
        row("*.self_attn.[qkv]_proj", "model.layers.0.self_attn.k_proj", true);
        row("*.self_attn.[qkv]_proj", "model.layers.0.self_attn.o_proj", false);
        row("a?c", "ac", false);
        row("a?c", "abc", true);
        row("a*", "a", true);
        row("**.x", "a.x", true);
        row("*a*b*c", "xaybzc", true);
        row("*a*b*c", "xaybz", false);
        row("*a*b", "abab", true);
        row("[]]", "]", true);
        row("[*]", "*", true);
        row("[*]", "a", false);
        row("Q", "q", false);
        row("model.layers.1.mlp.down_proj", "model.layers.1.mlp.down_proj", true);
        row("model.layers.1.mlp.down_proj", "model.layers.11.mlp.down_proj", false);
        row("a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false);
    }
    void glob()
    {
        QFETCH(QString, pattern);
        QFETCH(QString, text);
        QFETCH(bool, match);
        QCOMPARE(ql::globMatch(pattern.toStdString(), text.toStdString()), match);
        QVERIFY(ql::checkGlob(pattern.isEmpty() ? "x" : pattern.toStdString()).ok());
    }

    void globSyntax()
    {
        for (const char* bad : {"", "[abc", "a[", "[]", "[!]", "x.[0-"}) QVERIFY2(!ql::checkGlob(bad).ok(), bad);
        QVERIFY(ql::checkGlob("[abc").message().find("unclosed '['") != std::string::npos);
        QVERIFY(ql::isGlobPattern("*.q_proj") && ql::isGlobPattern("a?") && ql::isGlobPattern("[a]"));
        QVERIFY(!ql::isGlobPattern("model.layers.0.mlp.down_proj"));
    }

    void parseErrors_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("path");   // the message starts with "path: " (empty: no path)
        QTest::addColumn<QString>("detail"); // and contains this
        const auto row = [](const char* name, const std::string& json, const char* path, const char* detail) {
            QTest::newRow(name) << QString::fromStdString(json) << QString::fromUtf8(path) << QString::fromUtf8(detail);
        };
        const std::string r = J("{'match': '*', 'method': 'rtn', 'bits': 4");
        row("syntax", "{\"rules\": [}", "", "invalid JSON: parse error at line 1");
        row("not object", "[]", "", "expected a JSON object at the top level, got []");
        row("unknown top key", J("{'rules': [], 'rulez': []}"), "rulez",
            "unknown key (did you mean \"rules\"?); expected one of: version");
        row("missing rules", "{}", "rules", "missing");
        row("rules not array", J("{'rules': {}}"), "rules", "expected an array, got {}");
        row("rule not object", J("{'rules': [3]}"), "rules[0]", "expected an object, got 3");
        row("match missing", withRule(J("{'method': 'rtn', 'bits': 4}")), "rules[0].match", "missing");
        row("match empty", withRule(J("{'match': '', 'method': 'rtn', 'bits': 4}")), "rules[0].match",
            "expected a non-empty string");
        row("match type", withRule(J("{'match': 1, 'method': 'rtn', 'bits': 4}")), "rules[0].match",
            "expected a string, got 1");
        row("match glob", withRule(J("{'match': 'x[ab', 'method': 'rtn', 'bits': 4}")), "rules[0].match",
            "unclosed '['");
        row("method missing", withRule(J("{'match': '*', 'bits': 4}")), "rules[0].method", "missing");
        row("method id", withRule(J("{'match': '*', 'method': 'GPTQ', 'bits': 4}")), "rules[0].method",
            "expected a method id");
        row("bits range", withRule(J("{'match': '*', 'method': 'rtn', 'bits': 9}")), "rules[0].bits",
            "expected an integer in 2..8, got 9");
        row("bits float", withRule(J("{'match': '*', 'method': 'rtn', 'bits': 4.0}")), "rules[0].bits", "got 4.0");
        row("unknown format", withRule(J("{'match': '*', 'method': 'rtn', 'format': 'int4'}")), "rules[0].format",
            "unknown weight format 'int4'; expected one of: int2_sym, int3_sym");
        row("format and bits", withRule(J("{'match': '*', 'method': 'rtn', 'format': 'nf4', 'bits': 4}")),
            "rules[0].bits", "give either \"format\" or \"bits\"/\"sym\", not both");
        row("format and sym", withRule(J("{'match': '*', 'method': 'rtn', 'format': 'nf4', 'sym': true}")),
            "rules[0].sym", "not both");
        row("sym alone", withRule(J("{'match': '*', 'method': 'rtn', 'sym': true}")), "rules[0].sym",
            "\"sym\" needs \"bits\"");
        row("sym type", withRule(r + J(", 'sym': 'yes'}")), "rules[0].sym", "expected true or false, got \"yes\"");
        row("no format", withRule(J("{'match': '*', 'method': 'rtn'}")), "rules[0]", "no weight format");
        row("group negative", withRule(r + J(", 'group': -2}")), "rules[0].group",
            "expected a group size (a positive integer), 0 or -1");
        row("group text", withRule(r + J(", 'group': 'per_row'}")), "rules[0].group", "got \"per_row\"");
        row("granularity", withRule(r + J(", 'granularity': 'per_row'}")), "rules[0].granularity",
            "expected \"per_group\"");
        row("granularity conflict", withRule(r + J(", 'group': 128, 'granularity': 'per_tensor'}")),
            "rules[0].granularity", "\"per_tensor\" contradicts \"group\": 128");
        row("params type", withRule(r + J(", 'params': [1]}")), "rules[0].params",
            "expected an object of parameter values");
        row("param array", withRule(r + J(", 'params': {'damp': [1, 2]}}")), "rules[0].params.damp",
            "expected a flag, number or string, got [1,2]");
        row("param object", withRule(r + J(", 'params': {'x': {}}}")), "rules[0].params.x", "got {}");
        row("param null", withRule(r + J(", 'params': {'x': null}}")), "rules[0].params.x", "got null");
        row("param huge", withRule(r + J(", 'params': {'x': 18446744073709551615}}")), "rules[0].params.x",
            "integer out of range");
        row("param odd name", withRule(r + J(", 'params': {'a b': null}}")), "rules[0].params[\"a b\"]", "got null");
        row("rule typo", withRule(r + J(", 'bitz': 4}")), "rules[0].bitz", "unknown key (did you mean \"bits\"?)");
        row("rule activations", withRule(r + J(", 'activations': {}}")), "rules[0].activations",
            "unknown key; expected one of: match");
        row("channels type", withRule(r + J(", 'channels': {}}")), "rules[0].channels",
            "expected an array of channel overrides");
        row("channel both",
            withRule(r + J(", 'channels': [{'channels': [1], 'select': 'top_absmax_percent', 'bits': 8}]}")),
            "rules[0].channels[0]", "give either \"channels\"");
        row("channel neither", withRule(r + J(", 'channels': [{'bits': 8}]}")), "rules[0].channels[0]", "give either");
        row("channel empty", withRule(r + J(", 'channels': [{'channels': [], 'bits': 8}]}")),
            "rules[0].channels[0].channels", "expected a non-empty array");
        row("channel negative", withRule(r + J(", 'channels': [{'channels': [1, -1], 'bits': 8}]}")),
            "rules[0].channels[0].channels[1]", "expected an integer >= 0, got -1");
        row("channel twice", withRule(r + J(", 'channels': [{'channels': [4, 2, 4], 'bits': 8}]}")),
            "rules[0].channels[0].channels[2]", "channel 4 listed twice");
        row("channel value", withRule(r + J(", 'channels': [{'channels': [4], 'value': 1, 'bits': 8}]}")),
            "rules[0].channels[0].value", "goes with \"select\"");
        row("selector", withRule(r + J(", 'channels': [{'select': 'top_k', 'value': 1, 'bits': 8}]}")),
            "rules[0].channels[0].select", "unknown selector \"top_k\"; expected one of: top_absmax_percent");
        row("selector value missing", withRule(r + J(", 'channels': [{'select': 'top_absmax_percent', 'bits': 8}]}")),
            "rules[0].channels[0].value", "missing");
        row("selector value 0",
            withRule(r + J(", 'channels': [{'select': 'top_absmax_percent', 'value': 0, 'bits': 8}]}")),
            "rules[0].channels[0].value", "expected a percentage in (0, 100], got 0");
        row("selector value 101",
            withRule(r + J(", 'channels': [{'select': 'top_absmax_percent', 'value': 101, 'bits': 8}]}")),
            "rules[0].channels[0].value", "got 101");
        row("selector value text",
            withRule(r + J(", 'channels': [{'select': 'top_absmax_percent', 'value': '1', 'bits': 8}]}")),
            "rules[0].channels[0].value", "got \"1\"");
        row("channel format", withRule(r + J(", 'channels': [{'channels': [1]}]}")), "rules[0].channels[0]",
            "no weight format");
        row("channel typo", withRule(r + J(", 'channels': [{'channel': [1]}]}")), "rules[0].channels[0].channel",
            "did you mean \"channels\"?");
        row("act bits 1", withRule(r + "}", J("'activations': {'bits': 1}")), "activations.bits",
            "expected 0 (no activation");
        row("act bits 32", withRule(r + "}", J("'activations': {'bits': 32}")), "activations.bits", "got 32");
        row("act granularity", withRule(r + "}", J("'activations': {'granularity': 'per_channel'}")),
            "activations.granularity", "expected \"per_token\" or \"per_tensor\", got \"per_channel\"");
        row("act key", withRule(r + "}", J("'activations': {'group': 1}")), "activations.group", "unknown key");
        row("act type", withRule(r + "}", J("'activations': 8")), "activations", "expected an object, got 8");
        row("calib samples", withRule(r + "}", J("'calibration': {'samples': 0}")), "calibration.samples",
            "expected an integer >= 1, got 0");
        row("calib seqlen", withRule(r + "}", J("'calibration': {'seqlen': 1}")), "calibration.seqlen", ">= 2, got 1");
        row("calib sampling", withRule(r + "}", J("'calibration': {'sampling': 'shuffle'}")), "calibration.sampling",
            "expected \"contiguous\" or \"random\"");
        row("calib seed", withRule(r + "}", J("'calibration': {'seed': -1}")), "calibration.seed",
            "expected an integer >= 0, got -1");
        row("calib held out", withRule(r + "}", J("'calibration': {'held_out': -1}")), "calibration.held_out",
            "got -1");
        row("calib file", withRule(r + "}", J("'calibration': {'file': ''}")), "calibration.file", "non-empty");
        row("calib typo", withRule(r + "}", J("'calibration': {'sample': 8}")), "calibration.sample",
            "did you mean \"samples\"?");
        row("pipeline", withRule(r + "}", J("'pipeline': 'fast'")), "pipeline",
            "expected \"sequential\" or \"parallel\", got \"fast\"");
        row("transforms type", withRule(r + "}", J("'transforms': {}")), "transforms", "expected an array");
        row("transform method", withRule(r + "}", J("'transforms': [{'params': {}}]")), "transforms[0].method",
            "missing");
        row("transform param", withRule(r + "}", J("'transforms': [{'method': 'hadamard', 'params': {'seed': [1]}}]")),
            "transforms[0].params.seed", "got [1]");
        row("transform typo", withRule(r + "}", J("'transforms': [{'method': 'hadamard', 'param': {}}]")),
            "transforms[0].param", "did you mean \"params\"?");
        row("overrides type", withRule(r + "}", J("'overrides': []")), "overrides",
            "expected an object mapping layer names");
        row("override bits", withRule(r + "}", J("'overrides': {'model.layers.0.mlp.down_proj': {'bits': '8'}}")),
            "overrides[\"model.layers.0.mlp.down_proj\"].bits", "expected an integer in 2..8, got \"8\"");
        row("override glob", withRule(r + "}", J("'overrides': {'[x': {'bits': 8}}")), "overrides[\"[x\"]",
            "unclosed '['");
        row("override key", withRule(r + "}", J("'overrides': {'*': {'match': '*'}}")), "overrides[\"*\"].match",
            "unknown key");
        row("override act", withRule(r + "}", J("'overrides': {'*': {'activations': {'sym': 'no'}}}")),
            "overrides[\"*\"].activations.sym", "expected true or false");
        row("override type", withRule(r + "}", J("'overrides': {'*': 8}")), "overrides[\"*\"]",
            "expected an object of the fields");
        row("skip type", withRule(r + "}", J("'skip': '*.down_proj'")), "skip", "expected an array");
        row("skip item", withRule(r + "}", J("'skip': ['*.q_proj', 3]")), "skip[1]", "expected a string, got 3");
        row("version new", withRule(r + "}", J("'version': 2")), "version",
            "recipe version 2 is newer than this QuantLens reads (1)");
        row("version type", withRule(r + "}", J("'version': '1'")), "version", "expected an integer >= 1, got \"1\"");
        row("name type", withRule(r + "}", J("'name': 5")), "name", "expected a string, got 5");
        row("duplicate top", J("{'name': 'a', 'rules': [], 'name': 'b'}"), "name", "duplicate key");
        row("duplicate rule key", withRule(r + J(", 'bits': 3}")), "rules[0].bits", "duplicate key");
        row("duplicate override", withRule(r + "}", J("'overrides': {'a.b': {}, 'a.b': {}}")), "overrides[\"a.b\"]",
            "duplicate key");
        row("duplicate nested",
            withRule(r + "}", J("'transforms': [{'method': 'a'}, {'method': 'b', 'params': {'x': 1, 'x': 2}}]")),
            "transforms[1].params.x", "duplicate key");
    }
    void parseErrors()
    {
        QFETCH(QString, json);
        QFETCH(QString, path);
        QFETCH(QString, detail);
        auto r = ql::parseRecipe(json.toStdString());
        QVERIFY2(!r.ok(), qPrintable(json));
        const std::string msg = r.message();
        if (!path.isEmpty()) QVERIFY2(msg.starts_with(path.toStdString() + ": "), msg.c_str());
        QVERIFY2(msg.find(detail.toStdString()) != std::string::npos, msg.c_str());
    }

    void errorExample()
    {
        const std::string json = J(
            "{'rules': [{'match': '*.q_proj', 'method': 'rtn', 'bits': 8},\n"
            "            {'match': '*.k_proj', 'method': 'rtn', 'format': 'nf4'}, {'match': '*', 'method': 'gptq', 'bits': 'four'}]}");
        QCOMPARE(ql::parseRecipe(json).message(),
                 std::string("rules[2].bits: expected an integer in 2..8, got \"four\""));
    }

    void parsedValues()
    {
        auto r = ql::parseRecipe(kFull);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->name, std::string("full"));
        QCOMPARE(r->description, std::string("every key \xc3\xa9"));
        QCOMPARE(r->calibrationFile, std::string("/data/c4.jsonl"));
        QCOMPARE(r->calibration.samples, 64);
        QCOMPARE(r->calibration.sampling, ql::Sampling::Random);
        QCOMPARE(r->calibration.seed, UINT64_MAX);
        QCOMPARE(r->calibration.heldOut, 4);
        QCOMPARE(r->mode, ql::Recipe::PipelineMode::Parallel);
        QCOMPARE(r->transforms.size(), size_t(2));
        QCOMPARE(std::get<int64_t>(r->transforms[0].params.at("seed")), int64_t(7));
        QCOMPARE(std::get<bool>(r->transforms[0].params.at("online_down")), true);
        QCOMPARE(r->activations, (ql::ActQuantSpec{8, false, false}));
        const ql::QuantSpec& down = r->rules[0].spec;
        QCOMPARE(down.weight, (ql::FormatSpec{"int3_sym", ql::Granularity::PerChannel, 0}));
        QCOMPARE(std::get<double>(down.params.at("damp")), 0.01);
        QCOMPARE(std::get<int64_t>(down.params.at("big")), int64_t(-9007199254740993));
        QCOMPARE(std::get<std::string>(down.params.at("note")), std::string("x"));
        QCOMPARE(down.channels.size(), size_t(2));
        QCOMPARE(down.channels[0].selector, std::string("top_absmax_percent"));
        QCOMPARE(down.channels[0].selectorValue, 1.0);
        QCOMPARE(down.channels[0].weight, (ql::FormatSpec{"int8_asym", ql::Granularity::PerChannel, 0}));
        QCOMPARE(down.channels[1].channels, (std::vector<int32_t>{5, 1, 3}));
        QCOMPARE(down.channels[1].weight, (ql::FormatSpec{"fp8_e4m3", ql::Granularity::PerGroup, 32}));
        QCOMPARE(r->rules[1].spec.weight, (ql::FormatSpec{"nf4", ql::Granularity::PerTensor, 0}));
        QCOMPARE(r->rules[2].spec.weight, (ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 128}));
        QCOMPARE(r->overrides.size(), size_t(4));
        QCOMPARE(r->overrides[0].match, std::string("model.layers.0.*")); // document order, not sorted
        QCOMPARE(r->overrides[3].patch.granularity, std::optional(ql::Granularity::PerChannel));
        QCOMPARE(r->skip, (std::vector<std::string>{"*.k_proj", "model.layers.1.self_attn.v_proj"}));
        // Defaults of an almost empty recipe.
        auto d = ql::parseRecipe(J("{'rules': []}"));
        QVERIFY(d.ok());
        QCOMPARE(d->version, 1);
        QCOMPARE(d->mode, ql::Recipe::PipelineMode::Sequential);
        QCOMPARE(d->calibration.samples, ql::CalibrationSpec{}.samples);
        QCOMPARE(d->activations, ql::ActQuantSpec{});
        auto g0 = ql::parseRecipe(withRule(J("{'match': '*', 'method': 'rtn', 'bits': 4, 'group': 0}")));
        QCOMPARE(g0->rules[0].spec.weight, (ql::FormatSpec{"int4_asym", ql::Granularity::PerChannel, 0}));
    }

    void roundTrip_data()
    {
        QTest::addColumn<QString>("json");
        QTest::newRow("full") << QString::fromStdString(kFull);
        QTest::newRow("minimal") << QString::fromStdString(J("{'rules': []}"));
        QTest::newRow("one rule") << QString::fromStdString(
            withRule(J("{'match': '*', 'method': 'rtn', 'bits': 2, 'group': 7}")));
    }
    void roundTrip()
    {
        QFETCH(QString, json);
        auto a = ql::parseRecipe(json.toStdString());
        QVERIFY2(a.ok(), a.message().c_str());
        const std::string text = ql::recipeToJson(*a);
        auto b = ql::parseRecipe(text);
        QVERIFY2(b.ok(), (b.message() + "\n" + text).c_str());
        QVERIFY2(*b == *a, text.c_str());
        QCOMPARE(ql::recipeToJson(*b), text);
    }

    void roundTripBuilt()
    {
        // A recipe built in code (as the plan editor will) survives the file form too.
        ql::Recipe r;
        r.name = "built";
        r.calibration.seqlen = 2048;
        r.rules.push_back({"*", {}});
        r.rules[0].spec.params["damp"] = 0.5;
        r.rules[0].spec.params["flag"] = false;
        ql::SpecPatch p;
        p.granularity = ql::Granularity::PerGroup; // "per_group" without a size
        p.actBits = 4;
        r.overrides.push_back({"*.q_proj", p});
        auto back = ql::parseRecipe(ql::recipeToJson(r));
        QVERIFY2(back.ok(), back.message().c_str());
        QVERIFY(*back == r);
        ql::Recipe other = r;
        other.calibration.seed = 1;
        QVERIFY(!(other == r));
    }

    void firstMatchWins()
    {
        const std::string down = J("{'match': '*.down_proj', 'method': 'gptq', 'bits': 3, 'params': {'damp': 0.01}}");
        const std::string all = J("{'match': '*', 'method': 'rtn', 'bits': 4, 'group': 64}");
        const auto layers = fixtureLayers();
        auto specs = ql::resolveRecipe(ql::parseRecipe(withRule(down + "," + all)).value(), layers);
        QVERIFY2(specs.ok(), specs.message().c_str());
        QCOMPARE(specs->size(), layers.size());
        for (const ql::LinearLayer& l : layers) {
            const ql::QuantSpec& s = specs->at(l.name);
            QVERIFY(!s.skip);
            if (l.kind == ql::LinearKind::Down) {
                QCOMPARE(s.method, std::string("gptq"));
                QCOMPARE(s.weight, (ql::FormatSpec{"int3_asym", ql::Granularity::PerGroup, 128}));
                QCOMPARE(s.params.size(), size_t(1));
            } else {
                QCOMPARE(s.method, std::string("rtn"));
                QCOMPARE(s.weight, (ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 64}));
            }
        }
        // The catch-all first: it shadows the down_proj rule.
        auto shadowed = ql::resolveRecipe(ql::parseRecipe(withRule(all + "," + down)).value(), layers);
        for (const auto& [name, s] : *shadowed) QCOMPARE(s.method, std::string("rtn"));
    }

    void unmatchedAndSkip()
    {
        const auto layers = fixtureLayers();
        auto r = ql::parseRecipe(withRule(J("{'match': '*.self_attn.*', 'method': 'rtn', 'bits': 4}"),
                                          J("'skip': ['model.layers.0.*', 'model.layers.1.self_attn.v_proj'],\n"
                                            "                                             'activations': {'bits': 8}")))
                     .value();
        auto specs = ql::resolveRecipe(r, layers);
        QVERIFY2(specs.ok(), specs.message().c_str());
        ql::QuantSpec floatSpec;
        floatSpec.skip = true;
        for (const ql::LinearLayer& l : layers) {
            const ql::QuantSpec& s = specs->at(l.name);
            const bool quantized = l.block == 1 && l.kind <= ql::LinearKind::O && l.kind != ql::LinearKind::V;
            QVERIFY2(s.skip == !quantized, l.name.c_str());
            if (!quantized)
                QCOMPARE(s, floatSpec); // float layers keep float activations too
            else
                QCOMPARE(s.activations.bits, 8);
        }
        r.skip = {"lm_head"};
        QCOMPARE(
            ql::resolveRecipe(r, layers).message(),
            std::string(
                "skip[0]: no linear layer named \"lm_head\" in this model (lm_head and embeddings are never quantized)"));
        auto twice = layers;
        twice.push_back(layers[0]);
        QVERIFY(ql::resolveRecipe(r, twice).message().find("appears twice") != std::string::npos);
    }

    void overrides()
    {
        auto r = ql::parseRecipe(kFull);
        QVERIFY2(r.ok(), r.message().c_str());
        auto specs = ql::resolveRecipe(*r, fixtureLayers());
        QVERIFY2(specs.ok(), specs.message().c_str());
        const auto at = [&](int b, ql::LinearKind k) { return specs->at(layerName(b, k)); };
        // Skipped layers stay float whatever the overrides say.
        QVERIFY(at(0, ql::LinearKind::K).skip && at(1, ql::LinearKind::K).skip && at(1, ql::LinearKind::V).skip);
        // bits 8 on the down rule's int3_sym keeps the symmetry; the whole-rule channel list stays.
        const ql::QuantSpec d0 = at(0, ql::LinearKind::Down);
        QCOMPARE(d0.weight, (ql::FormatSpec{"int8_sym", ql::Granularity::PerChannel, 0}));
        QCOMPARE(d0.channels.size(), size_t(2));
        QCOMPARE(d0.activations, (ql::ActQuantSpec{0, false, false}));
        QCOMPARE(at(1, ql::LinearKind::Down).weight.format, std::string("int3_sym"));
        QCOMPARE(at(1, ql::LinearKind::Down).activations, (ql::ActQuantSpec{8, false, false}));
        // bits 8 on nf4 (not an integer format) gives asymmetric integers.
        QCOMPARE(at(0, ql::LinearKind::Q).weight, (ql::FormatSpec{"int8_asym", ql::Granularity::PerTensor, 0}));
        QCOMPARE(at(1, ql::LinearKind::Q).weight, (ql::FormatSpec{"nf4", ql::Granularity::PerTensor, 0}));
        // Later overrides win: layers.0.* then *.gate_proj (sym, group 64) on layer 0's gate.
        QCOMPARE(at(0, ql::LinearKind::Gate).weight, (ql::FormatSpec{"int8_sym", ql::Granularity::PerGroup, 64}));
        QCOMPARE(at(1, ql::LinearKind::Gate).weight, (ql::FormatSpec{"int4_sym", ql::Granularity::PerGroup, 64}));
        QCOMPARE(at(1, ql::LinearKind::Gate).method, std::string("awq"));
        // A new method drops the rule's params; per_group on a per-group spec keeps its size; [] clears channels.
        const ql::QuantSpec up1 = at(1, ql::LinearKind::Up);
        QCOMPARE(up1.method, std::string("rtn"));
        QCOMPARE(up1.params, (ql::ParamMap{{"mse_clip", true}}));
        QCOMPARE(up1.weight, (ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 128}));
        QVERIFY(up1.channels.empty());
        QCOMPARE(up1.activations, (ql::ActQuantSpec{8, true, false}));
        QCOMPARE(at(0, ql::LinearKind::Up).params.size(), size_t(1)); // awq's alpha_grid
        // format + group on o_proj; activation field patch.
        QCOMPARE(at(1, ql::LinearKind::O).weight, (ql::FormatSpec{"int2_asym", ql::Granularity::PerChannel, 0}));
        QCOMPARE(at(1, ql::LinearKind::O).activations, (ql::ActQuantSpec{8, false, true}));
        QCOMPARE(at(0, ql::LinearKind::O).activations, (ql::ActQuantSpec{0, false, true}));
    }

    void overrideMerging()
    {
        const auto layers = fixtureLayers();
        const std::string rule = J(
            "{'match': '*', 'method': 'gptq', 'bits': 4, 'group': 'per_channel', 'params': {'damp': 0.01, 'act_order': false}}");
        auto r =
            ql::parseRecipe(
                withRule(
                    rule,
                    J("'overrides': {'*.q_proj': {'params': {'act_order': true}, 'granularity': 'per_group'},\n"
                      "                                                       'model.layers.1.self_attn.q_proj': {'params': {'damp': 0.1}}}")))
                .value();
        auto specs = ql::resolveRecipe(r, layers);
        QVERIFY2(specs.ok(), specs.message().c_str());
        const ql::QuantSpec q1 = specs->at(layerName(1, ql::LinearKind::Q));
        QCOMPARE(q1.params, (ql::ParamMap{{"damp", 0.1}, {"act_order", true}}));
        QCOMPARE(q1.weight, (ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 128}));
        QCOMPARE(specs->at(layerName(0, ql::LinearKind::Q)).params,
                 (ql::ParamMap{{"damp", 0.01}, {"act_order", true}}));
    }

    // A sequence of plan edits resolves as the one override JSON that states their net effect.
    void planEdits_data()
    {
        QTest::addColumn<QStringList>("edits");
        QTest::addColumn<QString>("override"); // the net override, JSON with single quotes
        const QString down = QString::fromStdString(layerName(1, ql::LinearKind::Down));
        QTest::newRow("bits then group") << QStringList{down + ":bits=2", down + ":group=64"}
                                         << "{'bits': 2, 'group': 64}";
        QTest::newRow("later value wins")
            << QStringList{down + ":bits=2", down + ":bits=3,sym=true"} << "{'bits': 3, 'sym': true}";
        QTest::newRow("format replaces bits")
            << QStringList{down + ":bits=3", down + ":format=nf4"} << "{'format': 'nf4'}";
        QTest::newRow("bits replace format") << QStringList{down + ":format=nf4", down + ":bits=8"} << "{'bits': 8}";
        QTest::newRow("per channel drops the group size")
            << QStringList{down + ":group=64", down + ":group=per_channel"} << "{'group': 'per_channel'}";
        QTest::newRow("new method drops params")
            << QStringList{down + ":method=gptq", down + ":method=rtn"} << "{'method': 'rtn'}";
        QTest::newRow("glob") << QStringList{QStringLiteral("*.up_proj:bits=2")} << "{'bits': 2}";
        QTest::newRow("params merge by name")
            << QStringList{down + ":params.damp=0.1", down + ":params.act_order=true,bits=3"}
            << "{'params': {'damp': 0.1, 'act_order': true}, 'bits': 3}";
        QTest::newRow("new method drops edited params")
            << QStringList{down + ":params.damp=0.1", down + ":method=rtn,params.mse_clip=true"}
            << "{'method': 'rtn', 'params': {'mse_clip': true}}";
    }

    // The plan size from specs alone equals what a quantized tensor stores (effectiveBits), and a
    // salient channel list counts its columns at their own format (a naive count here).
    void planSizeFromSpecs_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("granularity");
        QTest::addColumn<int>("group");
        QTest::newRow("int4 asym g128") << "int4_asym" << int(ql::Granularity::PerGroup) << 128;
        QTest::newRow("int3 sym g64 partial") << "int3_sym" << int(ql::Granularity::PerGroup) << 64;
        QTest::newRow("int8 per channel") << "int8_sym" << int(ql::Granularity::PerChannel) << 0;
        QTest::newRow("nf4 g32") << "nf4" << int(ql::Granularity::PerGroup) << 32;
        QTest::newRow("fp4 per tensor") << "fp4_e2m1" << int(ql::Granularity::PerTensor) << 0;
        QTest::newRow("binary per channel") << "binary" << int(ql::Granularity::PerChannel) << 0;
    }

    void planSizeFromSpecs()
    {
        QFETCH(QString, format);
        QFETCH(int, granularity);
        QFETCH(int, group);
        const int rows = 37, cols = 300;
        Eigen::MatrixXf w(rows, cols);
        std::mt19937 rng(5);
        std::normal_distribution<float> nd;
        for (int i = 0; i < w.size(); ++i) w.data()[i] = nd(rng);
        ql::QuantSpec spec;
        spec.weight = {format.toStdString(), ql::Granularity(granularity), group};
        auto t = ql::quantize(w, spec.weight);
        QVERIFY2(t.ok(), t.message().c_str());
        QVERIFY(std::abs(ql::specBitsPerWeight(spec, rows, cols) - ql::effectiveBits(*t)) < 1e-12);

        // Five salient columns at int8 per channel: their codes and one fp16 scale per row.
        ql::ChannelOverride salient;
        salient.channels = {1, 7, 50, 51, 299};
        salient.weight = {"int8_sym", ql::Granularity::PerChannel, 0};
        spec.channels = {salient};
        const double baseCode = double((*ql::findFormat(format.toStdString()))->bits);
        const double naive = (ql::effectiveBits(*t) * rows * cols - baseCode * rows * 5 +
                              (8.0 * rows * 5 + 16.0 * rows)) /
                             (double(rows) * cols);
        QVERIFY(std::abs(ql::specBitsPerWeight(spec, rows, cols) - naive) < 1e-12);
        // A selector counts ceil(p·n/100) columns: 2 % of 300 is 6.
        salient.channels.clear();
        salient.selector = "top_absmax_percent";
        salient.selectorValue = 2;
        spec.channels = {salient};
        const double naive6 = (ql::effectiveBits(*t) * rows * cols - baseCode * rows * 6 +
                               (8.0 * rows * 6 + 16.0 * rows)) /
                              (double(rows) * cols);
        QVERIFY(std::abs(ql::specBitsPerWeight(spec, rows, cols) - naive6) < 1e-12);
    }

    void planSizeOfAModel()
    {
        const auto layers = fixtureLayers();
        auto recipe = ql::parseRecipe(
            withRule(J("{'match': '*', 'method': 'rtn', 'bits': 4, 'group': 32}"), J("'skip': ['*.down_proj']")));
        QVERIFY2(recipe.ok(), recipe.message().c_str());
        auto specs = ql::resolveRecipe(*recipe, layers);
        QVERIFY2(specs.ok(), specs.message().c_str());
        int64_t linear = 0;
        double bits = 0, quantized = 0;
        for (const auto& l : layers) {
            linear += l.params();
            const double n = double(l.outFeatures) * double(l.inFeatures);
            if (l.kind == ql::LinearKind::Down) {
                bits += 16.0 * double(l.params());
                continue;
            }
            // int4 asym g32: 4 bits a code, per group of 32 columns a 16-bit scale and a 4-bit zero.
            const double b = 4.0 + double(l.outFeatures) * std::ceil(double(l.inFeatures) / 32.0) * 20.0 / n;
            bits += b * n + 16.0 * (double(l.params()) - n);
            quantized += n;
        }
        const int64_t others = 12345;
        const ql::PlanSize size = ql::planSize(*specs, layers, linear + others);
        QCOMPARE(size.quantizedWeights, quantized);
        QCOMPARE(size.modelBytes, int64_t((bits + 16.0 * others) / 8.0 + 0.5));
        QVERIFY(size.bitsPerWeight > 4.6 && size.bitsPerWeight < 4.7);
    }

    void planSources()
    {
        auto r = ql::parseRecipe(
            withRule(J("{'match': '*.mlp.*', 'method': 'rtn', 'bits': 4}"),
                     J("'skip': ['model.layers.0.mlp.down_proj'], "
                       "'overrides': {'*.up_proj': {'bits': 3}, 'model.layers.1.mlp.up_proj': {'bits': 2}}")));
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(ql::planSource(*r, "model.layers.0.mlp.down_proj"),
                 std::string("skip[0] model.layers.0.mlp.down_proj"));
        QCOMPARE(ql::planSource(*r, "model.layers.0.self_attn.q_proj"), std::string("float (no rule)"));
        QCOMPARE(ql::planSource(*r, "model.layers.1.mlp.gate_proj"), std::string("rules[0] *.mlp.*"));
        QCOMPARE(ql::planSource(*r, "model.layers.1.mlp.up_proj"),
                 std::string("rules[0] *.mlp.* + overrides[0] + overrides[1]"));
    }

    void planEdits()
    {
        QFETCH(QStringList, edits);
        QFETCH(QString, override);
        const std::string rule = J(
            "{'match': '*', 'method': 'gptq', 'bits': 4, 'group': 128, 'params': {'damp': 0.05}}");
        auto parsedBase = ql::parseRecipe(withRule(rule));
        QVERIFY2(parsedBase.ok(), parsedBase.message().c_str());
        const ql::Recipe base = *parsedBase;
        ql::Recipe edited = base;
        for (const QString& e : edits) {
            auto o = ql::parsePlanEdit(e.toStdString());
            QVERIFY2(o.ok(), o.message().c_str());
            edited = ql::applyPlanEdit(std::move(edited), *o);
        }
        QCOMPARE(edited.overrides.size(), size_t(1));
        const std::string match = edits.front().section(QLatin1Char(':'), 0, 0).toStdString();
        auto parsedWritten = ql::parseRecipe(
            withRule(rule, J("'overrides': {'" + match + "': " + override.toStdString() + "}")));
        QVERIFY2(parsedWritten.ok(), parsedWritten.message().c_str());
        const ql::Recipe written = *parsedWritten;
        QCOMPARE(edited.overrides, written.overrides);
        auto a = ql::resolveRecipe(edited, fixtureLayers());
        auto b = ql::resolveRecipe(written, fixtureLayers());
        QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
        QVERIFY2(b.ok(), b.ok() ? "" : b.message().c_str());
        QVERIFY(*a == *b);
        // The edited recipe survives its own JSON.
        auto again = ql::parseRecipe(ql::recipeToJson(edited));
        QVERIFY2(again.ok(), again.message().c_str());
        QVERIFY(*again == edited);
    }

    // "LAYER:float=true" keeps one layer in float through the skip list, "float=false" takes it
    // out again; a glob or a missing rule that keeps it float anyway is named.
    void floatEdits()
    {
        auto base = ql::parseRecipe(
            withRule(J("{'match': '*.mlp.*', 'method': 'rtn', 'bits': 4}"), J("'skip': ['*.layers.1.*']")));
        QVERIFY2(base.ok(), base.message().c_str());
        const std::string down0 = "model.layers.0.mlp.down_proj";
        auto kept = ql::applyPlanEditText(*base, down0 + ":float=true");
        QVERIFY2(kept.ok(), kept.message().c_str());
        QCOMPARE(kept->skip, (std::vector<std::string>{"*.layers.1.*", down0}));
        auto r = ql::resolveRecipe(*kept, fixtureLayers());
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QVERIFY(r->at(down0).skip);
        QVERIFY(!r->at("model.layers.0.mlp.up_proj").skip);
        auto again = ql::applyPlanEditText(*kept, down0 + ":float=true"); // idempotent
        QVERIFY(again.ok() && again->skip == kept->skip);
        auto back = ql::applyPlanEditText(*kept, down0 + ":float=false");
        QVERIFY2(back.ok(), back.message().c_str());
        QVERIFY(*back == *base);
        // Keeping a layer float drops the overrides naming it exactly, not the globs.
        auto overridden = ql::applyPlanEditText(*base, down0 + ":bits=3");
        QVERIFY(overridden.ok());
        overridden = ql::applyPlanEditText(*overridden, "*.up_proj:bits=5");
        QVERIFY(overridden.ok());
        auto floated = ql::applyPlanEditText(*overridden, down0 + ":float=true");
        QVERIFY2(floated.ok(), floated.message().c_str());
        QCOMPARE(floated->overrides.size(), size_t(1));
        QCOMPARE(floated->overrides[0].match, std::string("*.up_proj"));
        QVERIFY(ql::resolveRecipe(*floated, fixtureLayers()).ok());
        auto glob = ql::applyPlanEditText(*base, "model.layers.1.mlp.up_proj:float=false");
        QVERIFY(!glob.ok());
        QVERIFY2(QString::fromStdString(glob.message()).contains(QStringLiteral("skip[0]")), glob.message().c_str());
        auto noRule = ql::applyPlanEditText(*base, "model.layers.0.self_attn.q_proj:float=false");
        QVERIFY(!noRule.ok());
        QVERIFY2(QString::fromStdString(noRule.message()).contains(QStringLiteral("no rule")),
                 noRule.message().c_str());
        // Other edits go through parsePlanEdit and applyPlanEdit.
        auto bits = ql::applyPlanEditText(*base, down0 + ":bits=3");
        QVERIFY(bits.ok() && bits->overrides.size() == 1 && bits->overrides[0].patch.bits == 3);
        QVERIFY(!ql::applyPlanEditText(*base, down0 + ":bits=nine").ok());
    }

    void planEditErrors_data()
    {
        QTest::addColumn<QString>("edit");
        QTest::addColumn<QString>("message");
        QTest::newRow("no colon") << "model.layers.0.mlp.down_proj"
                                  << "expected LAYER:key=value";
        QTest::newRow("no value") << "model.layers.0.mlp.down_proj:bits"
                                  << "'bits' is not key=value";
        QTest::newRow("bad bits") << "model.layers.0.mlp.down_proj:bits=nine"
                                  << "bits";
        QTest::newRow("unknown key") << "model.layers.0.mlp.down_proj:colour=red"
                                     << "colour";
    }

    void planEditErrors()
    {
        QFETCH(QString, edit);
        QFETCH(QString, message);
        auto o = ql::parsePlanEdit(edit.toStdString());
        QVERIFY(!o.ok());
        QVERIFY2(QString::fromStdString(o.message()).contains(message), o.message().c_str());
    }

    void resolveErrors_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("message");
        const std::string all = J("{'match': '*', 'method': 'rtn', 'bits': 4}");
        const std::string attn = J("{'match': '*.self_attn.*', 'method': 'rtn', 'format': 'nf4'}");
        const auto row = [](const char* name, const std::string& json, const char* msg) {
            QTest::newRow(name) << QString::fromStdString(json) << QString::fromUtf8(msg);
        };
        row("override unknown layer", withRule(all, J("'overrides': {'model.layers.9.mlp.up_proj': {'bits': 8}}")),
            "overrides[\"model.layers.9.mlp.up_proj\"]: no linear layer named \"model.layers.9.mlp.up_proj\" in this model");
        row("override skipped layer",
            withRule(all, J("'skip': ['*.up_proj'], 'overrides': {'model.layers.1.mlp.up_proj': {'bits': 8}}")),
            "overrides[\"model.layers.1.mlp.up_proj\"]: layer model.layers.1.mlp.up_proj is kept in float (skipped by skip[0]), so it cannot be overridden");
        row("override unmatched layer", withRule(attn, J("'overrides': {'model.layers.0.mlp.up_proj': {'bits': 8}}")),
            "overrides[\"model.layers.0.mlp.up_proj\"]: layer model.layers.0.mlp.up_proj is kept in float (matched by no rule)");
        row("sym on nf4", withRule(attn, J("'overrides': {'*.q_proj': {'sym': true}}")),
            "overrides[\"*.q_proj\"].sym: layer model.layers.0.self_attn.q_proj has the non-integer format nf4, so \"sym\" needs \"bits\"");
        row("rule channel range",
            withRule(J("{'match': '*', 'method': 'rtn', 'bits': 4, 'channels': [{'channels': [3, 100], 'bits': 8}]}")),
            "rules[0].channels[0]: layer model.layers.0.self_attn.q_proj: input channel 100 is out of range for a layer with 64 inputs");
        row("override channel range",
            withRule(all, J("'overrides': {'*.down_proj': {'channels': [{'channels': [172], 'bits': 8}]}}")),
            "overrides[\"*.down_proj\"].channels[0]: layer model.layers.0.mlp.down_proj: input channel 172 is out of range for a layer with 172 inputs");
    }
    void resolveErrors()
    {
        QFETCH(QString, json);
        QFETCH(QString, message);
        auto r = ql::parseRecipe(json.toStdString());
        QVERIFY2(r.ok(), r.message().c_str());
        auto specs = ql::resolveRecipe(*r, fixtureLayers());
        QVERIFY(!specs.ok());
        QVERIFY2(specs.message().starts_with(message.toStdString()), specs.message().c_str());
    }

    void resolveBuiltRecipe()
    {
        // Formats of a recipe made in code are checked at resolution, not only when parsed.
        ql::Recipe r;
        r.rules.push_back({"*", {}});
        r.rules[0].spec.weight.format = "int9";
        QVERIFY(ql::resolveRecipe(r, fixtureLayers())
                    .message()
                    .starts_with("rules[0]: layer model.layers.0.self_attn.q_proj: unknown weight format 'int9'"));
        r.rules[0].spec.weight = {"int4_asym", ql::Granularity::PerGroup, 0};
        QVERIFY(ql::resolveRecipe(r, fixtureLayers()).message().find("group size 0 is not positive") !=
                std::string::npos);
    }

    void resolvedJson()
    {
        auto r = ql::parseRecipe(withRule(J("{'match': '*.q_proj', 'method': 'rtn', 'bits': 4}"))).value();
        auto specs = ql::resolveRecipe(r, fixtureLayers(12)).value();
        const auto j = nlohmann::ordered_json::parse(ql::resolvedToJson(specs));
        QCOMPARE(j.size(), size_t(12 * 7));
        std::vector<std::string> keys;
        for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
        QCOMPARE(keys[0], layerName(0, ql::LinearKind::Down)); // natural order: blocks 0..11, names sorted inside
        QCOMPARE(keys[7], layerName(1, ql::LinearKind::Down));
        QCOMPARE(keys.back(), layerName(11, ql::LinearKind::V));
        const auto& q = j[layerName(10, ql::LinearKind::Q)];
        QCOMPARE(q["method"].get<std::string>(), std::string("rtn"));
        QCOMPARE(q["format"].get<std::string>(), std::string("int4_asym"));
        QCOMPARE(q["group"].get<int>(), 128);
        QCOMPARE(q["activations"]["bits"].get<int>(), 0);
        QCOMPARE(j[layerName(10, ql::LinearKind::K)], nlohmann::ordered_json({{"skip", true}}));
    }

    void selectors_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<double>("percent");
        QTest::addColumn<int>("levels"); // distinct absmax values; few levels force ties
        QTest::newRow("64 1%") << 64 << 1.0 << 1000;
        QTest::newRow("576 1%") << 576 << 1.0 << 1000000;
        QTest::newRow("1000 10% exact") << 1000 << 10.0 << 1000000;
        QTest::newRow("172 10% ties") << 172 << 10.0 << 4;
        QTest::newRow("7 50%") << 7 << 50.0 << 3;
        QTest::newRow("5 100%") << 5 << 100.0 << 2;
        QTest::newRow("1 0.5%") << 1 << 0.5 << 1;
        QTest::newRow("10 30% all equal") << 10 << 30.0 << 1;
        QTest::newRow("1536 0.1%") << 1536 << 0.1 << 50;
    }
    void selectors()
    {
        QFETCH(int, n);
        QFETCH(double, percent);
        QFETCH(int, levels);
        ql::SiteStats site;
        site.name = "layers.0.attn_in";
        site.absmax.resize(n);
        std::mt19937 rng(uint32_t(n * 31 + levels));
        for (int i = 0; i < n; ++i) site.absmax[i] = float(rng() % uint32_t(levels)) * 0.25f;
        ql::ChannelOverride c;
        c.selector = "top_absmax_percent";
        c.selectorValue = percent;
        auto got = ql::selectChannels(c, &site, n);
        QVERIFY2(got.ok(), got.message().c_str());
        // Naive: stable sort by absmax descending keeps the lower index first among equals.
        std::vector<int32_t> idx(static_cast<size_t>(n));
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return site.absmax[a] > site.absmax[b]; });
        int k = 1;
        while (k < n && k * 100.0 < percent * n - 1e-6) ++k;
        idx.resize(size_t(k));
        std::sort(idx.begin(), idx.end());
        QCOMPARE(*got, idx);
    }

    void selectorEdges()
    {
        ql::SiteStats site;
        site.name = "layers.0.mlp_in";
        site.absmax = Eigen::VectorXf::Zero(8);
        site.absmax[6] = 3;
        ql::ChannelOverride c{{}, "top_absmax_percent", 1.0, {}};
        QCOMPARE(ql::selectChannels(c, &site, 8).value(), (std::vector<int32_t>{6}));
        QVERIFY(ql::selectChannels(c, nullptr, 8).message().find("needs the site's activation statistics") !=
                std::string::npos);
        QVERIFY(ql::selectChannels(c, &site, 9).message().find("has 8 channels but the layer has 9 inputs") !=
                std::string::npos);
        site.absmax[2] = NAN;
        QVERIFY(ql::selectChannels(c, &site, 8).message().find("NaN absmax at channel 2") != std::string::npos);
        c.selectorValue = 0;
        QVERIFY(ql::selectChannels(c, &site, 8).message().find("(0, 100]") != std::string::npos);
        c.selector = "top_k";
        QVERIFY(ql::selectChannels(c, &site, 8).message().find("unknown channel selector 'top_k'") !=
                std::string::npos);
        ql::ChannelOverride list{{7, 0, 3}, "", 0, {}};
        QCOMPARE(ql::selectChannels(list, nullptr, 8).value(), (std::vector<int32_t>{0, 3, 7}));
        QVERIFY(ql::selectChannels(list, nullptr, 7)
                    .message()
                    .find("input channel 7 is out of range for a layer with 7 inputs") != std::string::npos);
        list.channels = {1, 1};
        QVERIFY(ql::selectChannels(list, nullptr, 8).message().find("listed twice") != std::string::npos);
        list.channels.clear();
        QVERIFY(!ql::selectChannels(list, nullptr, 8).ok());
        list.channels = {1};
        list.selector = "top_absmax_percent";
        QVERIFY(ql::selectChannels(list, &site, 8).message().find("both a channel list and a selector") !=
                std::string::npos);
    }

    void loadFile()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string dir = tmp.path().toStdString();
        const std::string bad = dir + "/bad.json";
        std::ofstream(bad) << withRule(J("{'match': '*', 'method': 'rtn', 'bits': 'four'}"));
        QCOMPARE(ql::loadRecipe(bad).message(), bad + ": rules[0].bits: expected an integer in 2..8, got \"four\"");
        QVERIFY(ql::loadRecipe(dir + "/missing.json").message().starts_with(dir + "/missing.json: cannot open"));
        QDir(tmp.path()).mkpath("sub");
        const std::string good = dir + "/sub/r.json";
        std::ofstream(good) << J("{'calibration': {'file': '../c4.jsonl'}, 'rules': []}");
        auto r = ql::loadRecipe(good);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->calibrationFile, QDir::cleanPath(tmp.path() + "/c4.jsonl").toStdString());
        std::ofstream(good) << J("{'calibration': {'file': '/abs/c4.jsonl'}, 'rules': []}");
        QCOMPARE(ql::loadRecipe(good)->calibrationFile, std::string("/abs/c4.jsonl"));
    }

    void docsExample()
    {
        // The complete example in docs/recipe.md stays valid: it resolves on a 30-block model.
        std::ifstream in(QL_SOURCE_DIR "/docs/recipe.md");
        const std::string md((std::istreambuf_iterator<char>(in)), {});
        const size_t start = md.find("```json\n");
        QVERIFY(start != std::string::npos);
        const size_t end = md.find("```", start + 8);
        auto r = ql::parseRecipe(md.substr(start + 8, end - start - 8));
        QVERIFY2(r.ok(), r.message().c_str());
        auto specs = ql::resolveRecipe(*r, fixtureLayers(30));
        QVERIFY2(specs.ok(), specs.message().c_str());
        QCOMPARE(specs->at(layerName(0, ql::LinearKind::Down)).weight.format, std::string("int8_asym"));
        QCOMPARE(specs->at(layerName(5, ql::LinearKind::Down)).channels.size(), size_t(1));
        QCOMPARE(specs->at(layerName(1, ql::LinearKind::V)).params, (ql::ParamMap{{"mse_clip", true}}));
        QVERIFY(specs->at(layerName(29, ql::LinearKind::Down)).skip);
    }

    void exampleRecipes()
    {
        // Every shipped recipe parses, round-trips, resolves on a LLaMA layer list, is named after
        // its file and uses the parameter names the methods declare.
        const std::map<std::string, std::set<std::string>> known{
            {"rtn", {"mse_clip"}},
            {"gptq", {"damp", "block_size", "act_order", "static_groups"}},
            {"awq", {"bits", "sym", "group", "alpha_grid", "clip", "max_shrink", "clip_grid"}},
            {"smoothquant", {"alpha"}},
            {"hadamard", {"seed", "online_down"}},
            {"pbllm", {"salient_fraction", "criterion", "salient_bits"}},
            {"omniquant", {"epochs", "lwc_lr", "weight_decay", "init_value", "let", "let_lr", "alpha", "aug_loss"}},
            {"autoround", {"iters", "lr", "minmax_lr", "batch", "seed", "keep_best"}}};
        const auto checkParams = [&](const std::string& method, const ql::ParamMap& params) {
            QVERIFY2(known.count(method), method.c_str());
            for (const auto& kv : params) QVERIFY2(known.at(method).count(kv.first), (method + "." + kv.first).c_str());
        };
        const QDir dir(QStringLiteral(QL_SOURCE_DIR "/resources/recipes"));
        const QStringList files = dir.entryList({QStringLiteral("*.json")}, QDir::Files, QDir::Name);
        // The eight the issue names, plus the g32 pair its GPTQ-vs-RTN comparison uses.
        for (const char* name :
             {"w4-rtn-g128", "w3-rtn-g128", "w4-gptq-g128", "w3-gptq-g128", "w4-awq-g128", "w8a8-smoothquant",
              "hadamard-gptq-w4", "pbllm-10pct-salient", "w3-rtn-g32", "w3-gptq-g32"})
            QVERIFY2(files.contains(QString::fromLatin1(name) + QStringLiteral(".json")), name);
        for (const QString& f : files) {
            const std::string path = dir.filePath(f).toStdString();
            auto r = ql::loadRecipe(path);
            QVERIFY2(r.ok(), r.message().c_str());
            QCOMPARE(r->name + ".json", f.toStdString());
            QVERIFY(!r->description.empty());
            QVERIFY2(r->calibrationFile.empty(), "examples leave the calibration text to --calib");
            auto back = ql::parseRecipe(ql::recipeToJson(*r));
            QVERIFY2(back.ok() && *back == *r, path.c_str());
            for (const ql::TransformStep& t : r->transforms) checkParams(t.method, t.params);
            auto specs = ql::resolveRecipe(*r, fixtureLayers());
            QVERIFY2(specs.ok(), (path + ": " + specs.message()).c_str());
            QCOMPARE(specs->size(), size_t(14));
            for (const auto& [name, s] : *specs) {
                QVERIFY2(!s.skip, name.c_str());
                checkParams(s.method, s.params);
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestRecipe)
#include "tst_recipe.moc"
