#include "text/hf/hfbpe.h"

#include "text/hf/hfpattern.h"
#include "text/hf/hfutf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace ql::detail {

namespace {

uint64_t pairKey(int32_t a, int32_t b)
{
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::string optionalString(const nlohmann::json& j, const char* key)
{
    return (j.contains(key) && j[key].is_string()) ? j[key].get<std::string>() : std::string();
}

} // namespace

std::unique_ptr<HfBpe> HfBpe::fromJson(const nlohmann::json& model, const std::string& where)
{
    auto bpe = std::unique_ptr<HfBpe>(new HfBpe());
    if (!model.contains("vocab") || !model["vocab"].is_object())
        throw HfParseError(where + ".vocab: missing or not an object of token -> id");
    int32_t maxId = -1;
    for (const auto& [token, idJson] : model["vocab"].items()) {
        if (!idJson.is_number_integer() || idJson.get<int64_t>() < 0 || idJson.get<int64_t>() > INT32_MAX)
            throw HfParseError(where + ".vocab: id of '" + token + "' is not a non-negative integer");
        const auto id = idJson.get<int32_t>();
        bpe->m_vocab[token] = id;
        maxId = std::max(maxId, id);
    }
    bpe->m_idToToken.assign(static_cast<size_t>(maxId + 1), std::string());
    bpe->m_hasId.assign(static_cast<size_t>(maxId + 1), false);
    for (const auto& [token, id] : bpe->m_vocab) {
        bpe->m_idToToken[static_cast<size_t>(id)] = token;
        bpe->m_hasId[static_cast<size_t>(id)] = true;
    }

    bpe->m_prefix = optionalString(model, "continuing_subword_prefix");
    bpe->m_suffix = optionalString(model, "end_of_word_suffix");
    bpe->m_fuseUnk = jsonBool(model, "fuse_unk", false);
    bpe->m_byteFallback = jsonBool(model, "byte_fallback", false);
    bpe->m_ignoreMerges = jsonBool(model, "ignore_merges", false);
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
        bpe->m_unkToken = model["unk_token"].get<std::string>();
        bpe->m_hasUnk = true;
        bpe->m_unkId = bpe->tokenToId(bpe->m_unkToken);
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        bpe->m_byteIds[b] = bpe->tokenToId(name);
    }

    const nlohmann::json empty = nlohmann::json::array();
    const auto& merges = model.contains("merges") && !model["merges"].is_null() ? model["merges"] : empty;
    if (!merges.is_array()) throw HfParseError(where + ".merges: not an array");
    bpe->m_merges.reserve(merges.size());
    bpe->m_mergeMap.reserve(merges.size() * 2);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const auto& m = merges[rank];
        const std::string at = where + ".merges[" + std::to_string(rank) + "]";
        std::string a, b;
        if (m.is_string()) { // legacy "a b": HF splits at the first space
            const std::string s = m.get<std::string>();
            const size_t space = s.find(' ');
            if (space == std::string::npos)
                throw HfParseError(at + ": '" + s + "' is not two tokens separated by a space");
            a = s.substr(0, space);
            b = s.substr(space + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            a = m[0].get<std::string>();
            b = m[1].get<std::string>();
        } else {
            throw HfParseError(at + ": expected \"a b\" or [\"a\", \"b\"], got " + m.dump());
        }
        const int32_t ida = bpe->tokenToId(a), idb = bpe->tokenToId(b);
        if (ida < 0) throw HfParseError(at + ": token '" + a + "' is not in the vocab");
        if (idb < 0) throw HfParseError(at + ": token '" + b + "' is not in the vocab");
        // The merged token drops the right part's continuing-subword prefix, as HF builds it.
        const std::string merged = a +
                                   (b.size() >= bpe->m_prefix.size() ? b.substr(bpe->m_prefix.size()) : std::string());
        const int32_t idm = bpe->tokenToId(merged);
        if (idm < 0) throw HfParseError(at + ": merged token '" + merged + "' is not in the vocab");
        // A repeated pair keeps its last rank, as HF's HashMap collect does.
        bpe->m_mergeMap[pairKey(ida, idb)] = MergeInfo{static_cast<uint32_t>(rank), idm};
        bpe->m_merges.emplace_back(std::move(a), std::move(b));
    }
    return bpe;
}

int32_t HfBpe::tokenToId(std::string_view token) const
{
    const auto it = m_vocab.find(token);
    return it == m_vocab.end() ? -1 : it->second;
}

const std::string* HfBpe::idToToken(int32_t id) const
{
    if (id < 0 || static_cast<size_t>(id) >= m_idToToken.size() || !m_hasId[static_cast<size_t>(id)]) return nullptr;
    return &m_idToToken[static_cast<size_t>(id)];
}

