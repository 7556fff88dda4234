#include "quantlens/export/ggufreader.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ql {

namespace {

class GgufIn {
public:
    GgufIn(const std::string& path, std::ifstream& f, uint64_t size) : m_path(path), m_f(f), m_size(size) {}
    Expected<void> raw(void* p, uint64_t n, const char* what)
    {
        if (n > m_size - m_pos)
            return makeError(m_path + ": truncated at byte " + std::to_string(m_pos) + " while reading " + what + " (" +
                             std::to_string(n) + " bytes wanted, " + std::to_string(m_size - m_pos) + " left)");
        m_f.read(static_cast<char*>(p), std::streamsize(n));
        if (!m_f) return makeError(m_path + ": read error at byte " + std::to_string(m_pos));
        m_pos += n;
        return {};
    }
    template <class T>
    Expected<T> le(const char* what)
    {
        T v{};
        QL_TRY(raw(&v, sizeof v, what));
        return v;
    }
    Expected<std::string> str(const char* what)
    {
        auto n = le<uint64_t>(what);
        if (!n) return n.error();
        if (*n > m_size - m_pos)
            return makeError(m_path + ": string of " + std::to_string(*n) + " bytes at byte " + std::to_string(m_pos) +
                             " runs past the end of the file (" + what + "); the file is corrupt");
        std::string s(size_t(*n), '\0');
        QL_TRY(raw(s.data(), *n, what));
        return s;
    }
    Error error(const std::string& msg) const
    {
        return makeError(m_path + ": byte " + std::to_string(m_pos) + ": " + msg);
    }
    uint64_t pos() const { return m_pos; }
    uint64_t size() const { return m_size; }

private:
    std::string m_path;
    std::ifstream& m_f;
    uint64_t m_size, m_pos = 0;
};

// GGUF value type ids.
enum GgufKind : uint32_t {
    kGkU8,
    kGkI8,
    kGkU16,
    kGkI16,
    kGkU32,
    kGkI32,
    kGkF32,
    kGkBOOL,
    kGkSTRING,
    kGkARRAY,
    kGkU64,
    kGkI64,
    kGkF64
};

int ggufScalarBytes(uint32_t k)
{
    switch (k) {
    case kGkU8:
    case kGkI8:
    case kGkBOOL: return 1;
    case kGkU16:
    case kGkI16: return 2;
    case kGkU32:
    case kGkI32:
    case kGkF32: return 4;
    case kGkU64:
    case kGkI64:
    case kGkF64: return 8;
    default: return 0;
    }
}

// An integer or real scalar of kind k, widened.
Expected<double> ggufScalar(GgufIn& in, uint32_t k)
{
    uint8_t b[8] = {};
    QL_TRY(in.raw(b, uint64_t(ggufScalarBytes(k)), "a metadata value"));
    auto get = [&](auto v) {
        std::memcpy(&v, b, sizeof v);
        return double(v);
    };
    switch (k) {
    case kGkU8: return get(uint8_t{});
    case kGkI8: return get(int8_t{});
    case kGkU16: return get(uint16_t{});
    case kGkI16: return get(int16_t{});
    case kGkU32: return get(uint32_t{});
    case kGkI32: return get(int32_t{});
    case kGkF32: return get(float{});
    case kGkBOOL: return get(uint8_t{});
    case kGkU64: return get(uint64_t{});
    case kGkI64: return get(int64_t{});
    case kGkF64: return get(double{});
    default: return in.error("unknown metadata type " + std::to_string(k));
    }
}

// Narrowing that reports what the target cannot hold instead of being undefined.
Expected<int32_t> toInt32(GgufIn& in, double d)
{
    if (!(d >= double(INT32_MIN) && d <= double(INT32_MAX))) {
        char text[32];
        std::snprintf(text, sizeof text, "%.0f", d);
        return in.error(std::string("integer ") + text + " does not fit the 32 bits QuantLens reads it as");
    }
    return int32_t(d);
}

float toFloat(double d)
{
    if (std::isfinite(d) && std::fabs(d) > double(FLT_MAX)) return d > 0 ? INFINITY : -INFINITY;
    return float(d);
}

uint64_t toUint64(double d)
{
    return d >= 18446744073709551616.0 ? UINT64_MAX : uint64_t(d);
}

Expected<GgufValue> ggufValue(GgufIn& in, uint32_t kind)
{
    if (kind == kGkSTRING) {
        auto s = in.str("a string value");
        if (!s) return s.error();
        return GgufValue(std::move(*s));
    }
    if (kind == kGkARRAY) {
        auto elem = in.le<uint32_t>("an array type");
        auto n = in.le<uint64_t>("an array length");
        if (!elem || !n) return in.error("truncated array header");
        if (*elem == kGkSTRING) {
            if (*n > in.size() / 8) return in.error("array of " + std::to_string(*n) + " strings cannot fit the file");
            std::vector<std::string> v;
            v.reserve(size_t(*n));
            for (uint64_t i = 0; i < *n; ++i) {
                auto s = in.str("a string array element");
                if (!s) return s.error();
                v.push_back(std::move(*s));
            }
            return GgufValue(std::move(v));
        }
        const int bytes = ggufScalarBytes(*elem);
        if (bytes == 0) return in.error("array of metadata type " + std::to_string(*elem) + " is not supported");
        if (*n > (in.size() - in.pos()) / uint64_t(bytes))
            return in.error("array of " + std::to_string(*n) + " values runs past the end of the file");
        if (*elem == kGkF32 || *elem == kGkF64) {
            std::vector<float> v(static_cast<size_t>(*n));
            for (auto& x : v) {
                auto d = ggufScalar(in, *elem);
                if (!d) return d.error();
                x = toFloat(*d);
            }
            return GgufValue(std::move(v));
        }
        std::vector<int32_t> v(static_cast<size_t>(*n));
        for (auto& x : v) {
            auto d = ggufScalar(in, *elem);
            if (!d) return d.error();
            auto i = toInt32(in, *d);
            if (!i) return i.error();
            x = *i;
        }
        return GgufValue(std::move(v));
    }
    auto d = ggufScalar(in, kind);
    if (!d) return d.error();
    switch (kind) {
    case kGkBOOL: return GgufValue(*d != 0);
    case kGkF32:
    case kGkF64: return GgufValue(toFloat(*d));
    case kGkI8:
    case kGkI16:
    case kGkI32:
    case kGkI64: {
        auto i = toInt32(in, *d);
        if (!i) return i.error();
        return GgufValue(*i);
    }
    default: return GgufValue(toUint64(*d));
    }
}

} // namespace

