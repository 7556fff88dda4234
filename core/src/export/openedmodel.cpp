#include "quantlens/export/openedmodel.h"

#include "quantlens/export/ggufimport.h"
#include "quantlens/model/memoryestimate.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace ql {

namespace fs = std::filesystem;

bool OpenedModel::isGgufPath(const std::string& path)
{
    std::error_code ec;
    return fs::path(path).extension() == ".gguf" && !fs::is_directory(path, ec);
}

Expected<OpenedModel> OpenedModel::open(const std::string& path, Feedback* fb)
{
    OpenedModel m;
    m.path = path;
    std::string dir = path;
    if (isGgufPath(path)) {
        auto g = GgufFile::open(path);
        if (!g) return g.error();
        // Every tensor is decoded to fp32 in memory before it is written out: refuse a file that
        // will not fit rather than be killed half way.
        int64_t elements = 0, largest = 0;
        for (const GgufFile::Tensor& t : g->tensors()) {
            int64_t n = 1;
            for (uint64_t d : t.dims) n *= int64_t(d); // bounded by the reader (no overflow)
            elements += n;
            largest = std::max(largest, n);
        }
        MemoryEstimate need;
        need.terms = {{"decoded tensors", 4 * elements}, {"the tensor being decoded", 8 * largest}};
        QL_TRY(checkMemory(need, availableMemory(), path + ": reading this GGUF file"));
        std::error_code ec;
        std::string tmpl = (fs::temp_directory_path(ec) / "quantlens-gguf-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) return makeError(path + ": cannot create a temporary folder to read it into");
        dir = tmpl;
        m.m_tempDir = std::shared_ptr<void>(nullptr, [dir](void*) {
            std::error_code e;
            fs::remove_all(dir, e);
        });
        QL_TRY(importGguf(*g, dir, fb));
        m.gguf = std::move(*g);
    }
    auto model = Model::open(dir);
    if (!model) return model.error();
    m.model = std::move(*model);
    if (m.gguf) m.model.setDir(path);
    auto tok = loadTokenizer(dir);
    if (tok)
        m.tokenizer = *tok;
    else
        m.tokenizerError = tok.message();
    return m;
}

} // namespace ql
