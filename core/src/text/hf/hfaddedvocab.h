#pragma once

// HF's AddedVocabulary: added/special tokens are cut out of the text before the model sees it.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ql::detail {

class HfNormalizer;

/// One entry of tokenizer.json "added_tokens", with the id HF assigns to it.
struct HfAddedToken {
    std::string content;
    int32_t id = -1;
    bool singleWord = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
};

/// A run of normalized text for the pre-tokenizer, or one matched added token (id >= 0).
struct HfSegment {
    std::string text;
    int32_t id = -1;
    bool atOrigin = false;
};

/// Matches added tokens: normalized:false ones on the raw text, normalized:true ones on the
/// normalized text (their own content normalized too), leftmost-longest like HF's Aho-Corasick.
class HfAddedVocabulary {
public:
    /// Registers the tokens (ids already assigned) and builds both matchers.
    void build(std::vector<HfAddedToken> tokens, const HfNormalizer* normalizer);
    /// HF's extract_and_normalize: split raw text, normalize the rest, split again; empties dropped.
    std::vector<HfSegment> extractAndNormalize(std::string_view text, const HfNormalizer* normalizer) const;
    /// The added token with this id, or nullptr.
    const HfAddedToken* byId(int32_t id) const;
    /// Id of the added token with this content, or -1.
    int32_t idOf(std::string_view content) const;
    /// All added tokens.
    const std::vector<HfAddedToken>& tokens() const { return m_tokens; }

private:
    struct Matcher {
        std::vector<std::string> patterns;
        std::vector<size_t> tokenIndex;                   // pattern -> index into m_tokens
        std::array<std::vector<size_t>, 256> byFirstByte; // pattern indices, longest first
    };
    struct Split {
        size_t begin, end;
        int32_t id;
    };
    void buildMatcher(Matcher& m, std::vector<std::pair<std::string, size_t>> patterns) const;
    std::vector<Split> findMatches(std::string_view text, const Matcher& m) const;

    std::vector<HfAddedToken> m_tokens;
    std::unordered_map<int32_t, size_t> m_byId;
    std::unordered_map<std::string, int32_t> m_byContent;
    Matcher m_raw;
    Matcher m_normalized;
};

} // namespace ql::detail
