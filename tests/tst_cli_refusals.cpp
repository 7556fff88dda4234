// What quantlens-cli refuses: damaged model files, contradictory configurations, foreign
// tokenizers, unusable calibration text, wrong recipes, foreign or future stores, and writes that
// cannot complete. Each case must end in one line "error: ..." that names the file and what was
// wrong, and a non-zero exit, never a crash.
#include "fixturemodel.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>

namespace {

struct Run {
    int code = -1;
    QString err;
};

Run cli(const QStringList& args, const QString& shellPrefix = {})
{
    QProcess p;
    if (shellPrefix.isEmpty()) {
        p.start(QStringLiteral(QL_CLI_PATH), args);
    } else { // e.g. "ulimit -f 64": the limit applies to the CLI alone
        QStringList quoted;
        for (const QString& a : args) quoted << "'" + a + "'";
        p.start(
            QStringLiteral("/bin/sh"),
            {QStringLiteral("-c"), shellPrefix + "; exec '" + QStringLiteral(QL_CLI_PATH) + "' " + quoted.join(' ')});
    }
    p.waitForFinished(120000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardError())};
}

std::string slurp(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

void spit(const std::string& path, const std::string& bytes)
{
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Rewrites a safetensors file's header JSON with fn, keeping the data bytes.
void editHeader(const std::string& path, const std::function<void(nlohmann::ordered_json&)>& fn)
{
    const std::string bytes = slurp(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
    fn(header);
    const std::string h = header.dump();
    const uint64_t m = h.size();
    std::string out(reinterpret_cast<const char*>(&m), 8);
    spit(path, out + h + bytes.substr(8 + n));
}

constexpr const char* kWeight = "model.layers.0.self_attn.q_proj.weight";

// A model folder of Llama-2-70B's shapes in BF16 (about 138 GB) whose weight file is sparse: the
// header is real, the data a hole, so it takes no disk and opens like the real thing.
void writeSparse70b(const std::string& dir)
{
    qlfix::ModelSpec spec;
    spec.hidden = 8192;
    spec.intermediate = 28672;
    spec.layers = 80;
    spec.heads = 64;
    spec.kvHeads = 8;
    spec.vocab = 32000;
    spec.maxPositions = 4096;
    spec.tieEmbeddings = false;
    spec.dtype = "BF16";
    nlohmann::ordered_json header;
    uint64_t offset = 0;
    for (const qlfix::TensorShape& t : qlfix::tensorShapes(spec)) {
        uint64_t n = 2;
        for (int64_t d : t.shape) n *= uint64_t(d);
        header[t.name] = {{"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
        offset += n;
    }
    const std::string h8 = header.dump();
    const uint64_t len = h8.size();
    QDir().mkpath(QString::fromStdString(dir));
    spit(dir + "/config.json", qlfix::configJson(spec));
    spit(dir + "/model.safetensors", std::string(reinterpret_cast<const char*>(&len), 8) + h8);
    QFile f(QString::fromStdString(dir + "/model.safetensors"));
    QVERIFY(f.open(QIODevice::ReadWrite) && f.resize(qint64(8 + len + offset)));
}

} // namespace

class TestCliRefusals : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_model; // a good model folder with a SentencePiece tokenizer
    std::string m_text;

    std::string tmp(const std::string& rel) const { return m_tmp.path().toStdString() + "/" + rel; }

    // A copy of the good model as folder `name`, then edited by fn (given the folder path).
    QString variant(const QString& name, const std::function<void(const std::string&)>& fn)
    {
        const QString dir = m_tmp.path() + "/" + name;
        QDir().mkpath(dir);
        for (const QString& f : QDir(m_model).entryList(QDir::Files)) QFile::copy(m_model + "/" + f, dir + "/" + f);
        fn(dir.toStdString());
        return dir;
    }

    QString config(const QString& name, const std::function<void(nlohmann::ordered_json&)>& fn)
    {
        return variant(name, [&](const std::string& d) {
            auto c = nlohmann::ordered_json::parse(slurp(d + "/config.json"));
            fn(c);
            spit(d + "/config.json", c.dump(2));
        });
    }

    QString header(const QString& name, const std::function<void(nlohmann::ordered_json&)>& fn)
    {
        return variant(name, [&](const std::string& d) { editHeader(d + "/model.safetensors", fn); });
    }

    QString recipe(const QString& name, const std::string& json)
    {
        const QString path = m_tmp.path() + "/" + name + ".json";
        spit(path.toStdString(), json);
        return path;
    }

private slots:
    void initTestCase()
    {
        m_model = m_tmp.path() + QStringLiteral("/model");
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        m_text = qlfix::storyText(300);
        std::string err;
        QVERIFY2(qlfix::writeTokenizedModel(m_model.toStdString(), spec, m_text, &err), err.c_str());
        spit(tmp("calib.txt"), m_text);
    }

    void refuses_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QStringList>("expect"); // substrings of the one error line
        QTest::addColumn<QString>("shell");      // a shell prefix for the CLI, e.g. a file-size limit
        const QString calib = m_tmp.path() + "/calib.txt";
        auto info = [](const QString& dir) { return QStringList{"info", dir}; };
        auto eval = [&](const QString& dir) { return QStringList{"eval", dir, "--data", calib, "--ctx", "32"}; };

        // Safetensors files.
        QTest::newRow("truncated header length")
            << info(variant("trunc8", [](const std::string& d) { spit(d + "/model.safetensors", "\x10\x00\x00"); }))
            << QStringList{"model.safetensors", "truncated"} << QString();
        QTest::newRow("header longer than the file")
            << info(variant("hugeheader",
                            [](const std::string& d) {
                                std::string b = slurp(d + "/model.safetensors");
                                const uint64_t n = uint64_t(1) << 40;
                                std::memcpy(b.data(), &n, 8);
                                spit(d + "/model.safetensors", b);
                            }))
            << QStringList{"model.safetensors", "header"} << QString();
        QTest::newRow("header not JSON") << info(variant("badjson",
                                                         [](const std::string& d) {
                                                             std::string b = slurp(d + "/model.safetensors");
                                                             b[9] = '!';
                                                             spit(d + "/model.safetensors", b);
                                                         }))
                                         << QStringList{"model.safetensors", "JSON"} << QString();
        QTest::newRow("offsets beyond the end")
            << info(header("offsetend",
                           [](auto& h) {
                               auto& o = h[kWeight]["data_offsets"];
                               o[1] = o[1].template get<uint64_t>() + (uint64_t(1) << 30);
                           }))
            << QStringList{"model.safetensors", kWeight} << QString();
        QTest::newRow("overlapping tensors")
            << info(header("overlap",
                           [](auto& h) {
                               h["model.layers.0.self_attn.k_proj.weight"]["data_offsets"] =
                                   h["model.layers.0.self_attn.q_proj.weight"]["data_offsets"];
                               h["model.layers.0.self_attn.k_proj.weight"]["shape"] =
                                   h["model.layers.0.self_attn.q_proj.weight"]["shape"];
                           }))
            << QStringList{"model.safetensors", "overlap"} << QString();
        QTest::newRow("dtype and byte range disagree")
            << info(header("dtypesize", [](auto& h) { h[kWeight]["dtype"] = "F16"; }))
            << QStringList{"model.safetensors", kWeight, "F16"} << QString();
        QTest::newRow("shape and byte range disagree") << info(header("shapesize",
                                                                      [](auto& h) {
                                                                          auto& s = h[kWeight]["shape"];
                                                                          s[0] = s[0].template get<int64_t>() * 2;
                                                                      }))
                                                       << QStringList{"model.safetensors", kWeight} << QString();
        QTest::newRow("integer weights") << info(header("intweights", [](auto& h) { h[kWeight]["dtype"] = "I32"; }))
                                         << QStringList{kWeight, "I32"} << QString();
        QTest::newRow("missing tensor") << info(header("missingtensor",
                                                       [](auto& h) { h.erase("model.layers.0.mlp.up_proj.weight"); }))
                                        << QStringList{"model.layers.0.mlp.up_proj.weight", "missing"} << QString();
        QTest::newRow("tensor shape against config")
            << info(header("transposed",
                           [](auto& h) {
                               auto& s = h["model.layers.0.mlp.up_proj.weight"]["shape"];
                               std::swap(s[0], s[1]);
                           }))
            << QStringList{"model.layers.0.mlp.up_proj.weight", "shape"} << QString();
        QTest::newRow("infinite weights")
            << eval(variant("infmodel",
                            [](const std::string& d) {
                                qlfix::ModelSpec spec;
                                spec.vocab = 400;
                                auto tensors = qlfix::makeWeights(spec);
                                for (auto& t : tensors)
                                    if (t.name == "model.layers.1.mlp.gate_proj.weight") t.data[5] = -INFINITY;
                                QVERIFY(qlfix::writeSafetensors(d + "/model.safetensors", tensors, {}));
                            }))
            << QStringList{"model.layers.1.mlp.gate_proj.weight", "Inf", "[0, 5]"} << QString();
        QTest::newRow("shard index names a missing file")
            << info(variant("missingshard",
                            [](const std::string& d) {
                                std::rename((d + "/model.safetensors").c_str(),
                                            (d + "/model-00001-of-00002.safetensors").c_str());
                                nlohmann::json idx;
                                idx["weight_map"] = nlohmann::json::object();
                                idx["weight_map"]["model.embed_tokens.weight"] = "model-00001-of-00002.safetensors";
                                idx["weight_map"][kWeight] = "model-00002-of-00002.safetensors";
                                spit(d + "/model.safetensors.index.json", idx.dump());
                            }))
            << QStringList{"model-00002-of-00002.safetensors"} << QString();

        // config.json.
        QTest::newRow("no config.json")
            << info(variant("noconfig", [](const std::string& d) { std::remove((d + "/config.json").c_str()); }))
            << QStringList{"config.json"} << QString();
        QTest::newRow("config not JSON") << info(variant("configjson",
                                                         [](const std::string& d) {
                                                             spit(d + "/config.json", "{\"hidden_size\": 64,");
                                                         }))
                                         << QStringList{"config.json", "JSON"} << QString();
        QTest::newRow("config key missing") << info(config("nohidden", [](auto& c) { c.erase("hidden_size"); }))
                                            << QStringList{"config.json", "hidden_size"} << QString();
        QTest::newRow("config key of the wrong type")
            << info(config("hiddenstring", [](auto& c) { c["num_hidden_layers"] = "two"; }))
            << QStringList{"config.json", "num_hidden_layers"} << QString();
        QTest::newRow("heads do not divide the width")
            << info(config("heads", [](auto& c) { c["num_attention_heads"] = 5; }))
            << QStringList{"config.json", "num_attention_heads"} << QString();
        QTest::newRow("kv heads do not divide heads")
            << info(config("kvheads", [](auto& c) { c["num_key_value_heads"] = 3; }))
            << QStringList{"config.json", "num_key_value_heads"} << QString();
        QTest::newRow("unknown architecture") << info(config("neox", [](auto& c) { c["model_type"] = "gpt_neox"; }))
                                              << QStringList{"config.json", "gpt_neox"} << QString();

        // Tokenizers.
        QTest::newRow("tokenizer.json of another model type")
            << QStringList{"tokenize",
                           variant("wordpiece",
                                   [](const std::string& d) {
                                       spit(d + "/tokenizer.json",
                                            R"({"version": "1.0", "added_tokens": [], "normalizer": null,
                                                "pre_tokenizer": {"type": "BertPreTokenizer"},
                                                "model": {"type": "WordPiece", "unk_token": "[UNK]",
                                                          "vocab": {"[UNK]": 0, "a": 1}}})");
                                   }),
                           "--text", calib}
            << QStringList{"tokenizer.json", "WordPiece"} << QString();
        QTest::newRow("tokenizer.model not a SentencePiece model")
            << QStringList{"tokenize",
                           variant("badsp",
                                   [](const std::string& d) {
                                       spit(d + "/tokenizer.model", std::string("\x0a\xff\xff\xff\x0f garbage", 14));
                                   }),
                           "--text", calib}
            << QStringList{"tokenizer.model"} << QString();
        QTest::newRow("tokenizer larger than the embedding")
            << eval(config("smallvocab", [](auto& c) { c["vocab_size"] = 100; })) << QStringList{"vocab"} << QString();

        // Calibration and evaluation text.
        const std::string bin = slurp(m_model.toStdString() + "/model.safetensors").substr(0, 4096);
        spit(tmp("binary.txt"), bin);
        QTest::newRow("binary calibration text")
            << QStringList{"analyze",  m_model, "--calib", m_tmp.path() + "/binary.txt", "--samples", "2",
                           "--seqlen", "32",    "--out",   m_tmp.path() + "/x.h5"}
            << QStringList{"binary.txt", "not text"} << QString();
        QTest::newRow("binary evaluation text")
            << QStringList{"eval", m_model, "--data", m_tmp.path() + "/binary.txt", "--ctx", "32"}
            << QStringList{"binary.txt", "not text"} << QString();
        spit(tmp("broken.jsonl"), "{\"text\": \"one\"}\n{\"text\": \"two\n");
        QTest::newRow("broken JSON lines")
            << QStringList{"analyze",  m_model, "--calib", m_tmp.path() + "/broken.jsonl", "--samples", "2",
                           "--seqlen", "32",    "--out",   m_tmp.path() + "/x.h5"}
            << QStringList{"broken.jsonl:2"} << QString();
        spit(tmp("short.txt"), "only a few words");
        QTest::newRow("evaluation text shorter than one window")
            << QStringList{"eval", m_model, "--data", m_tmp.path() + "/short.txt", "--ctx", "32"}
            << QStringList{"fewer than one window"} << QString();

        // Recipes: each kind of mistake, named by its JSON path.
        auto quantize = [&](const QString& r) {
            return QStringList{"quantize",  m_model, "--recipe", r,    "--calib", calib,
                               "--samples", "2",     "--seqlen", "32", "--out",   r + ".run"};
        };
        const std::string head = R"({"version": 1, "rules": [)";
        QTest::newRow("recipe not JSON") << quantize(recipe("r-json", head + "{\"match\": \"*\","))
                                         << QStringList{"r-json.json", "JSON"} << QString();
        QTest::newRow("recipe from a newer QuantLens")
            << quantize(recipe("r-version", R"({"version": 9, "rules": []})"))
            << QStringList{"r-version.json", "version", "newer"} << QString();
        QTest::newRow("recipe unknown key") << quantize(recipe("r-key", R"({"version": 1, "rulez": [], "rules": []})"))
                                            << QStringList{"r-key.json", "rulez"} << QString();
        QTest::newRow("recipe rule without match")
            << quantize(recipe("r-match", head + R"({"method": "rtn", "bits": 4}]})"))
            << QStringList{"r-match.json", "rules[0]", "match"} << QString();
        QTest::newRow("recipe unknown parameter")
            << quantize(recipe("r-param",
                               head + R"({"match": "*", "method": "rtn", "bits": 4, "params": {"mse_clp": true}}]})"))
            << QStringList{"r-param.json", "rules[0].params", "mse_clp"} << QString();
        QTest::newRow("recipe parameter of the wrong type")
            << quantize(recipe("r-ptype",
                               head + R"({"match": "*", "method": "gptq", "bits": 4, "params": {"damp": "high"}}]})"))
            << QStringList{"r-ptype.json", "rules[0].params", "damp", "number"} << QString();
        QTest::newRow("recipe parameter out of range")
            << quantize(recipe("r-prange",
                               head + R"({"match": "*", "method": "gptq", "bits": 4, "params": {"damp": -1}}]})"))
            << QStringList{"r-prange.json", "rules[0].params", "damp", "[0, 1]"} << QString();
        QTest::newRow("recipe negative group")
            << quantize(recipe("r-group", head + R"({"match": "*", "method": "rtn", "bits": 4, "group": -32}]})"))
            << QStringList{"r-group.json", "rules[0].group"} << QString();
        QTest::newRow("recipe override naming no layer")
            << quantize(recipe("r-override", head + R"({"match": "*", "method": "rtn", "bits": 4}],
                                               "overrides": {"model.layers.7.mlp.up_proj": {"bits": 8}}})"))
            << QStringList{"r-override.json", "model.layers.7.mlp.up_proj", "no linear layer"} << QString();
        QTest::newRow("recipe unknown channel selection")
            << quantize(recipe("r-chan", head + R"({"match": "*", "method": "rtn", "bits": 4,
                                           "channels": [{"select": "loudest", "value": 1, "bits": 8}]}]})"))
            << QStringList{"r-chan.json", "loudest"} << QString();
        QTest::newRow("recipe unknown transform")
            << quantize(recipe("r-transform", R"({"version": 1, "transforms": [{"method": "spinquant"}],
                                                 "rules": [{"match": "*", "method": "rtn", "bits": 4}]})"))
            << QStringList{"r-transform.json", "transforms[0]", "spinquant"} << QString();
        QTest::newRow("recipe activation width out of range")
            << quantize(recipe("r-act", R"({"version": 1, "activations": {"bits": 1},
                                          "rules": [{"match": "*", "method": "rtn", "bits": 4}]})"))
            << QStringList{"r-act.json", "activations"} << QString();

        // Stores and run folders.
        spit(tmp("text.h5"), "this is not an HDF5 file\n");
        QTest::newRow("store that is not HDF5")
            << QStringList{"allocate", m_model, "--analysis", m_tmp.path() + "/text.h5", "--budget", "4bpw"}
            << QStringList{"text.h5"} << QString();
        QDir().mkpath(m_tmp.path() + "/emptyrun");
        QTest::newRow("run folder without its state")
            << QStringList{"eval", m_model, "--data", calib, "--ctx", "32", "--run", m_tmp.path() + "/emptyrun"}
            << QStringList{"emptyrun"} << QString();

        // Memory: a model that cannot fit, and a small one under a limit the user set.
        const QString big = m_tmp.path() + "/llama70b";
        writeSparse70b(big.toStdString());
        QFile::copy(m_model + "/tokenizer.model", big + "/tokenizer.model");
        QTest::newRow("model bigger than the memory available")
            << QStringList{"analyze",  big,    "--calib",       calib,    "--samples", "1",
                           "--seqlen", "1024", "--sensitivity", "fisher", "--out",     m_tmp.path() + "/big.h5"}
            << QStringList{"llama70b", "analysing needs an estimated", "diagonal Fisher", "is available ("}
            << QString();
        QTest::newRow("under QL_MEMORY_LIMIT")
            << QStringList{"quantize", m_model,
                           "--recipe", recipe("r-gptq", head + R"({"match": "*", "method": "gptq", "bits": 4}]})"),
                           "--calib",  calib,
                           "--out",    m_tmp.path() + "/limited"}
            << QStringList{"quantizing needs an estimated", "100 MiB is available (QL_MEMORY_LIMIT)"}
            << QStringLiteral("export QL_MEMORY_LIMIT=100M");
        QTest::newRow("whatif under QL_MEMORY_LIMIT")
            << QStringList{"whatif",   m_model,
                           "--recipe", recipe("r-whatif", head + R"({"match": "*", "method": "rtn", "bits": 4}]})"),
                           "--edit",   "model.layers.0.mlp.down_proj:bits=8",
                           "--data",   calib}
            << QStringList{"whatif needs an estimated", "100 MiB is available (QL_MEMORY_LIMIT)"}
            << QStringLiteral("export QL_MEMORY_LIMIT=100M");

        // Writes that cannot complete.
        QTest::newRow("disk full while writing a GGUF")
            << QStringList{"export",      m_model, "--format", "gguf",
                           "--gguf-type", "f32",   "--out",    m_tmp.path() + "/full.gguf"}
            << QStringList{"full.gguf"} << QStringLiteral("ulimit -f 16");
        QTest::newRow("disk full while writing a store")
            << QStringList{"analyze", m_model,    "--calib", calib,   "--samples",
                           "2",       "--seqlen", "32",      "--out", m_tmp.path() + "/full.h5"}
            << QStringList{"full.h5"} << QStringLiteral("ulimit -f 8");
        spit(tmp("afile"), "x");
        QTest::newRow("output folder is a file")
            << QStringList{"analyze", m_model,    "--calib", calib,   "--samples",
                           "2",       "--seqlen", "32",      "--out", m_tmp.path() + "/afile/x.h5"}
            << QStringList{"afile"} << QString();
        QTest::newRow("read-only file system")
            << QStringList{"quantize", m_model,
                           "--recipe", recipe("r-ok", head + R"({"match": "*", "method": "rtn", "bits": 4}]})"),
                           "--out",    "/proc/run"}
            << QStringList{"/proc/run"} << QString();
    }

    void refuses()
    {
        QFETCH(QStringList, args);
        QFETCH(QStringList, expect);
        QFETCH(QString, shell);
        const Run r = cli(args, shell);
        QVERIFY2(r.code > 0, qPrintable(QStringLiteral("exit %1 (-1: crashed or hung)\n%2").arg(r.code).arg(r.err)));
        const QStringList lines = r.err.trimmed().split('\n');
        QStringList errors;
        for (const QString& l : lines)
            if (l.startsWith(QStringLiteral("error: "))) errors << l;
        QVERIFY2(errors.size() == 1 && lines.last() == errors.first(),
                 qPrintable("expected exactly one error line, last:\n" + r.err));
        for (const QString& e : expect)
            QVERIFY2(errors.first().contains(e), qPrintable(e + " not in: " + errors.first()));
        // No partial output under the final name.
        for (const QString& a : args)
            if (a.endsWith(QStringLiteral("full.gguf")) || a.endsWith(QStringLiteral("full.h5")))
                QVERIFY2(!QFile::exists(a), qPrintable(a + " left behind"));
    }
};

QTEST_GUILESS_MAIN(TestCliRefusals)
#include "tst_cli_refusals.moc"
