#pragma once

#include "quantlens/base/expected.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ql {

/// Element types found in safetensors files.
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

/// The safetensors spelling of a dtype ("F32", "BF16", ...).
const char* dtypeName(DType t);
/// Bytes per element of a dtype.
size_t dtypeSize(DType t);

/// One tensor inside a mapped safetensors file; data points into the mapping.
struct TensorInfo {
    std::string name;
    std::string file;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const std::byte* data = nullptr;
    size_t nbytes = 0;

    /// Product of the shape.
    int64_t numel() const;
    /// "[r, c]" for messages.
    std::string shapeString() const;
};

/// A read-only memory mapping of a whole file; the pages load lazily as they are touched.
class MappedFile {
public:
    /// Maps path; errors name the file and the OS reason.
    static Expected<std::shared_ptr<MappedFile>> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return m_data; }
    size_t size() const { return m_size; }
    const std::string& path() const { return m_path; }

private:
    MappedFile() = default;
    const std::byte* m_data = nullptr;
    size_t m_size = 0;
    std::string m_path;
};

/// A parsed and validated safetensors file: header JSON, tensor table, metadata.
class SafetensorsFile {
public:
    /// Maps and validates path (header size, JSON, dtypes, shapes against byte ranges, bounds).
    static Expected<SafetensorsFile> open(const std::string& path);

    const std::vector<TensorInfo>& tensors() const { return m_tensors; }
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    const std::string& path() const { return m_file->path(); }
    /// Bytes of the header JSON.
    size_t headerSize() const { return m_headerSize; }

private:
    std::shared_ptr<MappedFile> m_file;
    std::vector<TensorInfo> m_tensors;
    std::map<std::string, std::string> m_metadata;
    size_t m_headerSize = 0;
};

/// Converts n elements of a floating-point dtype to fp32 (F32, F16, BF16, F64).
void convertToFloat(DType t, const std::byte* src, float* dst, size_t n);
/// Half-precision bits to float, exact for every value including subnormals and NaN.
float halfToFloat(uint16_t h);
/// Float to half-precision bits, round to nearest even.
uint16_t floatToHalf(float f);
/// f rounded to the nearest half-precision value (what an fp16 store and load leave of it).
inline float roundToHalf(float f)
{
    return halfToFloat(floatToHalf(f));
}
/// Float to bfloat16 bits, round to nearest even (NaN stays a quiet NaN). Inline: the bf16
/// products round every operand with it.
inline uint16_t floatToBf16(float f)
{
    uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
}

} // namespace ql
