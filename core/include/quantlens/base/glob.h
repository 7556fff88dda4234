#pragma once

// Shell-style globs on layer names (recipes, plans): `*` any run of characters, dots included,
// `?` one character, `[abc]` / `[a-z]` / `[!abc]` (also `[^abc]`) one character of a set.
// There is no escape character: Hugging Face module names hold no glob characters, and a
// literal `*`, `?` or `[` can still be written as the one-element set `[*]`, `[?]`, `[[]`.

#include "quantlens/base/expected.h"

#include <string_view>

namespace ql {

/// True when text matches the whole glob pattern (see the file comment for the syntax).
bool globMatch(std::string_view pattern, std::string_view text);

/// Checks a pattern's syntax: a `[` set must be closed and must not be empty.
Expected<void> checkGlob(std::string_view pattern);

/// True when the pattern holds glob syntax, false when it names one text literally.
bool isGlobPattern(std::string_view pattern);

} // namespace ql
