#pragma once

#include <QByteArray>
#include <QDir>
#include <QString>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

// A whole file as bytes (empty when it cannot be read).
inline std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
inline std::string readAll(const QString& path) { return readAll(path.toStdString()); }

// Whitespace-separated token ids, as in the golden files.
inline std::vector<int32_t> readIds(const std::string& path)
{
    std::istringstream in(readAll(path));
    std::vector<int32_t> ids;
    int32_t v;
    while (in >> v) ids.push_back(v);
    return ids;
}
inline std::vector<int32_t> readIds(const QString& path) { return readIds(path.toStdString()); }

} // namespace qltest

// Skips the current test with a message saying where the shared file was expected.
#define QL_REQUIRE_SHARED(path)                                                                    \
    do {                                                                                           \
        if (!QFileInfo::exists(path))                                                              \
            QSKIP(qPrintable(QStringLiteral("shared test file not found: %1 (set QL_SHARED_DIR or " \
                                            "QL_TEST_MODELS to the folder holding models/, data/, golden/)") \
                                 .arg(path)));                                                     \
    } while (0)
