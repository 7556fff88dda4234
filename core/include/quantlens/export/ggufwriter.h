#pragma once

// GGUF version 3 files (docs/gguf.md): metadata key/values, a tensor table and the tensor data,
// each tensor in its own ggml type. Tensors are produced one at a time while the file is
// written, so a model larger than memory can be exported.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/export/ggmltype.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ql {

/// A metadata value; arrays hold strings, reals or integers.
using GgufValue = std::variant<uint32_t, int32_t, uint64_t, float, bool, std::string, std::vector<std::string>,
                               std::vector<float>, std::vector<int32_t>>;

/// One tensor: its name, its shape innermost first (an HF [out, in] weight is {in, out}), its
/// type, and the function that fills its bytes (ggmlRowBytes(type, dims[0]) per row).
struct GgufTensor {
    std::string name;
    std::vector<uint64_t> dims;
    GgmlType type = GgmlType::F32;
    std::function<Expected<void>(std::span<uint8_t>)> fill;
};

/// Collects metadata and tensors, then writes the file atomically (a temporary file in the
/// target's folder, renamed into place only when complete).
class GgufWriter {
public:
    /// Sets a metadata key (a second call replaces the value; keys keep their first position).
    void set(const std::string& key, GgufValue value);
    /// Adds a tensor; its bytes are produced during write().
    void addTensor(GgufTensor tensor);
    /// Bytes the tensor data will take (without alignment padding).
    uint64_t dataBytes() const;
    /// Writes the file; progress counts tensor bytes, cancel leaves no file behind.
    Expected<void> write(const std::string& path, Feedback* feedback = nullptr) const;

    /// The data alignment written as general.alignment.
    static constexpr uint64_t kAlignment = 32;

private:
    std::vector<std::pair<std::string, GgufValue>> m_meta;
    std::vector<GgufTensor> m_tensors;
};

} // namespace ql
