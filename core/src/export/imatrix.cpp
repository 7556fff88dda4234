#include "quantlens/export/imatrix.h"

#include "quantlens/export/ggufexport.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/export/ggufwriter.h"

#include <cstring>
#include <fstream>

namespace ql {

namespace {

// The older imatrix format (llama.cpp's .dat): int32 entries, then per entry an int32 name
// length, the name, int32 calls, int32 n and n floats of (Σx² / tokens)·calls; optionally an
// int32 chunk count and a dataset name.
Expected<ImportanceMatrix> readLegacyImatrix(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open");
    auto i32 = [&](int32_t& v) { return bool(in.read(reinterpret_cast<char*>(&v), 4)); };
    int32_t n = 0;
    if (!i32(n) || n < 1 || n > 1000000) return makeError(path + ": neither a GGUF nor a legacy imatrix file");
    ImportanceMatrix m;
    for (int32_t e = 0; e < n; ++e) {
        int32_t len = 0, calls = 0, nval = 0;
        if (!i32(len) || len < 1 || len > 4096) return makeError(path + ": entry " + std::to_string(e) + ": bad name");
        std::string name(size_t(len), '\0');
        if (!in.read(name.data(), len) || !i32(calls) || !i32(nval) || nval < 1 || nval > (1 << 26))
            return makeError(path + ": entry " + name + ": truncated or invalid header");
        ImportanceMatrix::Entry entry;
        entry.sumSquares.resize(size_t(nval));
        if (!in.read(reinterpret_cast<char*>(entry.sumSquares.data()), std::streamsize(nval) * 4))
            return makeError(path + ": entry " + name + ": truncated values");
        // The values are already means times calls: count = calls makes sums / count the mean.
        entry.count = float(calls > 0 ? calls : 1); // llama-quantize takes the values as they are then
        m.entries[name] = std::move(entry);
    }
    int32_t chunks = 0, len = 0;
    if (i32(chunks)) {
        m.chunkCount = uint32_t(std::max(chunks, 0));
        if (i32(len) && len > 0 && len < 65536) {
            std::string dataset(size_t(len), '\0');
            if (in.read(dataset.data(), len)) m.datasets.push_back(dataset);
        }
    }
    return m;
}

} // namespace

std::vector<float> ImportanceMatrix::importance(const std::string& ggufName) const
{
    const auto it = entries.find(ggufName);
    if (it == entries.end()) return {};
    std::vector<float> v = it->second.sumSquares;
    for (float& x : v) x = it->second.count > 0 ? x / it->second.count : 1.f;
    return v;
}

Expected<ImportanceMatrix> importanceFromAnalysis(const AnalysisResult& a, const Model& model)
{
    std::map<std::string, const SiteStats*> sites;
    for (const SiteStats& s : a.sites) sites[s.name] = &s;
    ImportanceMatrix m;
    for (const LinearLayer& l : model.linearLayers()) {
        const auto it = sites.find(l.site);
        if (it == sites.end())
            return makeError("the analysis has no statistics of site " + l.site + " (for " + l.name + ")");
        const SiteStats& s = *it->second;
        if (s.mean.size() != l.inFeatures || s.var.size() != l.inFeatures)
            return makeError("site " + l.site + " has " + std::to_string(s.mean.size()) + " channels; " + l.name +
                             " reads " + std::to_string(l.inFeatures) + " (an analysis of another model?)");
        ImportanceMatrix::Entry e;
        e.count = float(s.nTokens);
        e.sumSquares.resize(size_t(l.inFeatures));
        for (Eigen::Index j = 0; j < l.inFeatures; ++j)
            e.sumSquares[size_t(j)] = float(double(s.nTokens) * (double(s.var[j]) + double(s.mean[j]) * s.mean[j]));
        m.entries[ggufLinearName(l.block, l.kind)] = std::move(e);
    }
    m.datasets.push_back("quantlens calibration sha256:" + a.meta.calibSha256);
    m.chunkCount = uint32_t(a.meta.samples);
    m.chunkSize = uint32_t(a.meta.seqlen);
    return m;
}

Expected<void> writeImatrix(const ImportanceMatrix& m, const std::string& path)
{
    GgufWriter w;
    w.set("general.type", std::string("imatrix"));
    w.set("imatrix.datasets", m.datasets);
    w.set("imatrix.chunk_count", m.chunkCount);
    w.set("imatrix.chunk_size", m.chunkSize);
    for (const auto& [name, e] : m.entries) { // std::map: sorted, as llama.cpp writes them
        const std::vector<float>* sums = &e.sumSquares;
        w.addTensor({name + ".in_sum2",
                     {uint64_t(e.sumSquares.size()), 1},
                     GgmlType::F32,
                     [sums](std::span<uint8_t> out) -> Expected<void> {
                         std::memcpy(out.data(), sums->data(), out.size());
                         return {};
                     }});
        const float count = e.count;
        w.addTensor({name + ".counts", {1, 1}, GgmlType::F32, [count](std::span<uint8_t> out) -> Expected<void> {
                         std::memcpy(out.data(), &count, 4);
                         return {};
                     }});
    }
    return w.write(path);
}

Expected<ImportanceMatrix> readImatrix(const std::string& path)
{
    {
        std::ifstream in(path, std::ios::binary);
        char magic[4] = {};
        if (!in.read(magic, 4)) return makeError(path + ": cannot read (missing or empty)");
        if (std::memcmp(magic, "GGUF", 4) != 0) return readLegacyImatrix(path);
    }
    auto f = GgufFile::open(path);
    if (!f) return f.error();
    ImportanceMatrix m;
    if (const GgufValue* v = f->value("imatrix.datasets"))
        if (const auto* d = std::get_if<std::vector<std::string>>(v)) m.datasets = *d;
    for (const char* key : {"imatrix.chunk_count", "imatrix.chunk_size"})
        if (const GgufValue* v = f->value(key))
            if (const auto* u = std::get_if<uint64_t>(v))
                (std::strcmp(key, "imatrix.chunk_count") == 0 ? m.chunkCount : m.chunkSize) = uint32_t(*u);
    std::map<std::string, std::pair<const GgufFile::Tensor*, const GgufFile::Tensor*>> parts;
    const std::string sumSuffix = ".in_sum2", countSuffix = ".counts";
    for (const GgufFile::Tensor& t : f->tensors()) {
        auto ends = [&](const std::string& s) {
            return t.name.size() > s.size() && t.name.compare(t.name.size() - s.size(), s.size(), s) == 0;
        };
        if (ends(sumSuffix)) parts[t.name.substr(0, t.name.size() - sumSuffix.size())].first = &t;
        if (ends(countSuffix)) parts[t.name.substr(0, t.name.size() - countSuffix.size())].second = &t;
    }
    if (parts.empty()) return makeError(path + ": a GGUF file without imatrix entries (<name>.in_sum2, <name>.counts)");
    for (const auto& [name, p] : parts) {
        if (!p.first || !p.second)
            return makeError(path + ": " + name + " has sums without counts or counts without sums");
        auto sums = f->readFloat(p.first->name);
        if (!sums) return sums.error();
        auto counts = f->readFloat(p.second->name);
        if (!counts) return counts.error();
        if (counts->size() != 1)
            return makeError(path + ": " + name + " has " + std::to_string(counts->size()) +
                             " counts (expert matrices are not supported)");
        m.entries[name] = {std::move(*sums), (*counts)[0]};
    }
    return m;
}

} // namespace ql
