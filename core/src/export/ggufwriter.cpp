#include "quantlens/export/ggufwriter.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace ql {

namespace {

// GGUF metadata value type ids.
enum : uint32_t {
    kGgufU32 = 4,
    kGgufI32 = 5,
    kGgufF32 = 6,
    kGgufBool = 7,
    kGgufString = 8,
    kGgufArray = 9,
    kGgufU64 = 10
};

class GgufOut {
public:
    explicit GgufOut(std::ofstream& f) : m_f(f) {}
    void raw(const void* p, size_t n)
    {
        m_f.write(static_cast<const char*>(p), std::streamsize(n));
        m_pos += n;
    }
    template <class T>
    void le(T v) // the machines QuantLens runs on are little-endian, as GGUF is
    {
        raw(&v, sizeof v);
    }
    void str(const std::string& s)
    {
        le<uint64_t>(s.size());
        raw(s.data(), s.size());
    }
    void pad(uint64_t align)
    {
        static const char zeros[64] = {};
        const uint64_t n = (align - m_pos % align) % align;
        raw(zeros, size_t(n));
    }
    uint64_t pos() const { return m_pos; }

private:
    std::ofstream& m_f;
    uint64_t m_pos = 0;
};

struct GgufValueWriter {
    GgufOut& o;
    void operator()(uint32_t v) { o.le(kGgufU32), o.le(v); }
    void operator()(int32_t v) { o.le(kGgufI32), o.le(v); }
    void operator()(uint64_t v) { o.le(kGgufU64), o.le(v); }
    void operator()(float v) { o.le(kGgufF32), o.le(v); }
    void operator()(bool v) { o.le(kGgufBool), o.le<uint8_t>(v ? 1 : 0); }
    void operator()(const std::string& v) { o.le(kGgufString), o.str(v); }
    void operator()(const std::vector<std::string>& v)
    {
        o.le(kGgufArray), o.le(kGgufString), o.le<uint64_t>(v.size());
        for (const auto& s : v) o.str(s);
    }
    void operator()(const std::vector<float>& v)
    {
        o.le(kGgufArray), o.le(kGgufF32), o.le<uint64_t>(v.size()), o.raw(v.data(), v.size() * 4);
    }
    void operator()(const std::vector<int32_t>& v)
    {
        o.le(kGgufArray), o.le(kGgufI32), o.le<uint64_t>(v.size()), o.raw(v.data(), v.size() * 4);
    }
};

uint64_t ggufTensorBytes(const GgufTensor& t)
{
    uint64_t rows = 1;
    for (size_t i = 1; i < t.dims.size(); ++i) rows *= t.dims[i];
    return rows * uint64_t(ggmlRowBytes(t.type, int64_t(t.dims.empty() ? 0 : t.dims[0])));
}

uint64_t ggufAlignUp(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

} // namespace

void GgufWriter::set(const std::string& key, GgufValue value)
{
    for (auto& [k, v] : m_meta)
        if (k == key) {
            v = std::move(value);
            return;
        }
    m_meta.emplace_back(key, std::move(value));
}

void GgufWriter::addTensor(GgufTensor tensor)
{
    m_tensors.push_back(std::move(tensor));
}

uint64_t GgufWriter::dataBytes() const
{
    uint64_t n = 0;
    for (const auto& t : m_tensors) n += ggufTensorBytes(t);
    return n;
}

Expected<void> GgufWriter::write(const std::string& path, Feedback* fb) const
{
    for (const auto& t : m_tensors) {
        const GgmlTypeInfo* info = ggmlTypeInfo(t.type);
        if (!info) return makeError(t.name + ": GGUF type " + std::to_string(uint32_t(t.type)) + " is not supported");
        if (t.dims.empty() || t.dims[0] % uint64_t(info->blockSize) != 0)
            return makeError(t.name + ": " + info->name + " needs rows that are a multiple of " +
                             std::to_string(info->blockSize) + " elements, got " +
                             (t.dims.empty() ? std::string("no shape") : std::to_string(t.dims[0])));
    }
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    auto failed = [&](const std::string& why) -> Expected<void> {
        std::remove(tmp.c_str());
        return makeError(why);
    };
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) return makeError(path + ": cannot create a file in that folder (" + tmp + ")");
        GgufOut o(f);
        o.raw("GGUF", 4);
        o.le<uint32_t>(3);
        // general.alignment is always the padding actually used, written last.
        const std::string alignKey = "general.alignment";
        const auto keys = std::count_if(m_meta.begin(), m_meta.end(),
                                        [&](const auto& kv) { return kv.first != alignKey; });
        o.le<uint64_t>(m_tensors.size());
        o.le<uint64_t>(uint64_t(keys) + 1);
        for (const auto& [k, v] : m_meta) {
            if (k == alignKey) continue;
            o.str(k);
            std::visit(GgufValueWriter{o}, v);
        }
        o.str(alignKey);
        GgufValueWriter{o}(uint32_t(kAlignment));
        uint64_t offset = 0;
        for (const auto& t : m_tensors) {
            o.str(t.name);
            o.le<uint32_t>(uint32_t(t.dims.size()));
            for (uint64_t d : t.dims) o.le(d);
            o.le<uint32_t>(uint32_t(t.type));
            o.le(offset);
            offset = ggufAlignUp(offset + ggufTensorBytes(t), kAlignment);
        }
        o.pad(kAlignment);
        const uint64_t total = dataBytes();
        uint64_t done = 0;
        std::vector<uint8_t> buf;
        for (const auto& t : m_tensors) {
            if (fb && fb->isCanceled()) return failed(canceledMessage());
            buf.assign(size_t(ggufTensorBytes(t)), 0);
            if (auto r = t.fill(buf); !r) return failed(t.name + ": " + r.error().message);
            o.raw(buf.data(), buf.size());
            o.pad(kAlignment);
            done += buf.size();
            if (fb && total) fb->progress(double(done) / double(total));
            if (!f) return failed(tmp + ": write failed (disk full?)");
        }
        f.flush();
        if (!f) return failed(tmp + ": write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) return failed(path + ": cannot rename the written file into place: " + ec.message());
    return {};
}

} // namespace ql
