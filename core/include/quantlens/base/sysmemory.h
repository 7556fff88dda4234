#pragma once

#include <cstdint>
#include <string>

namespace ql {

/// Memory this process may still use, and what bounds it.
struct AvailableMemory {
    int64_t bytes = -1; ///< -1: unknown or unlimited (QL_MEMORY_LIMIT=none): nothing is refused
    std::string source; ///< "MemAvailable", "the cgroup's memory limit" or "QL_MEMORY_LIMIT"
};

/// The least of the kernel's MemAvailable, the cgroup's memory limit less its usage (v1 or v2), and
/// QL_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix, powers of 1024; "none" turns the guard off).
AvailableMemory availableMemory();

/// Parses a QL_MEMORY_LIMIT value: bytes, or a number with K/M/G/T (powers of 1024); -1 for
/// "none"; -2 when the text is not a size.
int64_t parseMemorySize(const std::string& text);

/// "12.3 GiB", "512 MiB": a byte count for messages.
std::string formatBytes(int64_t bytes);

} // namespace ql
