// Inputs the fuzz targets (fuzz/, docs/fuzzing.md) once crashed a reader with: each is now
// refused with an error that names the file, in the ordinary build as under the sanitizers.
#include "project.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/text/sptokenizer.h"

#include <QDir>
#include <QtTest>

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace {

// Each target's reader: the error it gives for a file, or nothing when it accepts the file.
using Reader = std::function<std::optional<std::string>(const std::string& path)>;

template <class R>
std::optional<std::string> refusal(const R& result)
{
    return result ? std::nullopt : std::optional<std::string>(result.message());
}

const std::map<QString, Reader>& readers()
{
    static const std::map<QString, Reader> r = {
        {QStringLiteral("project"),
         [](const std::string& p) { return refusal(ql::Project::load(QString::fromStdString(p))); }},
        {QStringLiteral("store"), [](const std::string& p) { return refusal(ql::AnalysisStore::read(p)); }},
        {QStringLiteral("gguf"), [](const std::string& p) { return refusal(ql::GgufFile::open(p)); }},
        {QStringLiteral("sptokenizer"), [](const std::string& p) { return refusal(ql::SpTokenizer::fromFile(p)); }},
    };
    return r;
}

} // namespace

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
        const auto reader = readers().find(target);
        QVERIFY2(reader != readers().end(), qPrintable("no reader for regression inputs of " + target));
        const std::optional<std::string> message = reader->second(path);
        QVERIFY2(message, qPrintable("the damaged " + target + " input was accepted"));
        QVERIFY2(message->find(path) != std::string::npos, message->c_str());
        QVERIFY2(message->find('\n') == std::string::npos, message->c_str());
    }
};

QTEST_GUILESS_MAIN(TestFuzzRegressions)
#include "tst_fuzzregressions.moc"
