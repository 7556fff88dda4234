// SentencePiece tokenizer.model through the SentencePiece library, compared with ids from the
// reference Python binding (Debian python3-sentencepiece 0.1.97):
//   /usr/bin/python3 -c "import sentencepiece as s; p=s.SentencePieceProcessor(model_file=M); print(p.encode(TEXT))"
// and with the full golden WikiText-2 ids in ../shared/golden.
#include "fixturemodel.h"
#include "quantlens/text/sptokenizer.h"
#include "quantlens/text/tokenizer.h"
#include "testpaths.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <sstream>

using qltest::readAll;
using qltest::readIds;

class TestSpTokenizer : public QObject {
    Q_OBJECT

private slots:
    void goldenWikiText()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        const QString golden = qltest::sharedFile(QStringLiteral("golden/stories260k.wiki.test.ids"));
        QL_REQUIRE_SHARED(dir);
        QL_REQUIRE_SHARED(text);
        QL_REQUIRE_SHARED(golden);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY2(tok.ok(), tok.message().c_str());
        QCOMPARE((*tok)->kind(), std::string("sentencepiece"));
        QElapsedTimer timer;
        timer.start();
        const auto ids = (*tok)->encode(readAll(text));
        qInfo("encoded %zu ids in %lld ms", ids.size(), timer.elapsed());
        const auto expect = readIds(golden);
        QCOMPARE(expect.size(), size_t(809284));
        QCOMPARE(ids.size(), expect.size());
        for (size_t i = 0; i < ids.size(); ++i)
            if (ids[i] != expect[i])
                QFAIL(qPrintable(
                    QStringLiteral("first difference at id %1: %2 vs %3").arg(i).arg(ids[i]).arg(expect[i])));
    }

    void edgeCases_data()
    {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<QVector<int>>("ids");
        QTest::newRow("empty") << QByteArray("") << QVector<int>{};
        QTest::newRow("space") << QByteArray(" ") << QVector<int>{};
        QTest::newRow("three spaces") << QByteArray("   ") << QVector<int>{};
        QTest::newRow("word") << QByteArray("Hello") << QVector<int>{346, 306, 414};
        QTest::newRow("leading space") << QByteArray(" leading space")
                                       << QVector<int>{278, 411, 380, 299, 262, 427, 412, 331};
        QTest::newRow("double space") << QByteArray("double  space")
                                      << QVector<int>{279, 277, 430, 305, 262, 427, 412, 331};
        QTest::newRow("trailing space") << QByteArray("trailing space ")
                                        << QVector<int>{259, 420, 412, 290, 299, 262, 427, 412, 331};
        QTest::newRow("newline") << QByteArray("\n") << QVector<int>{410, 13};
        QTest::newRow("lines") << QByteArray("line one\nline two\n")
                               << QVector<int>{278, 271, 411, 353, 411, 13, 421, 271, 411, 259, 424, 414, 13};
        QTest::newRow("crlf") << QByteArray("crlf\r\nline") << QVector<int>{280, 420, 421, 431, 16, 13, 421, 271, 411};
        QTest::newRow("tab") << QByteArray("tab\there") << QVector<int>{259, 412, 430, 12, 260, 276};
        QTest::newRow("non-ascii byte fallback")
            << QByteArray("na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80")
            << QVector<int>{297, 412, 198, 178, 360, 280, 412, 431, 485, 410, 481, 410,
                            233, 160, 180, 231, 189, 175, 410, 243, 162, 155, 131};
        QTest::newRow("rare symbols") << QByteArray("zzz~~~^^^|||")
                                      << QVector<int>{410, 451, 451, 451, 510, 510, 510, 97, 97, 97, 506, 506, 506};
        QTest::newRow("story") << QByteArray("Once upon a time, there was a little girl named Lily.")
                               << QVector<int>{403, 407, 261, 378, 432, 383, 286, 261,
                                               376, 298, 315, 421, 395, 317, 426};
    }
    void edgeCases()
    {
        QFETCH(QByteArray, text);
        QFETCH(QVector<int>, ids);
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        QL_REQUIRE_SHARED(dir);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok.ok());
        const auto got = (*tok)->encode(std::string_view(text.constData(), size_t(text.size())));
        QCOMPARE(QVector<int>(got.begin(), got.end()), ids);
    }

    void specialsFromConfig()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        QL_REQUIRE_SHARED(dir);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok.ok());
        QCOMPARE((*tok)->bosId(), 1);
        QCOMPARE((*tok)->eosId(), 2);
        QVERIFY((*tok)->addsBos());
        QCOMPARE((*tok)->vocabSize(), 512);
        QCOMPARE((*tok)->tokenId("<s>"), 1);
        QCOMPARE((*tok)->tokenId("no such piece"), -1);
        const std::vector<int32_t> story{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
        QCOMPARE((*tok)->decode(story), std::string("Once upon a time, there was a little girl named Lily."));
    }

    void fixtureTokenizerRoundTrip()
    {
        QTemporaryDir tmp;
        std::string text;
        for (int i = 0; i < 200; ++i)
            text += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog.\n";
        std::string err;
        QVERIFY2(qlfix::writeSentencePieceTokenizer(tmp.path().toStdString(), text, 400, &err), err.c_str());
        auto tok = ql::loadTokenizer(tmp.path().toStdString());
        QVERIFY2(tok.ok(), tok.message().c_str());
        const std::string s = "the lazy fox 42 \xc3\xa9";
        const auto ids = (*tok)->encode(s);
        QVERIFY(!ids.empty());
        QCOMPARE((*tok)->decode(ids), s); // byte fallback makes é round-trip
        QVERIFY((*tok)->addsBos());
    }

    void badFiles()
    {
        QTemporaryDir tmp;
        auto none = ql::loadTokenizer(tmp.path().toStdString());
        QVERIFY(!none.ok());
        QVERIFY2(QString::fromStdString(none.message()).contains("no tokenizer"), none.message().c_str());
        std::ofstream(tmp.path().toStdString() + "/tokenizer.model") << "garbage";
        auto bad = ql::loadTokenizer(tmp.path().toStdString());
        QVERIFY(!bad.ok());
        QVERIFY2(QString::fromStdString(bad.message()).contains("tokenizer.model"), bad.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestSpTokenizer)
#include "tst_sptokenizer.moc"
