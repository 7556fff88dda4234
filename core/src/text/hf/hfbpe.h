#pragma once

// The BPE model of a Hugging Face tokenizer.json, merging exactly like HF's Word::merge_all.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ql::detail {

/// Hash for heterogeneous string lookup (std::string keys, std::string_view probes).
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

/// vocab + merges + unk / byte-fallback / affix options of a "model": {"type": "BPE"} block.
class HfBpe {
public:
    /// Parses the model block; throws HfParseError naming where for malformed or inconsistent data.
    static std::unique_ptr<HfBpe> fromJson(const nlohmann::json& model, const std::string& where);

    /// Appends the ids of one pre-tokenized word. O(n log n) in the word length.
    void tokenize(std::string_view word, std::vector<int32_t>& out) const;
    /// Id of a vocabulary entry, or -1.
    int32_t tokenToId(std::string_view token) const;
    /// Vocabulary entry of id, or nullptr.
    const std::string* idToToken(int32_t id) const;
    /// Number of vocabulary entries (HF's get_vocab_size).
    size_t vocabCount() const { return m_vocab.size(); }
    /// Largest id in the vocabulary, or -1 when empty.
    int32_t maxId() const { return static_cast<int32_t>(m_idToToken.size()) - 1; }
    /// Merges in rank order.
    const std::vector<std::pair<std::string, std::string>>& merges() const { return m_merges; }
    /// Id of the unk token, or -1.
    int32_t unkId() const { return m_unkId; }
    /// Whether the model falls back to <0xNN> pieces.
    bool byteFallback() const { return m_byteFallback; }

private:
    struct MergeInfo {
        uint32_t rank;
        int32_t newId;
    };
    const MergeInfo* findMerge(int32_t left, int32_t right) const;
    void mergeAll(std::vector<int32_t>& ids) const;

    StringIdMap m_vocab;
    std::vector<std::string> m_idToToken;
    std::vector<bool> m_hasId;
    std::unordered_map<uint64_t, MergeInfo> m_mergeMap;
    std::vector<std::pair<std::string, std::string>> m_merges;
    std::string m_unkToken;
    bool m_hasUnk = false;
    int32_t m_unkId = -1;
    bool m_fuseUnk = false;
    bool m_byteFallback = false;
    bool m_ignoreMerges = false;
    std::string m_prefix; // continuing_subword_prefix
    std::string m_suffix; // end_of_word_suffix
    int32_t m_byteIds[256];
};

} // namespace ql::detail
