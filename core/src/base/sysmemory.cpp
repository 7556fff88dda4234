#include "quantlens/base/sysmemory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace ql {

namespace {

// A single number from a /proc or /sys file; -1 when absent or "max".
int64_t readNumber(const std::string& path)
{
    std::ifstream in(path);
    std::string s;
    if (!(in >> s) || s == "max") return -1;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    return end && *end == '\0' && v >= 0 ? int64_t(v) : -1;
}

// MemAvailable from /proc/meminfo, in bytes; -1 when missing.
int64_t memAvailable()
{
    std::ifstream in("/proc/meminfo");
    std::string key;
    long long kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
        if (key == "MemAvailable:") return int64_t(kb) * 1024;
    return -1;
}

// The memory limit of this process's cgroup less its current usage; -1 when unlimited. Version 2
// names them memory.max and memory.current; version 1 memory.limit_in_bytes and
// memory.usage_in_bytes, with a huge number for "no limit". Inside a container the group's own
// folder is mounted at the hierarchy's root, so the root is tried as well.
int64_t cgroupHeadroom()
{
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
        const bool v2 = line.rfind("0::", 0) == 0;
        const auto colon = line.find(":memory:");
        if (!v2 && colon == std::string::npos) continue;
        const std::string path = v2 ? line.substr(3) : line.substr(colon + 8);
        const std::string root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
        const std::string limitFile = v2 ? "/memory.max" : "/memory.limit_in_bytes";
        const std::string usageFile = v2 ? "/memory.current" : "/memory.usage_in_bytes";
        for (const std::string& dir : {root + path, root}) {
            const int64_t max = readNumber(dir + limitFile);
            if (max < 0 || max >= (int64_t(1) << 60)) continue;
            const int64_t current = readNumber(dir + usageFile);
            return std::max<int64_t>(0, max - std::max<int64_t>(0, current));
        }
    }
    return -1;
}

} // namespace

int64_t parseMemorySize(const std::string& text)
{
    if (text == "none") return -1;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || !std::isfinite(v) || v < 0) return -2;
    const std::string suffix(end);
    double scale = 1;
    if (suffix == "K" || suffix == "KiB")
        scale = 1024.0;
    else if (suffix == "M" || suffix == "MiB")
        scale = 1024.0 * 1024;
    else if (suffix == "G" || suffix == "GiB")
        scale = 1024.0 * 1024 * 1024;
    else if (suffix == "T" || suffix == "TiB")
        scale = 1024.0 * 1024 * 1024 * 1024;
    else if (!suffix.empty())
        return -2;
    if (v * scale > 9e18) return -2;
    return int64_t(v * scale);
}

AvailableMemory availableMemory()
{
    AvailableMemory a;
    if (const char* env = std::getenv("QL_MEMORY_LIMIT"); env && *env) {
        const int64_t limit = parseMemorySize(env);
        if (limit == -1) return {-1, "QL_MEMORY_LIMIT=none"};
        if (limit >= 0) a = {limit, "QL_MEMORY_LIMIT"};
    }
    const auto consider = [&a](int64_t bytes, const char* source) {
        if (bytes >= 0 && (a.bytes < 0 || bytes < a.bytes)) a = {bytes, source};
    };
    consider(memAvailable(), "MemAvailable");
    consider(cgroupHeadroom(), "the cgroup's memory limit");
    return a;
}

std::string formatBytes(int64_t bytes)
{
    char buf[64];
    const double b = double(bytes);
    if (b >= 1024.0 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        std::snprintf(buf, sizeof buf, "%.0f MiB", b / (1024.0 * 1024));
    else
        std::snprintf(buf, sizeof buf, "%.0f KiB", b / 1024.0);
    return buf;
}

} // namespace ql
