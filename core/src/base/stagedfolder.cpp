#include "quantlens/base/stagedfolder.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

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
        return makeError(target + ": cannot create a folder in " + parent.string() + " (" + std::strerror(errno) + ")");
    // mkdtemp makes the folder private; an export is an ordinary folder (mode as umask allows).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    fs::permissions(tmpl, static_cast<fs::perms>(0777 & ~mask), ec);
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

Expected<void> StagedFolder::copyModelFiles(const std::string& modelFolder) const
{
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                          "generation_config.json"}) {
        const fs::path from = fs::path(modelFolder) / f, to = fs::path(m_staging) / f;
        std::error_code ec;
        if (!fs::exists(from, ec)) continue;
        if (!fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec))
            return makeError(from.string() + ": cannot copy it into the export: " + ec.message());
        fs::permissions(to, fs::perms::owner_write, fs::perm_options::add, ec); // the source may be read-only
    }
    return {};
}

Expected<void> StagedFolder::commit()
{
    std::error_code ec;
    // An existing target is swapped with the staging folder in one step, so a kill at any
    // moment leaves the old folder or the new one under the name, never neither.
    if (fs::exists(m_target, ec) &&
        ::renameat2(AT_FDCWD, m_staging.c_str(), AT_FDCWD, m_target.c_str(), RENAME_EXCHANGE) == 0) {
        m_done = true;
        fs::remove_all(m_staging, ec); // now the old folder
        return {};
    }
    std::string old;
    if (fs::exists(m_target, ec)) { // a file system without the exchange: set the old one aside briefly
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
