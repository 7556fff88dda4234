#include "quantlens/model/safetensors.h"

#include <nlohmann/json.hpp>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ql {

namespace {

struct DTypeEntry {
    DType type;
    const char* name;
    size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2}, {DType::F64, "F64", 8},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4},   {DType::I16, "I16", 2},   {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::Bool, "BOOL", 1},
};

const DTypeEntry* findDType(const std::string& name)
{
    for (const auto& e : kDTypes)
        if (name == e.name) return &e;
    return nullptr;
}

} // namespace

const char* dtypeName(DType t)
{
    for (const auto& e : kDTypes)
        if (e.type == t) return e.name;
    return "?";
}

size_t dtypeSize(DType t)
{
    for (const auto& e : kDTypes)
        if (e.type == t) return e.size;
    return 0;
}

int64_t TensorInfo::numel() const
{
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string TensorInfo::shapeString() const
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return makeError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return makeError(path + ": cannot stat: " + std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return makeError(path + ": is a directory, expected a file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile);
    f->m_path = path;
    f->m_size = static_cast<size_t>(st.st_size);
    if (f->m_size > 0) {
        void* p = ::mmap(nullptr, f->m_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            return makeError(path + ": cannot map into memory: " + std::strerror(e));
        }
        f->m_data = static_cast<const std::byte*>(p);
    }
    ::close(fd);
    return f;
}

MappedFile::~MappedFile()
{
    if (m_data) ::munmap(const_cast<std::byte*>(m_data), m_size);
}

Expected<SafetensorsFile> SafetensorsFile::open(const std::string& path)
{
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    const auto& file = *mapped;
    if (file->size() < 8)
        return makeError(path + ": truncated: " + std::to_string(file->size()) +
                         " bytes, a safetensors file starts with an 8-byte header length");
    uint64_t headerLen = 0;
    std::memcpy(&headerLen, file->data(), 8);
    if constexpr (std::endian::native == std::endian::big) headerLen = __builtin_bswap64(headerLen);
    if (headerLen > file->size() - 8)
        return makeError(path + ": truncated or not a safetensors file: header length " + std::to_string(headerLen) +
                         " exceeds the file size " + std::to_string(file->size()));

    SafetensorsFile st;
    st.m_file = file;
    st.m_headerSize = headerLen;
    const char* headerBegin = reinterpret_cast<const char*>(file->data() + 8);
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(headerBegin, headerBegin + headerLen);
    } catch (const std::exception& e) {
        return makeError(path + ": header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) return makeError(path + ": header is not a JSON object");

    const std::byte* dataBegin = file->data() + 8 + headerLen;
    const size_t dataSize = file->size() - 8 - headerLen;
    try {
        for (auto it = header.begin(); it != header.end(); ++it) {
            const std::string& name = it.key();
            const auto& v = it.value();
            if (name == "__metadata__") {
                if (v.is_object())
                    for (auto m = v.begin(); m != v.end(); ++m)
                        if (m.value().is_string()) st.m_metadata[m.key()] = m.value().get<std::string>();
                continue;
            }
            const std::string where = path + ": tensor " + name;
            if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
                return makeError(where + ": entry needs dtype, shape and data_offsets");
            const std::string dt = v["dtype"].get<std::string>();
            const DTypeEntry* e = findDType(dt);
            if (!e) return makeError(where + ": unknown dtype '" + dt + "'");
            TensorInfo t;
            t.name = name;
            t.file = path;
            t.dtype = e->type;
            for (const auto& d : v["shape"]) {
                const int64_t dim = d.get<int64_t>();
                if (dim < 0) return makeError(where + ": negative dimension in shape");
                t.shape.push_back(dim);
            }
            const auto& off = v["data_offsets"];
            if (!off.is_array() || off.size() != 2) return makeError(where + ": data_offsets must be [begin, end]");
            const uint64_t begin = off[0].get<uint64_t>();
            const uint64_t end = off[1].get<uint64_t>();
            if (begin > end) return makeError(where + ": data_offsets begin > end");
            if (end > dataSize)
                return makeError(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 "] run past the end of the data (" + std::to_string(dataSize) +
                                 " bytes); the file is truncated or corrupt");
            const uint64_t expect = static_cast<uint64_t>(t.numel()) * e->size;
            if (end - begin != expect)
                return makeError(where + ": shape " + t.shapeString() + " of " + dt + " needs " +
                                 std::to_string(expect) + " bytes but data_offsets span " +
                                 std::to_string(end - begin));
            t.data = dataBegin + begin;
            t.nbytes = end - begin;
            st.m_tensors.push_back(std::move(t));
        }
    } catch (const std::exception& e) {
        return makeError(path + ": malformed header entry: " + e.what());
    }
    return st;
}

float halfToFloat(uint16_t h)
{
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: normalise the mantissa
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    return std::bit_cast<float>(bits);
}

uint16_t floatToHalf(float f)
{
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) // inf or nan
        return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u); // rounds to inf
    if (absx < 0x38800000u) {                                              // subnormal or zero in half
        const float a = std::bit_cast<float>(absx);
        // 2^-24 is the half subnormal step; nearbyint rounds half to even.
        const uint32_t m = static_cast<uint32_t>(__builtin_nearbyintf(a * 16777216.0f));
        return static_cast<uint16_t>(sign | m);
    }
    const uint32_t e = ((absx >> 23) - 127 + 15) << 10;
    const uint32_t m = absx & 0x7fffffu;
    uint32_t h = e | (m >> 13);
    const uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

void convertToFloat(DType t, const std::byte* src, float* dst, size_t n)
{
    switch (t) {
    case DType::F32: std::memcpy(dst, src, n * 4); break;
    case DType::BF16:
        for (size_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, src + 2 * i, 2);
            dst[i] = std::bit_cast<float>(static_cast<uint32_t>(v) << 16);
        }
        break;
    case DType::F16:
        for (size_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, src + 2 * i, 2);
            dst[i] = halfToFloat(v);
        }
        break;
    case DType::F64:
        for (size_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, src + 8 * i, 8);
            dst[i] = static_cast<float>(v);
        }
        break;
    default: std::memset(dst, 0, n * 4); break;
    }
}

} // namespace ql
