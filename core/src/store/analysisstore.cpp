#include "quantlens/store/analysisstore.h"

#include "store/h5analysis.h"
#include "store/h5heapcheck.h"

#include <exception>
#include <filesystem>
#include <system_error>

#include <unistd.h>

namespace fs = std::filesystem;

namespace ql {

namespace {

using namespace detail;

H5Handle fileAccess()
{
    // Closing the file closes anything still open in it, so rename() never races a live handle.
    H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    return fapl;
}

Expected<H5Handle> openFile(const std::string& path)
{
    std::error_code ec;
    if (!fs::exists(path, ec)) return makeError(path + ": file does not exist");
    if (fs::is_directory(path, ec)) return makeError(path + ": is a folder, expected an analysis file");
    if (H5Fis_hdf5(path.c_str()) <= 0)
        return makeError(path + ": not an HDF5 file (expected a QuantLens analysis file)");
    QL_TRY(detail::H5HeapCheck::checkRootGroup(path));
    H5Handle fapl = fileAccess();
    H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
    if (!file.valid()) return makeError(path + ": cannot open (" + lastH5Error() + ")");
    return file;
}
// The first characters of a hash, enough to tell two apart in a message.
std::string shortHash(const std::string& h)
{
    if (h.empty()) return "(none)";
    return h.size() > 12 ? h.substr(0, 12) + "…" : h;
}

} // namespace

Expected<void> AnalysisStore::write(const std::string& path, const AnalysisResult& result)
{
    silenceH5Errors();
    std::string tmp;
    std::error_code ec;
    try {
        const fs::path target(path);
        const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
        if (!fs::exists(dir, ec)) return makeError(dir.string() + ": folder does not exist");
        if (!fs::is_directory(dir, ec)) return makeError(dir.string() + ": is not a folder");
        if (fs::is_directory(target, ec)) return makeError(path + ": is a folder");
        tmp = path + ".tmp-" + std::to_string(::getpid());
        {
            H5Handle fapl = fileAccess();
            H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
            if (!file.valid()) {
                const std::string detail = lastH5Error();
                fs::remove(tmp, ec);
                return makeError("cannot write " + path + ": cannot create " + tmp + " (" + detail + ")");
            }
            auto r = writeAnalysis(file.get(), result);
            if (!r) {
                file.reset();
                fs::remove(tmp, ec);
                return makeError("cannot write " + path + ": " + r.message());
            }
            // Closing flushes; a full disk shows up here.
            if (!file.close()) {
                const std::string detail = lastH5Error();
                fs::remove(tmp, ec);
                return makeError("cannot write " + path + ": closing " + tmp + " failed (" + detail + ")");
            }
        }
        fs::rename(tmp, path, ec);
        if (ec) {
            const std::string why = ec.message();
            fs::remove(tmp, ec);
            return makeError("cannot write " + path + ": renaming " + tmp + " into place failed (" + why + ")");
        }
        return {};
    } catch (const std::exception& e) {
        if (!tmp.empty()) fs::remove(tmp, ec);
        return makeError("cannot write " + path + ": " + e.what());
    }
}

Expected<AnalysisResult> AnalysisStore::read(const std::string& path)
{
    silenceH5Errors();
    try {
        auto file = openFile(path);
        if (!file) return file.error();
        auto r = readAnalysis(file->get());
        if (!r) return makeError(path + ": " + r.message());
        return r;
    } catch (const std::exception& e) {
        return makeError(path + ": " + e.what());
    }
}

Expected<AnalysisMeta> AnalysisStore::readMeta(const std::string& path)
{
    silenceH5Errors();
    try {
        auto file = openFile(path);
        if (!file) return file.error();
        auto m = readAnalysisMeta(file->get());
        if (!m) return makeError(path + ": " + m.message());
        return m;
    } catch (const std::exception& e) {
        return makeError(path + ": " + e.what());
    }
}

Expected<AnalysisResult> AnalysisStore::openFor(const std::string& path, const std::string& modelSha256,
                                                const std::string& calibSha256)
{
    auto meta = readMeta(path);
    if (!meta) return meta.error();
    if (meta->modelSha256 != modelSha256)
        return makeError(path + " was made from another model (model sha256 " + shortHash(meta->modelSha256) +
                         ", expected " + shortHash(modelSha256) + "); re-run the analysis or choose another file");
    if (meta->calibSha256 != calibSha256)
        return makeError(path + " was made from another calibration set (calibration sha256 " +
                         shortHash(meta->calibSha256) + ", expected " + shortHash(calibSha256) +
                         "); re-run the analysis or choose another file");
    return read(path);
}

std::string AnalysisStore::missing(const AnalysisResult& r, const AnalysisRequest& q)
{
    if (r.meta.modelSha256 != q.modelSha256)
        return "it was made from another model (model sha256 " + shortHash(r.meta.modelSha256) + ", expected " +
               shortHash(q.modelSha256) + ")";
    if (r.meta.calibSha256 != q.calibSha256)
        return "it was made from another calibration set (calibration sha256 " + shortHash(r.meta.calibSha256) +
               ", expected " + shortHash(q.calibSha256) + ")";
    if (q.sensitivity != SensitivityMode::None && r.sensitivity.empty()) return "it holds no per-layer sensitivity";
    if (q.sensitivity != SensitivityMode::None && !q.options.empty()) {
        const LayerSensitivity& first = r.sensitivity.front();
        std::vector<SensitivityOption> held;
        for (size_t k = 0; k < first.bits.size(); ++k) held.push_back(first.option(k));
        if (held != q.options) {
            std::string names;
            for (const SensitivityOption& o : held) names += (names.empty() ? "" : ", ") + sensitivityOptionLabel(o);
            return "its sensitivity measured other options (" + names + ")";
        }
    }
    // Full analyses compute the Fisher measure too, but a full store made before it existed keeps
    // its (expensive) KL and is reused; only a request for the Fisher measure itself needs it.
    if (q.sensitivity == SensitivityMode::Fisher && r.sensitivity.front().fisher.empty())
        return "it holds no Fisher sensitivity";
    if (q.sensitivity == SensitivityMode::Full) {
        if (r.endToEnd.windows == 0) return "it holds no end-to-end KL sensitivity";
        if (r.endToEnd.heldOutSha256 != q.heldOutSha256)
            return "its end-to-end KL was measured on other held-out windows (sha256 " +
                   shortHash(r.endToEnd.heldOutSha256) + ", expected " + shortHash(q.heldOutSha256) + ")";
        if (r.endToEnd.context != q.klContext)
            return "its end-to-end KL was measured in another context (" +
                   (r.endToEnd.context.empty() ? std::string("float") : r.endToEnd.context) + ", expected " +
                   (q.klContext.empty() ? std::string("float") : q.klContext) + ")";
    }
    return {};
}

} // namespace ql