uint64_t GgufFile::Tensor::elements() const
{
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    return n;
}

Expected<GgufFile> GgufFile::open(const std::string& path)
{
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return makeError(path + ": cannot read the file: " + ec.message());
    std::ifstream f(path, std::ios::binary);
    if (!f) return makeError(path + ": cannot open the file");
    GgufIn in(path, f, size);
    char magic[4];
    QL_TRY(in.raw(magic, 4, "the magic"));
    if (std::memcmp(magic, "GGUF", 4) != 0)
        return makeError(path + ": not a GGUF file (the first bytes are not 'GGUF')");
    GgufFile g;
    g.m_path = path;
    g.m_fileSize = size;
    auto version = in.le<uint32_t>("the version");
    if (!version) return version.error();
    if (*version != 2 && *version != 3)
        return makeError(path + ": GGUF version " + std::to_string(*version) + "; this reader knows versions 2 and 3");
    g.m_version = *version;
    auto nTensors = in.le<uint64_t>("the tensor count");
    auto nMeta = in.le<uint64_t>("the metadata count");
    if (!nTensors) return nTensors.error();
    if (!nMeta) return nMeta.error();
    if (*nTensors > size / 24 || *nMeta > size / 12)
        return makeError(path + ": header claims " + std::to_string(*nTensors) + " tensors and " +
                         std::to_string(*nMeta) +
                         " metadata entries, more than the file can hold; the file is corrupt");
    for (uint64_t i = 0; i < *nMeta; ++i) {
        auto key = in.str("a metadata key");
        if (!key) return key.error();
        auto kind = in.le<uint32_t>("a metadata type");
        if (!kind) return kind.error();
        auto v = ggufValue(in, *kind);
        if (!v) return makeError(v.error().message + " (key " + *key + ")");
        g.m_meta.emplace_back(std::move(*key), std::move(*v));
    }
    uint64_t alignment = 32;
    if (const GgufValue* a = g.value("general.alignment")) {
        if (const auto* u = std::get_if<uint64_t>(a)) alignment = *u;
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            return makeError(path + ": general.alignment " + std::to_string(alignment) + " is not a power of two");
    }
    for (uint64_t i = 0; i < *nTensors; ++i) {
        Tensor t;
        auto name = in.str("a tensor name");
        if (!name) return name.error();
        t.name = std::move(*name);
        auto nd = in.le<uint32_t>("a tensor's dimension count");
        if (!nd) return nd.error();
        if (*nd == 0 || *nd > 4)
            return in.error("tensor " + t.name + " has " + std::to_string(*nd) + " dimensions; expected 1 to 4");
        uint64_t elements = 1;
        for (uint32_t d = 0; d < *nd; ++d) {
            auto v = in.le<uint64_t>("a tensor dimension");
            if (!v) return v.error();
            // Every size below is computed from the product; it must exist and no dimension be
            // empty (a zero row length would divide by zero when rows are counted).
            if (*v == 0 || *v > size * 8 || __builtin_mul_overflow(elements, *v, &elements) || elements > size * 8)
                return in.error("tensor " + t.name + " has dimension " + std::to_string(d) + " of " +
                                std::to_string(*v) + ", more elements than the file can hold");
            t.dims.push_back(*v);
        }
        auto type = in.le<uint32_t>("a tensor type");
        auto off = in.le<uint64_t>("a tensor offset");
        if (!type || !off) return in.error("truncated tensor table entry of " + t.name);
        t.type = GgmlType(*type);
        const GgmlTypeInfo* info = ggmlTypeInfo(t.type);
        if (!info)
            return makeError(path + ": tensor " + t.name + " has ggml type " + std::to_string(*type) +
                             ", which QuantLens does not read");
        if (t.dims[0] % uint64_t(info->blockSize) != 0)
            return makeError(path + ": tensor " + t.name + " rows of " + std::to_string(t.dims[0]) +
                             " elements do not fill " + info->name + " blocks");
        t.bytes = t.elements() / uint64_t(info->blockSize) * uint64_t(info->blockBytes);
        t.offset = *off;
        g.m_tensors.push_back(std::move(t));
    }
    const uint64_t dataStart = (in.pos() + alignment - 1) / alignment * alignment;
    for (Tensor& t : g.m_tensors) {
        t.offset += dataStart;
        if (t.offset > size || t.bytes > size - t.offset)
            return makeError(path + ": tensor " + t.name + " (" + std::to_string(t.bytes) + " bytes at byte " +
                             std::to_string(t.offset) + ") runs past the end of the file (" + std::to_string(size) +
                             " bytes); the file is truncated");
    }
    return g;
}

