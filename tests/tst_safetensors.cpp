// Model loading: dtype conversion, sharding, tied/untied heads, and every bad-input case of
// issue "Foundations" item 3, each checked for a message that names the problem.
#include "fixturemodel.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensors.h"

#include "testpaths.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

using qltest::readAll;

namespace fs = std::filesystem;

class TestSafetensors : public QObject {
    Q_OBJECT

    static void writeAll(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

    // A small valid model folder to corrupt.
    static std::string makeModel(const QTemporaryDir& tmp, qlfix::ModelSpec spec = {})
    {
        const std::string dir = tmp.path().toStdString() + "/m";
        std::string err;
        if (!qlfix::writeModel(dir, spec, &err)) qFatal("%s", err.c_str());
        return dir;
    }
    // Rewrites the safetensors header of dir's model with edit applied to the parsed JSON.
    template <class F>
    static void editHeader(const std::string& dir, F edit)
    {
        const std::string path = dir + "/model.safetensors";
        std::string bytes = readAll(path);
        uint64_t n;
        std::memcpy(&n, bytes.data(), 8);
        auto j = nlohmann::json::parse(bytes.substr(8, n));
        edit(j);
        std::string h = j.dump();
        while (h.size() % 8) h += ' ';
        const uint64_t len = h.size();
        std::string out(reinterpret_cast<const char*>(&len), 8);
        out += h;
        out += bytes.substr(8 + n);
        writeAll(path, out);
    }

private slots:
    void halfConversionMatchesCompiler()
    {
        // Every one of the 65536 half bit patterns against the compiler's own _Float16.
        for (uint32_t h = 0; h < 65536; ++h) {
            _Float16 ref;
            const uint16_t bits = static_cast<uint16_t>(h);
            std::memcpy(&ref, &bits, 2);
            const float expect = static_cast<float>(ref);
            const float got = ql::halfToFloat(bits);
            if (std::isnan(expect))
                QVERIFY(std::isnan(got));
            else
                QCOMPARE(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(expect));
        }
        // float → half rounding against the compiler on a sweep of values including ties and subnormals.
        for (int i = -200000; i <= 200000; ++i) {
            const float f = std::ldexp(static_cast<float>(i) * 0.7310585f, (i % 37) - 20);
            const _Float16 ref = static_cast<_Float16>(f);
            uint16_t refBits;
            std::memcpy(&refBits, &ref, 2);
            QCOMPARE(ql::floatToHalf(f), refBits);
        }
    }

    void bf16Conversion()
    {
        QCOMPARE(ql::floatToBf16(1.0f), uint16_t(0x3f80));
        QCOMPARE(ql::floatToBf16(-2.0f), uint16_t(0xc000));
        // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1+2^-7: ties go to even (1.0).
        QCOMPARE(ql::floatToBf16(1.0f + 1.0f / 256), uint16_t(0x3f80));
        QCOMPARE(ql::floatToBf16(1.0f + 3.0f / 256), uint16_t(0x3f82));
        const uint16_t b = 0x4049; // 3.140625
        float f;
        ql::convertToFloat(ql::DType::BF16, reinterpret_cast<const std::byte*>(&b), &f, 1);
        QCOMPARE(f, 3.140625f);
    }

    void loadsEveryDtype_data()
    {
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<double>("tolerance");
        QTest::newRow("F32") << "F32" << 0.0;
        QTest::newRow("F16") << "F16" << 1.0 / 1024;
        QTest::newRow("BF16") << "BF16" << 1.0 / 128;
    }
    void loadsEveryDtype()
    {
        QFETCH(QString, dtype);
        QFETCH(double, tolerance);
        QTemporaryDir tmp;
        qlfix::ModelSpec spec;
        spec.dtype = dtype.toStdString();
        const std::string dir = makeModel(tmp, spec);
        auto m = ql::Model::open(dir);
        QVERIFY2(m.ok(), m.message().c_str());
        const auto expect = qlfix::makeWeights(spec);
        for (const auto& t : expect) {
            auto got = m->tensorAsFloat(t.name);
            QVERIFY(got.ok());
            QCOMPARE(size_t(got->size()), t.data.size());
            for (size_t i = 0; i < t.data.size(); ++i) {
                const double e = t.data[i], g = got->data()[i];
                if (std::abs(g - e) > tolerance * std::max(1.0, std::abs(e)))
                    QFAIL(qPrintable(QStringLiteral("%1[%2]: %3 vs %4").arg(t.name.c_str()).arg(i).arg(g).arg(e)));
            }
        }
        QCOMPARE(m->linearLayers().size(), size_t(spec.layers * 7));
        QCOMPARE(m->linearLayers()[6].name, std::string("model.layers.0.mlp.down_proj"));
        QCOMPARE(m->linearLayers()[6].inFeatures, int64_t(172));
        QCOMPARE(m->linearLayers()[6].site, std::string("layers.0.down_in"));
    }

    void shardedEqualsSingle()
    {
        QTemporaryDir tmp;
        qlfix::ModelSpec spec;
        spec.tieEmbeddings = false;
        const std::string single = makeModel(tmp, spec);
        const std::string sharded = tmp.path().toStdString() + "/sharded";
        fs::create_directories(sharded);
        fs::copy_file(single + "/config.json", sharded + "/config.json");
        auto tensors = qlfix::makeWeights(spec);
        const size_t half = tensors.size() / 2;
        std::vector<qlfix::Tensor> a(tensors.begin(), tensors.begin() + half), b(tensors.begin() + half, tensors.end());
        QVERIFY(qlfix::writeSafetensors(sharded + "/model-00001-of-00002.safetensors", a, {}));
        QVERIFY(qlfix::writeSafetensors(sharded + "/model-00002-of-00002.safetensors", b, {}));
        nlohmann::json index;
        for (const auto& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
        for (const auto& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
        writeAll(sharded + "/model.safetensors.index.json", index.dump());
        auto m1 = ql::Model::open(single);
        auto m2 = ql::Model::open(sharded);
        QVERIFY2(m2.ok(), m2.message().c_str());
        QCOMPARE(m2->weightFiles().size(), size_t(2));
        QCOMPARE(m2->parameterCount(), m1->parameterCount());
        auto h1 = m1->lmHead();
        auto h2 = m2->lmHead();
        QVERIFY(h1->isApprox(*h2, 0.f));
        auto e = m1->tensorAsFloat("model.embed_tokens.weight");
        QVERIFY(!h1->isApprox(*e)); // untied: the head is its own tensor
    }

    void tiedHeadIsEmbedding()
    {
        QTemporaryDir tmp;
        auto m = ql::Model::open(makeModel(tmp));
        QVERIFY(m.ok());
        QVERIFY(m->config().tieEmbeddings);
        QVERIFY(m->lmHead()->isApprox(*m->tensorAsFloat("model.embed_tokens.weight"), 0.f));
    }

    void nonFiniteWeightsAreRefused_data()
    {
        QTest::addColumn<QString>("dtype");
        QTest::newRow("F32") << "F32";
        QTest::newRow("BF16") << "BF16";
        QTest::newRow("F16") << "F16";
    }
    void nonFiniteWeightsAreRefused()
    {
        // NaN in a block's q_proj, +Inf in one embedding row, -Inf in the final norm: each is
        // refused when it is first converted, naming the tensor, the element and the file.
        QFETCH(QString, dtype);
        QTemporaryDir tmp;
        qlfix::ModelSpec spec;
        spec.dtype = dtype.toStdString();
        auto tensors = qlfix::makeWeights(spec);
        for (auto& t : tensors) {
            if (t.name == "model.layers.1.self_attn.q_proj.weight") t.data[size_t(3 * spec.hidden + 17)] = NAN;
            if (t.name == "model.embed_tokens.weight") t.data[size_t(5 * spec.hidden + 2)] = INFINITY;
            if (t.name == "model.norm.weight") t.data[7] = -INFINITY;
        }
        const std::string dir = tmp.path().toStdString() + "/nan";
        fs::create_directories(dir);
        writeAll(dir + "/config.json", qlfix::configJson(spec));
        std::string err;
        QVERIFY2(qlfix::writeSafetensors(dir + "/model.safetensors", tensors, {}, &err), err.c_str());

        auto m = ql::Model::open(dir); // checks are lazy: opening a 7B model reads no weights
        QVERIFY2(m.ok(), m.message().c_str());
        ql::BlockWeights b;
        QVERIFY(m->block(0, b).ok());
        const auto bad = m->block(1, b);
        QVERIFY(!bad.ok());
        const QString msg = QString::fromStdString(bad.message());
        for (const char* part :
             {"model.safetensors: tensor model.layers.1.self_attn.q_proj.weight holds NaN at [3, 17]",
              "expected finite weights"})
            QVERIFY2(msg.contains(QLatin1String(part)), qPrintable(msg));
        QVERIFY(!m->block(1, b).ok()); // refused every time, not only the first

        Eigen::MatrixXf x;
        QVERIFY(m->embed(std::vector<int32_t>{4, 6}, x).ok());
        const auto row = m->embed(std::vector<int32_t>{4, 5}, x);
        QVERIFY2(!row.ok() &&
                     QString::fromStdString(row.message()).contains("model.embed_tokens.weight holds +Inf at [5, 2]"),
                 row.message().c_str());
        const auto norm = m->finalNorm();
        QVERIFY2(!norm.ok() && QString::fromStdString(norm.message()).contains("model.norm.weight holds -Inf at [7]"),
                 norm.message().c_str());

        // Every offending tensor is listed by a full scan, once each.
        const auto listed = m->nonFiniteTensors();
        QCOMPARE(listed.size(), size_t(3));
        // A user who asks to go on gets the values as stored.
        m->allowNonFinite(true);
        QVERIFY(m->block(1, b).ok());
        QVERIFY(std::isnan(b[ql::LinearKind::Q](3, 17)));
        QVERIFY(m->embed(std::vector<int32_t>{5}, x).ok());
        QVERIFY(std::isinf(x(2, 0)));
    }

    void badInput_data()
    {
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("expect");
        QTest::newRow("missing tensor") << 0 << "missing tensor model.layers.1.mlp.up_proj.weight";
        QTest::newRow("shape mismatch")
            << 1 << "model.layers.0.self_attn.k_proj.weight has shape [33, 64], expected [32, 64]";
        QTest::newRow("unknown dtype") << 2 << "unknown dtype 'F8_E9M9'";
        QTest::newRow("truncated data") << 3 << "run past the end of the data";
        QTest::newRow("offsets past end") << 4 << "data_offsets [0, 99999999] run past the end";
        QTest::newRow("unsupported arch") << 5 << "unsupported architecture model_type 'gpt2'";
        QTest::newRow("header longer than file") << 6 << "header length";
        QTest::newRow("header not json") << 7 << "header is not valid JSON";
        QTest::newRow("no weights") << 8 << "no safetensors weights";
        QTest::newRow("not a folder") << 9 << "not a folder";
        QTest::newRow("no config") << 10 << "config.json: cannot open";
        QTest::newRow("integer weights") << 11 << "model.norm.weight has dtype I32, expected F32, F16 or BF16";
        QTest::newRow("tiny file") << 12 << "truncated: 3 bytes";
        QTest::newRow("bytes do not fit shape") << 13 << "needs 256 bytes but data_offsets span";
        QTest::newRow("bad config value") << 14 << "num_attention_heads 4 is not a multiple of num_key_value_heads 3";
    }
    void badInput()
    {
        QFETCH(int, kind);
        QFETCH(QString, expect);
        QTemporaryDir tmp;
        std::string dir = makeModel(tmp);
        const std::string st = dir + "/model.safetensors";
        switch (kind) {
        case 0: editHeader(dir, [](auto& j) { j.erase("model.layers.1.mlp.up_proj.weight"); }); break;
        case 1:
            editHeader(dir, [](auto& j) {
                auto& t = j["model.layers.0.self_attn.k_proj.weight"];
                t["shape"] = {33, 64};
                t["data_offsets"][1] = t["data_offsets"][0].template get<uint64_t>() + 33 * 64 * 4;
            });
            break;
        case 2: editHeader(dir, [](auto& j) { j["model.norm.weight"]["dtype"] = "F8_E9M9"; }); break;
        case 3: {
            std::string b = readAll(st);
            writeAll(st, b.substr(0, b.size() - 1000));
            break;
        }
        case 4: editHeader(dir, [](auto& j) { j["model.norm.weight"]["data_offsets"] = {0, 99999999}; }); break;
        case 5: {
            auto cfg = nlohmann::json::parse(readAll(dir + "/config.json"));
            cfg["model_type"] = "gpt2";
            writeAll(dir + "/config.json", cfg.dump());
            break;
        }
        case 6: {
            std::string b = readAll(st);
            const uint64_t huge = b.size() * 2;
            std::memcpy(b.data(), &huge, 8);
            writeAll(st, b);
            break;
        }
        case 7: {
            std::string b = readAll(st);
            b[8] = 'x';
            writeAll(st, b);
            break;
        }
        case 8: fs::remove(st); break;
        case 9: dir += "/config.json"; break;
        case 10: fs::remove(dir + "/config.json"); break;
        case 11: editHeader(dir, [](auto& j) { j["model.norm.weight"]["dtype"] = "I32"; }); break;
        case 12: writeAll(st, "abc"); break;
        case 13:
            editHeader(dir, [](auto& j) {
                j["model.norm.weight"]["shape"] = {64, 1};
                j["model.norm.weight"]["data_offsets"][1] =
                    j["model.norm.weight"]["data_offsets"][0].template get<uint64_t>() + 100;
            });
            break;
        case 14: {
            auto cfg = nlohmann::json::parse(readAll(dir + "/config.json"));
            cfg["num_key_value_heads"] = 3;
            writeAll(dir + "/config.json", cfg.dump());
            break;
        }
        }
        auto m = ql::Model::open(dir);
        QVERIFY(!m.ok());
        const QString msg = QString::fromStdString(m.message());
        QVERIFY2(msg.contains(expect), qPrintable(msg));
        if (kind <= 4 || kind == 6 || kind == 7 || (kind >= 11 && kind <= 13)) // names the file
            QVERIFY2(msg.contains(QStringLiteral("model.safetensors")) || msg.contains(QString::fromStdString(dir)),
                     qPrintable(msg));
    }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
