// Sites as a type: every point's name against the list written out here, the canonical
// spelling of site names (what parses and what is refused), which linears read which site, and
// module names of linears, both ways.
#include "quantlens/model/model.h"
#include "quantlens/forward/site.h"

#include <QtTest>

namespace {

// Written out independently of the library's tables.
const char* const kNames[] = {"input",  "attn_in", "q",  "k",       "v",       "o_in",  "attn_out",
                              "mlp_in", "gate",    "up", "down_in", "mlp_out", "output"};
const char* const kModules[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
const char* const kSiteOfLinear[] = {"attn_in", "attn_in", "attn_in", "o_in", "mlp_in", "mlp_in", "down_in"};

} // namespace

class TestSite : public QObject {
    Q_OBJECT

private slots:
    void pointNamesRoundTrip()
    {
        QCOMPARE(int(std::size(kNames)), ql::kBlockPointCount);
        for (int i = 0; i < ql::kBlockPointCount; ++i) {
            const auto p = static_cast<ql::BlockPoint>(i);
            QCOMPARE(QString::fromLatin1(ql::pointName(p)), QString::fromLatin1(kNames[i]));
            QVERIFY(ql::parsePoint(kNames[i]) == p);
            const std::string name = std::string("layers.") + std::to_string(i + 7) + "." + kNames[i];
            QCOMPARE(QString::fromStdString(ql::siteName(i + 7, p)), QString::fromStdString(name));
            QVERIFY(ql::pointOfName(name) == p);
            auto any = ql::parseSite(name, 100, true);
            QVERIFY2(any.ok(), any.message().c_str());
            QCOMPARE(any->layer, i + 7);
            QVERIFY(any->point == p);
            QCOMPARE(QString::fromStdString(any->name()), QString::fromStdString(name));
            // Only the four inputs of linear layers are sites.
            const bool site = std::string(kNames[i]).ends_with("_in");
            QCOMPARE(ql::siteIndex(p) >= 0, site);
            QCOMPARE(ql::parseSite(name, 100).ok(), site);
        }
        QVERIFY(!ql::parsePoint("attn"));
        QVERIFY(!ql::parsePoint(""));
    }

    void siteNamesHaveOneSpelling_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("why");
        QTest::newRow("leading zero") << "layers.03.attn_in"
                                      << "no layer number";
        QTest::newRow("sign") << "layers.-1.attn_in"
                              << "no layer number";
        QTest::newRow("plus") << "layers.+1.attn_in"
                              << "no layer number";
        QTest::newRow("space") << "layers. 1.attn_in"
                               << "no layer number";
        QTest::newRow("no number") << "layers..attn_in"
                                   << "no layer number";
        QTest::newRow("no kind") << "layers.1"
                                 << "no layer number";
        QTest::newRow("prefix") << "model.layers.1.attn_in"
                                << "does not start with";
        QTest::newRow("kind") << "layers.1.attn"
                              << "\"attn\" is not a site";
        QTest::newRow("not an input") << "layers.1.attn_out"
                                      << "\"attn_out\" is not a site";
        QTest::newRow("beyond the model") << "layers.4.down_in"
                                          << "layer 4 does not exist";
        QTest::newRow("overflow") << "layers.99999999999.down_in"
                                  << "no layer number";
    }
    void siteNamesHaveOneSpelling()
    {
        QFETCH(QString, name);
        QFETCH(QString, why);
        auto s = ql::parseSite(name.toStdString(), 4);
        QVERIFY(!s.ok());
        const QString msg = QString::fromStdString(s.message());
        QVERIFY2(msg.contains(why) && msg.contains(name) && msg.contains(QStringLiteral("0 <= i < 4")),
                 qPrintable(msg));
        QVERIFY(ql::parseSite("layers.0.attn_in", 4).ok());
        QVERIFY(ql::parseSite("layers.3.down_in", 4).ok());
    }

    void linearsAndTheirSites()
    {
        int readers = 0;
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const auto kind = static_cast<ql::LinearKind>(k);
            QCOMPARE(QString::fromLatin1(ql::pointName(ql::siteOf(kind))), QString::fromLatin1(kSiteOfLinear[k]));
            const auto r = ql::linearsReading(ql::siteOf(kind));
            QVERIFY(std::find(r.begin(), r.end(), kind) != r.end());
        }
        for (const ql::BlockPoint p : ql::kSitePoints) {
            ql::LinearKind last = ql::LinearKind::Q;
            bool first = true;
            for (const ql::LinearKind k : ql::linearsReading(p)) {
                QVERIFY(ql::siteOf(k) == p);
                QVERIFY(first || int(k) > int(last)); // execution order
                last = k;
                first = false;
                ++readers;
            }
        }
        QCOMPARE(readers, ql::kLinearCount);
        QVERIFY(ql::linearsReading(ql::BlockPoint::AttnOut).empty());
    }

    void moduleNamesBothWays()
    {
        for (int block : {0, 5, 31}) {
            for (int k = 0; k < ql::kLinearCount; ++k) {
                const auto kind = static_cast<ql::LinearKind>(k);
                const std::string name = "model.layers." + std::to_string(block) + "." + kModules[k];
                QCOMPARE(QString::fromStdString(ql::Model::linearName(block, kind)), QString::fromStdString(name));
                for (const std::string& n : {name, name + ".weight"}) {
                    const auto parsed = ql::Model::parseLinearName(n);
                    QVERIFY2(parsed && parsed->first == block && parsed->second == kind, n.c_str());
                }
            }
        }
        for (const char* bad : {"model.layers.1.mlp.down", "model.layers.01.mlp.down_proj", "layers.1.mlp.down_proj",
                                "model.layers.x.mlp.down_proj", "model.layers.1.mlp.down_proj.bias",
                                "model.layers..mlp.up_proj", "model.embed_tokens"})
            QVERIFY2(!ql::Model::parseLinearName(bad), bad);
    }
};

QTEST_GUILESS_MAIN(TestSite)
#include "tst_site.moc"
