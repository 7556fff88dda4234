#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/model/safetensors.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ql {

/// One tensor to write: its bytes are little-endian values of dtype, row-major over shape.
struct TensorData {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

/// Builds a TensorData from typed values (copied as they are in memory, little-endian hosts).
template <class T>
TensorData makeTensorData(std::string name, DType dtype, std::vector<int64_t> shape, const T* values, size_t count)
{
    TensorData t{std::move(name), dtype, std::move(shape), {}};
    t.bytes.assign(reinterpret_cast<const uint8_t*>(values), reinterpret_cast<const uint8_t*>(values + count));
    return t;
}

/// Writes a safetensors file (header JSON with offsets and `__metadata__`, 8-byte aligned data)
/// to a temporary name beside `path` and renames it into place. Errors name the file and the
/// tensor (a byte count that does not match its shape, a duplicate name).
Expected<void> writeSafetensorsFile(const std::string& path, const std::vector<TensorData>& tensors,
                                    const std::map<std::string, std::string>& metadata = {});

} // namespace ql