const HfBpe::MergeInfo* HfBpe::findMerge(int32_t left, int32_t right) const
{
    const auto it = m_mergeMap.find(pairKey(left, right));
    return it == m_mergeMap.end() ? nullptr : &it->second;
}

void HfBpe::tokenize(std::string_view word, std::vector<int32_t>& out) const
{
    if (word.empty()) return;
    if (m_ignoreMerges) {
        const int32_t id = tokenToId(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    std::vector<int32_t> ids;
    ids.reserve(word.size());
    bool pendingUnk = false;
    std::string scratch;
    size_t i = 0;
    while (i < word.size()) {
        const size_t start = i;
        i = std::min(word.size(), i + utf8Len(static_cast<unsigned char>(word[i])));
        std::string_view piece = word.substr(start, i - start);
        const bool addPrefix = start > 0 && !m_prefix.empty();
        const bool addSuffix = i == word.size() && !m_suffix.empty();
        if (addPrefix || addSuffix) {
            scratch.assign(addPrefix ? m_prefix : std::string());
            scratch.append(piece);
            if (addSuffix) scratch.append(m_suffix);
            piece = scratch;
        }
        if (const int32_t id = tokenToId(piece); id >= 0) {
            if (pendingUnk) ids.push_back(m_unkId);
            pendingUnk = false;
            ids.push_back(id);
            continue;
        }
        if (m_byteFallback) {
            const bool allBytes = std::all_of(piece.begin(), piece.end(),
                                              [&](char c) { return m_byteIds[static_cast<unsigned char>(c)] >= 0; });
            if (allBytes) {
                // HF adds byte pieces without flushing a pending unk first; kept for identical ids.
                for (const char c : piece) ids.push_back(m_byteIds[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        // HF fails the whole encode when unk_token is missing from the vocab; the char is dropped here.
        if (!m_hasUnk || m_unkId < 0) continue;
        if (pendingUnk && !m_fuseUnk) ids.push_back(m_unkId);
        pendingUnk = true;
    }
    if (pendingUnk) ids.push_back(m_unkId);
    mergeAll(ids);
    out.insert(out.end(), ids.begin(), ids.end());
}

void HfBpe::mergeAll(std::vector<int32_t>& ids) const
{
    const size_t n = ids.size();
    if (n < 2 || m_mergeMap.empty()) return;
    // Doubly linked symbols plus a heap ordered by (rank, position); entries made stale by an
    // earlier merge are recognised on pop, as in HF's Word::merge_all.
    std::vector<int32_t> prev(n), next(n);
    std::vector<char> alive(n, 1);
    for (size_t k = 0; k < n; ++k) {
        prev[k] = static_cast<int32_t>(k) - 1;
        next[k] = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
    }
    struct Entry {
        uint32_t rank;
        uint32_t pos;
        int32_t newId;
    };
    const auto later = [](const Entry& a, const Entry& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    std::vector<Entry> heap;
    heap.reserve(n);
    for (size_t k = 0; k + 1 < n; ++k)
        if (const MergeInfo* m = findMerge(ids[k], ids[k + 1]))
            heap.push_back({m->rank, static_cast<uint32_t>(k), m->newId});
    std::make_heap(heap.begin(), heap.end(), later);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), later);
        const Entry top = heap.back();
        heap.pop_back();
        const int32_t pos = static_cast<int32_t>(top.pos);
        if (!alive[top.pos]) continue;
        const int32_t right = next[top.pos];
        if (right < 0) continue;
        const MergeInfo* current = findMerge(ids[top.pos], ids[static_cast<size_t>(right)]);
        if (!current || current->newId != top.newId) continue; // stale entry

        ids[top.pos] = top.newId;
        alive[static_cast<size_t>(right)] = 0;
        next[top.pos] = next[static_cast<size_t>(right)];
        if (next[top.pos] >= 0) prev[static_cast<size_t>(next[top.pos])] = pos;

        if (const int32_t p = prev[top.pos]; p >= 0) {
            if (const MergeInfo* m = findMerge(ids[static_cast<size_t>(p)], ids[top.pos])) {
                heap.push_back({m->rank, static_cast<uint32_t>(p), m->newId});
                std::push_heap(heap.begin(), heap.end(), later);
            }
        }
        if (const int32_t nx = next[top.pos]; nx >= 0) {
            if (const MergeInfo* m = findMerge(ids[top.pos], ids[static_cast<size_t>(nx)])) {
                heap.push_back({m->rank, top.pos, m->newId});
                std::push_heap(heap.begin(), heap.end(), later);
            }
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < n; ++k)
        if (alive[k]) ids[w++] = ids[k];
    ids.resize(w);
}

} // namespace ql::detail
