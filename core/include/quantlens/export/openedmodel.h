#pragma once

// A model as a user names it: a Hugging Face folder, or a GGUF file, which is read through a
// temporary Hugging Face folder (importGguf) so every command works on it unchanged.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <memory>
#include <optional>
#include <string>

namespace ql {

/// An opened model with its tokenizer; a GGUF's temporary folder is removed with the object.
class OpenedModel {
public:
    /// Opens a model folder, or a file ending in .gguf.
    static Expected<OpenedModel> open(const std::string& path, Feedback* feedback = nullptr);

    Model model;
    std::shared_ptr<Tokenizer> tokenizer; ///< null when the model has none (see tokenizerError)
    std::string tokenizerError;
    std::string path;             ///< as given
    std::optional<GgufFile> gguf; ///< the file, when the model is a GGUF
    /// True for a path that names a GGUF file.
    static bool isGgufPath(const std::string& path);

private:
    std::shared_ptr<void> m_tempDir;
};

} // namespace ql
