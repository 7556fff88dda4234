#pragma once

#include <QByteArray>
#include <QDir>
#include <QString>

// Where the shared read-only models, data and golden files live: $QL_SHARED_DIR, else
// ../shared beside the source tree. $QL_TEST_MODELS overrides the models folder alone.
namespace qltest {

inline QString sharedDir()
{
    const QByteArray env = qgetenv("QL_SHARED_DIR");
    if (!env.isEmpty()) return QString::fromLocal8Bit(env);
    return QDir::cleanPath(QStringLiteral(QL_SOURCE_DIR "/../shared"));
}

inline QString modelsDir()
{
    const QByteArray env = qgetenv("QL_TEST_MODELS");
    if (!env.isEmpty()) return QString::fromLocal8Bit(env);
    return sharedDir() + QStringLiteral("/models");
}

inline QString sharedModel(const QString& name) { return modelsDir() + QLatin1Char('/') + name; }
inline QString sharedFile(const QString& rel) { return sharedDir() + QLatin1Char('/') + rel; }

} // namespace qltest

// Skips the current test with a message saying where the shared file was expected.
#define QL_REQUIRE_SHARED(path)                                                                    \
    do {                                                                                           \
        if (!QFileInfo::exists(path))                                                              \
            QSKIP(qPrintable(QStringLiteral("shared test file not found: %1 (set QL_SHARED_DIR or " \
                                            "QL_TEST_MODELS to the folder holding models/, data/, golden/)") \
                                 .arg(path)));                                                     \
    } while (0)
