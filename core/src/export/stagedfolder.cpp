#include "quantlens/export/stagedfolder.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace ql {

namespace fs = std::filesystem;

Expected<StagedFolder> StagedFolder::begin(const std::string& target, bool overwrite)
{
    std::error_code ec;
    const fs::path t = fs::absolute(target, ec).lexically_normal();
    const fs::path parent = t.has_filename() ? t.parent_path() : t.parent_path().parent_path();
    if (!fs::is_directory(parent, ec))
        return makeError(parent.string() + ": folder does not exist (for " + target + ")");
    if (fs::exists(t, ec) && !overwrite) return makeError(target + " exists; pass --force to replace it");
    std::string tmpl = (parent / ("." + t.filename().string() + ".partial-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data()))
        return makeError(parent.string() + ": cannot create a folder there (" + std::strerror(errno) + ")");
    StagedFolder s;
    s.m_target = t.string();
    s.m_staging = tmpl;
    return s;
}

StagedFolder::StagedFolder(StagedFolder&& other) noexcept
    : m_target(std::move(other.m_target)), m_staging(std::move(other.m_staging)), m_done(other.m_done)
{
    other.m_done = true;
}

StagedFolder::~StagedFolder()
{
    if (m_done) return;
    std::error_code ec;
    fs::remove_all(m_staging, ec);
}

Expected<void> StagedFolder::commit()
{
    std::error_code ec;
    std::string old;
    if (fs::exists(m_target, ec)) { // set aside, so the target is never missing a complete folder for long
        old = m_staging + ".old";
        fs::rename(m_target, old, ec);
        if (ec) return makeError(m_target + ": cannot replace it: " + ec.message());
    }
    fs::rename(m_staging, m_target, ec);
    if (ec) {
        if (!old.empty()) fs::rename(old, m_target, ec);
        return makeError(m_target + ": cannot move the finished folder into place: " + ec.message());
    }
    m_done = true;
    if (!old.empty()) fs::remove_all(old, ec);
    return {};
}

} // namespace ql
