#pragma once

// Reads GGUF files (version 2 and 3): metadata, the tensor table, and tensors decoded to fp32.

#include "quantlens/base/expected.h"
#include "quantlens/export/ggmltype.h"
#include "quantlens/export/ggufwriter.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ql {

/// An opened GGUF file. Integer metadata arrays are read as int32, every other integer key as
/// uint64 or int32 as its sign asks, reals as float.
class GgufFile {
public:
    /// One entry of the tensor table.
    struct Tensor {
        std::string name;
        std::vector<uint64_t> dims; ///< innermost first
        GgmlType type = GgmlType::F32;
        uint64_t offset = 0; ///< from the start of the file
        uint64_t bytes = 0;
        uint64_t elements() const;
    };

    /// Parses the header, metadata and tensor table; errors name the file, the byte offset and
    /// what was expected (a truncated or corrupt file never reads out of bounds).
    static Expected<GgufFile> open(const std::string& path);

    const std::string& path() const { return m_path; }
    uint32_t version() const { return m_version; }
    /// Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return m_meta; }
    /// A metadata value, or nullptr.
    const GgufValue* value(const std::string& key) const;
    const std::vector<Tensor>& tensors() const { return m_tensors; }
    /// A tensor's table entry, or nullptr.
    const Tensor* tensor(const std::string& name) const;
    /// The tensor's raw bytes.
    Expected<std::vector<uint8_t>> readRaw(const Tensor& t) const;
    /// The tensor decoded to fp32, innermost dimension fastest (a weight's rows, one after another).
    Expected<std::vector<float>> readFloat(const std::string& name) const;

private:
    std::string m_path;
    uint32_t m_version = 0;
    uint64_t m_fileSize = 0;
    std::vector<std::pair<std::string, GgufValue>> m_meta;
    std::vector<Tensor> m_tensors;
};

} // namespace ql
