#pragma once

// A folder written in full before it appears under its name: exporters fill a hidden sibling
// and commit() renames it into place, so a failed, canceled or killed export leaves nothing (or
// only a hidden staging folder) under the target name.

#include "quantlens/base/expected.h"

#include <string>

namespace ql {

/// A staging folder beside the target, removed unless committed.
class StagedFolder {
public:
    /// Creates the staging folder; refuses an existing target unless overwrite, and a target
    /// whose parent folder does not exist or cannot be written.
    static Expected<StagedFolder> begin(const std::string& target, bool overwrite);
    StagedFolder(StagedFolder&& other) noexcept;
    StagedFolder& operator=(StagedFolder&&) = delete;
    StagedFolder(const StagedFolder&) = delete;
    ~StagedFolder();

    /// Where to write the files.
    const std::string& path() const { return m_staging; }
    /// Copies a model folder's tokenizer and generation files that exist (writable copies).
    Expected<void> copyModelFiles(const std::string& modelFolder) const;
    /// Moves the folder into place, exchanging it atomically with an old one where the file
    /// system allows (Linux renameat2), so the name always holds a complete folder.
    Expected<void> commit();

private:
    StagedFolder() = default;
    std::string m_target, m_staging;
    bool m_done = false;
};

} // namespace ql
