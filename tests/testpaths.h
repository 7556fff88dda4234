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

inline QString sharedModel(const QString& name)
{
    return modelsDir() + QLatin1Char('/') + name;
}
inline QString sharedFile(const QString& rel)
{
    return sharedDir() + QLatin1Char('/') + rel;
}

// A whole file as bytes (empty when it cannot be read).
inline std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
inline std::string readAll(const QString& path)
{
    return readAll(path.toStdString());
}

// Whitespace-separated token ids, as in the golden files.
inline std::vector<int32_t> readIds(const std::string& path)
{
    std::istringstream in(readAll(path));
    std::vector<int32_t> ids;
    int32_t v;
    while (in >> v) ids.push_back(v);
    return ids;
}
inline std::vector<int32_t> readIds(const QString& path)
{
    return readIds(path.toStdString());
}

/// Deterministic token windows (a linear congruential sequence of ids below vocab).
inline std::vector<std::vector<int32_t>> tokenWindows(int n, int len, int vocab, uint32_t seed)
{
    std::vector<std::vector<int32_t>> w(static_cast<size_t>(n));
    uint32_t x = seed;
    for (auto& s : w)
        for (int t = 0; t < len; ++t) {
            x = x * 1664525u + 1013904223u;
            s.push_back(int32_t((x >> 8) % uint32_t(vocab)));
        }
    return w;
}

} // namespace qltest

// Skips the current test with a message saying where the shared file was expected.
#define QL_REQUIRE_SHARED(path)                                                                                        \
    do {                                                                                                               \
        if (!QFileInfo::exists(path))                                                                                  \
            QSKIP(qPrintable(QStringLiteral("shared test file not found: %1 (set QL_SHARED_DIR or "                    \
                                            "QL_TEST_MODELS to the folder holding models/, data/, golden/)")           \
                                 .arg(path)));                                                                         \
    } while (0)
