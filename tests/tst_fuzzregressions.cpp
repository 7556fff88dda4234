// Inputs the fuzz targets (fuzz/, docs/fuzzing.md) once crashed a reader with: each is now
// refused with an error that names the file, in the ordinary build as under the sanitizers.
#include "project.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/text/sptokenizer.h"

#include <QDir>
#include <QtTest>

class TestFuzzRegressions : public QObject {
    Q_OBJECT

private slots:
    void refused_data()
    {
        QTest::addColumn<QString>("file");
        const QString root = QStringLiteral(QL_SOURCE_DIR "/tests/data/fuzz/");
        int n = 0;
        for (const QString& target : QDir(root).entryList(QDir::Dirs | QDir::NoDotAndDotDot))
            for (const QString& f : QDir(root + target).entryList(QDir::Files)) {
                QTest::newRow(qPrintable(target + "/" + f)) << root + target + "/" + f;
                ++n;
            }
        QVERIFY2(n >= 4, "the regression inputs are missing from tests/data/fuzz");
    }

    void refused()
    {
        QFETCH(QString, file);
        const std::string path = file.toStdString();
        const QString target = QFileInfo(QFileInfo(file).path()).fileName();
        std::string message;
        if (target == QLatin1String("project")) {
            auto p = ql::Project::load(file);
            QVERIFY2(!p, "the damaged project file was accepted");
            message = p.message();
        } else if (target == QLatin1String("store")) {
            auto s = ql::AnalysisStore::read(path);
            QVERIFY2(!s, "the damaged store was accepted");
            message = s.message();
        } else if (target == QLatin1String("gguf")) {
            auto g = ql::GgufFile::open(path);
            QVERIFY2(!g, "the damaged GGUF file was accepted");
            message = g.message();
        } else if (target == QLatin1String("sptokenizer")) {
            auto t = ql::SpTokenizer::fromFile(path);
            QVERIFY2(!t, "the damaged SentencePiece model was accepted");
            message = t.message();
        } else {
            QFAIL(qPrintable("no reader for regression inputs of " + target));
        }
        QVERIFY2(message.find(path) != std::string::npos, message.c_str());
        QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestFuzzRegressions)
#include "tst_fuzzregressions.moc"