const GgufValue* GgufFile::value(const std::string& key) const
{
    for (const auto& [k, v] : m_meta)
        if (k == key) return &v;
    return nullptr;
}

const GgufFile::Tensor* GgufFile::tensor(const std::string& name) const
{
    for (const Tensor& t : m_tensors)
        if (t.name == name) return &t;
    return nullptr;
}

Expected<std::vector<uint8_t>> GgufFile::readRaw(const Tensor& t) const
{
    std::ifstream f(m_path, std::ios::binary);
    if (!f) return makeError(m_path + ": cannot open the file");
    std::vector<uint8_t> bytes(static_cast<size_t>(t.bytes));
    f.seekg(std::streamoff(t.offset));
    f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) return makeError(m_path + ": cannot read tensor " + t.name);
    return bytes;
}

Expected<std::vector<float>> GgufFile::readFloat(const std::string& name) const
{
    const Tensor* t = tensor(name);
    if (!t) return makeError(m_path + ": no tensor named " + name);
    auto raw = readRaw(*t);
    if (!raw) return raw.error();
    std::vector<float> out(static_cast<size_t>(t->elements()));
    const int64_t row = int64_t(t->dims[0]), rowBytes = ggmlRowBytes(t->type, row);
    for (uint64_t r = 0; r < t->elements() / uint64_t(row); ++r) {
        auto d = decodeGgmlRow(t->type,
                               std::span<const uint8_t>(raw->data() + r * uint64_t(rowBytes), size_t(rowBytes)),
                               std::span<float>(out.data() + r * uint64_t(row), size_t(row)));
        if (!d) return makeError(m_path + ": tensor " + name + ": " + d.error().message);
    }
    return out;
}

} // namespace ql
