#include "quantlens/model/safetensorswriter.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

namespace ql {

Expected<void> writeSafetensorsFile(const std::string& path, const std::vector<TensorData>& tensors,
                                    const std::map<std::string, std::string>& metadata)
{
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        if (!names.insert(t.name).second) return makeError(path + ": tensor " + t.name + " is given twice");
        uint64_t n = 1;
        for (int64_t d : t.shape) {
            if (d < 0) return makeError(path + ": tensor " + t.name + " has a negative dimension");
            n *= uint64_t(d);
        }
        if (n * dtypeSize(t.dtype) != t.bytes.size())
            return makeError(path + ": tensor " + t.name + " has " + std::to_string(t.bytes.size()) +
                             " bytes, its shape and " + dtypeName(t.dtype) + " need " +
                             std::to_string(n * dtypeSize(t.dtype)));
        header[t.name] = {
            {"dtype", dtypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' '); // data starts 8-byte aligned, as the format recommends
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) return makeError(tmp + ": cannot create the file");
        const uint64_t len = h.size();
        unsigned char le[8];
        for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(len >> (8 * i));
        out.write(reinterpret_cast<const char*>(le), 8);
        out.write(h.data(), std::streamsize(h.size()));
        for (const auto& t : tensors)
            out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            return makeError(tmp + ": write failed (disk full?)");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        return makeError(path + ": cannot rename the written file into place: " + ec.message());
    }
    return {};
}

} // namespace ql
