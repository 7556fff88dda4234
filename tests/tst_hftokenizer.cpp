// HfTokenizer (tokenizer.json, BPE) against: the Hugging Face tokenizers library's ids for the
// whole WikiText-2 test file (shared golden file), an independent naive quadratic BPE written
// below, fixture tokenizers trained by tests/fixtures/tokenizerfixture, and hand-derived
// expectations of HF's normalizer / pre-tokenizer / added-token rules.
#include "quantlens/text/hftokenizer.h"
#include "testpaths.h"
#include "tokenizerfixture.h"

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <climits>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>

using qltest::readAll;
using qltest::readIds;

using Json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

std::vector<std::string> chars(const std::string& s)
{
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// Reference BPE, deliberately naive: while some adjacent pair has a merge, merge the pair with
// the lowest rank (leftmost on ties). Quadratic, obviously correct, shares no code with the core.
struct NaiveBpe {
    std::map<std::string, int32_t> vocab;
    std::map<std::pair<std::string, std::string>, int> rank;
    std::string unk;
    bool fuseUnk = false;
    bool byteFallback = false;

    static NaiveBpe fromFile(const std::string& path)
    {
        const Json j = Json::parse(readAll(path));
        NaiveBpe b;
        for (const auto& [k, v] : j["model"]["vocab"].items()) b.vocab[k] = v.get<int32_t>();
        int r = 0;
        for (const auto& m : j["model"]["merges"]) {
            std::pair<std::string, std::string> p;
            if (m.is_array()) {
                p = {m[0].get<std::string>(), m[1].get<std::string>()};
            } else {
                const auto s = m.get<std::string>();
                p = {s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)};
            }
            b.rank.emplace(p, r++);
        }
        if (j["model"]["unk_token"].is_string()) b.unk = j["model"]["unk_token"].get<std::string>();
        b.fuseUnk = j["model"].value("fuse_unk", false);
        b.byteFallback = j["model"].value("byte_fallback", false);
        return b;
    }

    void encodeWord(const std::string& word, Ids& out) const
    {
        std::vector<std::string> syms;
        bool lastWasUnk = false;
        for (const auto& c : chars(word)) {
            if (vocab.count(c)) {
                syms.push_back(c);
                lastWasUnk = false;
                continue;
            }
            std::vector<std::string> bytes;
            for (const char ch : c) {
                char name[8];
                std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(ch));
                bytes.push_back(name);
            }
            const bool allBytes = std::all_of(bytes.begin(), bytes.end(),
                                              [&](const auto& b) { return vocab.count(b) > 0; });
            if (byteFallback && allBytes) {
                syms.insert(syms.end(), bytes.begin(), bytes.end());
                lastWasUnk = false;
            } else if (!unk.empty()) {
                if (!(fuseUnk && lastWasUnk)) syms.push_back(unk);
                lastWasUnk = true;
            }
        }
        for (;;) {
            int best = INT_MAX;
            size_t at = 0;
            for (size_t k = 0; k + 1 < syms.size(); ++k) {
                const auto it = rank.find({syms[k], syms[k + 1]});
                if (it != rank.end() && it->second < best) {
                    best = it->second;
                    at = k;
                }
            }
            if (best == INT_MAX) break;
            syms[at] += syms[at + 1];
            syms.erase(syms.begin() + static_cast<long>(at) + 1);
        }
        for (const auto& s : syms) out.push_back(vocab.at(s));
    }
};

// TinyStories-656K's pipeline written out by hand: Prepend ▁, Replace " " -> ▁, then its three
// added tokens matched in their normalized form ("▁<unk>", ...), then BPE over each rest.
Ids naiveTinyStories(const NaiveBpe& bpe, const std::string& text)
{
    Ids out;
    if (text.empty()) return out;
    const std::string norm = "\xE2\x96\x81" + replaceAll(text, " ", "\xE2\x96\x81");
    const std::vector<std::pair<std::string, int32_t>> added = {
        {"\xE2\x96\x81<unk>", 0}, {"\xE2\x96\x81<|start_story|>", 1}, {"\xE2\x96\x81<|end_story|>", 2}};
    size_t from = 0;
    for (size_t i = 0; i < norm.size();) {
        bool hit = false;
        for (const auto& [pat, id] : added) {
            if (norm.compare(i, pat.size(), pat) == 0) {
                bpe.encodeWord(norm.substr(from, i - from), out);
                out.push_back(id);
                i += pat.size();
                from = i;
                hit = true;
                break;
            }
        }
        if (!hit) ++i;
    }
    bpe.encodeWord(norm.substr(from), out);
    return out;
}

// GPT-2 pre-tokenization for ASCII text with std::regex (ECMAScript is leftmost-first like Oniguruma).
std::vector<std::string> gpt2SplitAscii(const std::string& text)
{
    static const std::regex re("'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\\sA-Za-z0-9]+|\\s+(?!\\S)|\\s+");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back(it->str());
    return out;
}

// GPT-2's bytes_to_unicode, written independently of the core's table.
std::string byteLevel(const std::string& s)
{
    std::string out;
    for (const char ch : s) {
        const int b = static_cast<unsigned char>(ch);
        int cp = b;
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
            int n = 0; // rank of b among the non-printable bytes
            for (int k = 0; k < b; ++k)
                if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE))) ++n;
            cp = 256 + n;
        }
        out += QString(QChar(cp)).toStdString();
    }
    return out;
}

QString idsToString(const Ids& ids, size_t from, size_t to)
{
    QStringList parts;
    for (size_t k = from; k < std::min(to, ids.size()); ++k) parts << QString::number(ids[k]);
    return parts.join(QLatin1Char(' '));
}

// Fails with the first differing index and the ids around it.
void compareIds(const Ids& got, const Ids& want, const QString& what)
{
    const size_t n = std::min(got.size(), want.size());
    size_t k = 0;
    while (k < n && got[k] == want[k]) ++k;
    if (k == n && got.size() == want.size()) return;
    const size_t from = k > 8 ? k - 8 : 0;
    QFAIL(qPrintable(QStringLiteral("%1: first difference at index %2 (sizes %3 vs %4)\n  got:  %5\n  want: %6")
                         .arg(what)
                         .arg(k)
                         .arg(got.size())
                         .arg(want.size())
                         .arg(idsToString(got, from, k + 8), idsToString(want, from, k + 8))));
}

std::string corpus()
{
    // A fixed English text for training fixture tokenizers when the shared data is absent.
    static const char* const lines[] = {
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
        "One day, she saw a big red ball near the tree. She wanted to play with it, so she ran to it!",
        "The quick brown fox jumps over the lazy dog; the dog didn't mind, and they're friends now.",
        "In 1984, 42 people walked 3.5 km to the station -- it's a long way, isn't it? We'll see.",
        "  Indented line with tabs\tand  double  spaces, then a newline.\r\nWindows line ending too.",
    };
    std::string text;
    for (int rep = 0; rep < 6; ++rep)
        for (const char* l : lines) text += std::string(l) + (rep % 2 ? "\n" : " ");
    return text;
}

// Small tokenizer.json pieces for probing the pipeline: every character c is in the vocab as c
// and as "##c" (continuing_subword_prefix), with no merges, so the pre-tokenizer's pieces show.
std::string probeJson(const Json& normalizer, const Json& preTokenizer, const Json& added = Json::array())
{
    Json vocab = Json::object();
    int id = 0;
    vocab["[UNK]"] = id++;
    std::vector<std::string> cs;
    for (int c = 0x20; c < 0x7F; ++c) cs.emplace_back(1, static_cast<char>(c));
    for (const char* c : {"\n", "\t", "\xE2\x96\x81", "\xC3\xA9", "\xCC\x81", "\xCC\x87", "\xEF\xAC\x81", "\xC2\xB2",
                          "\xC4\xA0", "\xC4\x8A", "\xD9\xA3", "\xE2\x80\x94", "\xE6\x9D\xB1"})
        cs.emplace_back(c);
    for (const auto& c : cs) {
        vocab[c] = id++;
        vocab["##" + c] = id++;
    }
    Json j;
    j["added_tokens"] = added;
    j["normalizer"] = normalizer;
    j["pre_tokenizer"] = preTokenizer;
    j["decoder"] = nullptr;
    j["model"] = {{"type", "BPE"},
                  {"unk_token", "[UNK]"},
                  {"continuing_subword_prefix", "##"},
                  {"vocab", vocab},
                  {"merges", Json::array()}};
    return j.dump();
}

Json addedTok(int id, const std::string& content, bool normalized, bool lstrip = false, bool rstrip = false,
              bool single = false)
{
    return {{"id", id},         {"content", content},       {"single_word", single}, {"lstrip", lstrip},
            {"rstrip", rstrip}, {"normalized", normalized}, {"special", true}};
}

// Pieces of text as "a|bc|d": "##" tokens continue a piece, added tokens show as [content].
QString probe(const std::string& json, const std::string& text)
{
    auto tok = ql::HfTokenizer::fromJson(json, "probe.json");
    if (!tok) return QString::fromStdString("ERROR " + tok.message());
    std::string out;
    bool first = true;
    for (const int32_t id : (*tok)->encode(text)) {
        const std::string t = (*tok)->tokenText(id);
        if ((*tok)->isAdded(id))
            out += (first ? "[" : "|[") + t + "]";
        else if (t.rfind("##", 0) == 0)
            out += t.substr(2);
        else
            out += (first ? "" : "|") + t;
        first = false;
    }
    return QString::fromStdString(out);
}

} // namespace

// Stops the test function at the first mismatch instead of reporting every later case too.
#define COMPARE_IDS(got, want, what)                                                                                   \
    do {                                                                                                               \
        compareIds((got), (want), (what));                                                                             \
        if (QTest::currentTestFailed()) return;                                                                        \
    } while (0)

class TestHfTokenizer : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    std::shared_ptr<ql::HfTokenizer> m_byteLevel;
    std::string m_byteLevelPath;
    std::shared_ptr<ql::HfTokenizer> m_metaspace;

    std::shared_ptr<ql::HfTokenizer> tinyStories()
    {
        const QString path = qltest::sharedModel(QStringLiteral("tinystories-656k")) +
                             QStringLiteral("/tokenizer.json");
        if (!QFileInfo::exists(path)) return nullptr;
        auto tok = ql::HfTokenizer::fromFile(path.toStdString());
        return tok ? *tok : nullptr;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_byteLevelPath = qlfix::writeByteLevelTokenizer((m_tmp.path() + "/bytelevel").toStdString(), corpus(), 300);
        QVERIFY(!m_byteLevelPath.empty());
        auto bl = ql::HfTokenizer::fromFile(m_byteLevelPath);
        QVERIFY2(bl.ok(), bl.message().c_str());
        m_byteLevel = *bl;
        const std::string ms = qlfix::writeMetaspaceTokenizer((m_tmp.path() + "/metaspace").toStdString(), corpus(),
                                                              200);
        auto mt = ql::HfTokenizer::fromFile(ms);
        QVERIFY2(mt.ok(), mt.message().c_str());
        m_metaspace = *mt;
    }

    void goldenTinyStoriesWikiText()
    {
        const QString model = qltest::sharedModel(QStringLiteral("tinystories-656k"));
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        const QString golden = qltest::sharedFile(QStringLiteral("golden/tinystories-656k.wiki.test.ids"));
        QL_REQUIRE_SHARED(model);
        QL_REQUIRE_SHARED(text);
        QL_REQUIRE_SHARED(golden);
        auto tok = ql::HfTokenizer::fromFile((model + QStringLiteral("/tokenizer.json")).toStdString());
        QVERIFY2(tok.ok(), tok.message().c_str());
        QCOMPARE((*tok)->kind(), std::string("hf-bpe"));
        QCOMPARE((*tok)->vocabSize(), 2048);
        QCOMPARE((*tok)->unkId(), 0);
        QCOMPARE((*tok)->postProcessorPrefix(), Ids{1});
        QVERIFY((*tok)->isSpecial(1) && !(*tok)->isByteLevel() && (*tok)->byteFallback());
        const Ids want = readIds(golden.toStdString());
        QCOMPARE(want.size(), size_t(554431));
        COMPARE_IDS((*tok)->encode(readAll(text.toStdString())), want,
                    QStringLiteral("wiki.test.raw vs HF tokenizers"));
    }

    void encodeTimeWholeWikiText()
    {
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        QL_REQUIRE_SHARED(text);
        auto tok = tinyStories();
        if (!tok) QSKIP("tinystories-656k tokenizer.json not found");
        const std::string s = readAll(text.toStdString());
        QElapsedTimer timer;
        timer.start();
        const Ids ids = tok->encode(s);
        qInfo("encoded %zu bytes into %zu ids in %lld ms (pre_tokenizer null: one BPE word per added-token gap)",
              s.size(), ids.size(), static_cast<long long>(timer.elapsed()));
        QVERIFY(!ids.empty());
    }

    void tinyStoriesQuirks()
    {
        auto tok = tinyStories();
        if (!tok) QSKIP("tinystories-656k tokenizer.json not found");
        // '=' is not in the vocab and there are no <0xNN> pieces: unk; consecutive unknowns fuse.
        const Ids eq = tok->encode("=");
        QCOMPARE(eq.size(), size_t(2));
        QCOMPARE(eq[1], 0);
        QCOMPARE(tok->encode("a==b"), tok->encode("a=b"));
        QVERIFY(tok->encode("").empty());
        // "<unk>" matches only in its normalized form "▁<unk>" (after a space or at the start).
        const Ids spaced = tok->encode("x <unk> y");
        QVERIFY(std::find(spaced.begin(), spaced.end(), 0) != spaced.end());
        QCOMPARE(tok->tokenId("<|end_story|>"), 2);
        QCOMPARE(tok->tokenText(2), std::string("<|end_story|>"));
        QCOMPARE(tok->tokenId("no such piece"), -1);
        QCOMPARE(tok->tokenText(99999), std::string());
        const std::string story = "Once upon a time, there was a little dog.\nHe was happy!";
        QCOMPARE(tok->decode(tok->encode(story)), story);
        // Ill-formed UTF-8 is read as U+FFFD, never a crash.
        QCOMPARE(tok->encode("ab\xFF\xC3 cd"), tok->encode("ab\xEF\xBF\xBD\xEF\xBF\xBD cd"));
    }

    void naiveBpeEdgeCases()
    {
        auto tok = tinyStories();
        if (!tok) QSKIP("tinystories-656k tokenizer.json not found");
        const NaiveBpe naive = NaiveBpe::fromFile(
            qltest::sharedModel(QStringLiteral("tinystories-656k")).toStdString() + "/tokenizer.json");
        const std::vector<std::string> cases = {
            "",
            " ",
            "  ",
            "a",
            " leading",
            "double  space",
            "trailing ",
            "trailing  ",
            "\n",
            "\n\n",
            "line\nbreak",
            "crlf\r\nline",
            "tab\there",
            "\t\t",
            "naïve café — 東京 😀",
            "=",
            "==",
            "a=b",
            "x = y = z",
            "<unk>",
            " <unk> ",
            "a<unk>b",
            "<unk><unk>",
            "<|start_story|>Once upon a time",
            "the end<|end_story|>",
            std::string(1000, 'a'),
            std::string(999, ' '),
            std::string(500, '='),
            "ab" + std::string(300, 'b'),
            "Once upon a time, there was a little girl named Lily. She was very happy.",
            "\xC2\xA0nbsp\xE2\x80\x83"};
        for (const auto& c : cases)
            COMPARE_IDS(tok->encode(c), naiveTinyStories(naive, c),
                        QString::fromStdString("case '" + c.substr(0, 40) + "'"));
    }

    void naiveBpeRandomWikiSubstrings()
    {
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        QL_REQUIRE_SHARED(text);
        auto tok = tinyStories();
        if (!tok) QSKIP("tinystories-656k tokenizer.json not found");
        const NaiveBpe naive = NaiveBpe::fromFile(
            qltest::sharedModel(QStringLiteral("tinystories-656k")).toStdString() + "/tokenizer.json");
        const std::string wiki = readAll(text.toStdString());
        std::mt19937 rng(1234);
        const auto boundary = [&](size_t at) {
            while (at < wiki.size() && (static_cast<unsigned char>(wiki[at]) & 0xC0) == 0x80) ++at;
            return at;
        };
        for (int n = 0; n < 3000; ++n) {
            const size_t len = n < 3 ? 2000 : 1 + rng() % 256;
            const size_t begin = boundary(rng() % (wiki.size() - len));
            const std::string s = wiki.substr(begin, boundary(begin + len) - begin);
            COMPARE_IDS(tok->encode(s), naiveTinyStories(naive, s),
                        QStringLiteral("wiki substring at byte %1").arg(begin));
        }
    }

    void byteLevelMatchesNaive()
    {
        const NaiveBpe naive = NaiveBpe::fromFile(m_byteLevelPath);
        QVERIFY(m_byteLevel->isByteLevel());
        // The small corpus runs out of pairs before 300 merges: every training word is then one token.
        QVERIFY(m_byteLevel->merges().size() >= 150 && m_byteLevel->merges().size() <= 300);
        std::vector<std::string> cases = {"",
                                          " ",
                                          "Hello world",
                                          "  two leading",
                                          "trailing  ",
                                          "a\n\nb",
                                          "x\r\ny",
                                          "tab\tsep",
                                          "it's they're we'll I'd",
                                          "1984 and 3.5km",
                                          "!!! ??? ...",
                                          "   \n  ",
                                          std::string(300, 'e'),
                                          std::string(64, ' ') + "x"};
        const QString wikiPath = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        std::string source = QFileInfo::exists(wikiPath) ? readAll(wikiPath.toStdString()) : corpus();
        source.erase(
            std::remove_if(source.begin(), source.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }),
            source.end());
        std::mt19937 rng(99);
        for (int n = 0; n < 2000; ++n) {
            const size_t len = 1 + rng() % 200;
            cases.push_back(source.substr(rng() % (source.size() - len), len));
        }
        for (const auto& c : cases) {
            Ids want;
            for (const auto& word : gpt2SplitAscii(c)) naive.encodeWord(byteLevel(word), want);
            COMPARE_IDS(m_byteLevel->encode(c), want, QString::fromStdString("byte-level '" + c.substr(0, 40) + "'"));
        }
    }

    void byteLevelNonAscii()
    {
        // Known GPT-2 byte mappings: é = C3 A9 -> "Ã©", 😀 = F0 9F 98 80 -> "ðŁĺĢ", space -> "Ġ".
        const auto pieces = [&](const std::string& s) {
            std::string out;
            for (const int32_t id : m_byteLevel->encode(s)) out += m_byteLevel->tokenText(id);
            return out;
        };
        QCOMPARE(pieces("caf\xC3\xA9"), std::string("caf\xC3\x83\xC2\xA9"));
        QCOMPARE(pieces(" \xF0\x9F\x98\x80"), std::string("\xC4\xA0\xC3\xB0\xC5\x81\xC4\xBA\xC4\xA2"));
        QCOMPARE(pieces("a\nb"), std::string("a\xC4\x8A"
                                             "b"));
        const NaiveBpe naive = NaiveBpe::fromFile(m_byteLevelPath);
        // Pre-tokens of "naïve café — 東京 😀" under \p{L} / \p{N} rules, worked out by hand.
        const std::vector<std::string> words = {"na\xC3\xAFve", " caf\xC3\xA9", " \xE2\x80\x94",
                                                " \xE6\x9D\xB1\xE4\xBA\xAC", " \xF0\x9F\x98\x80"};
        Ids want;
        for (const auto& w : words) naive.encodeWord(byteLevel(w), want);
        COMPARE_IDS(
            m_byteLevel->encode("na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80"),
            want, QStringLiteral("non-ASCII byte-level"));
    }

    void byteLevelRoundTrip()
    {
        std::vector<std::string> cases = {"",
                                          "Hello world",
                                          "  spaces  ",
                                          "naïve café — 東京 😀",
                                          "a\r\n\tb",
                                          "mixed <|endoftext|> special",
                                          "\xE2\x80\x94\xE2\x80\x94"};
        const std::string c = corpus();
        std::mt19937 rng(7);
        for (int n = 0; n < 200; ++n) {
            const size_t len = rng() % 120;
            cases.push_back(c.substr(rng() % (c.size() - len), len));
        }
        for (const auto& s : cases) QCOMPARE(m_byteLevel->decode(m_byteLevel->encode(s)), s);
    }

    void byteLevelAddedTokens()
    {
        const int32_t eot = m_byteLevel->tokenId(qlfix::kEndOfText);
        const int32_t im = m_byteLevel->tokenId(qlfix::kImStart);
        const int32_t tool = m_byteLevel->tokenId(qlfix::kToolTag);
        QVERIFY(eot >= 0 && im == eot + 1 && tool == eot + 2);
        QCOMPARE(m_byteLevel->vocabSize(), tool + 1);
        QVERIFY(m_byteLevel->isSpecial(eot) && !m_byteLevel->isSpecial(tool) && m_byteLevel->isAdded(tool));
        Ids want = m_byteLevel->encode("Hello there");
        want.push_back(eot);
        const Ids after = m_byteLevel->encode(" world");
        want.insert(want.end(), after.begin(), after.end());
        COMPARE_IDS(m_byteLevel->encode("Hello there<|endoftext|> world"), want,
                    QStringLiteral("special in the middle"));
        COMPARE_IDS(m_byteLevel->encode("<|im_start|><|endoftext|><tool>"), (Ids{im, eot, tool}),
                    QStringLiteral("adjacent added"));
        QCOMPARE(m_byteLevel->decode(Ids{im, eot}), std::string("<|im_start|><|endoftext|>"));
        // A lone lead byte (0xE6 is the byte-level character U+00E6) decodes lossily to U+FFFD.
        QCOMPARE(m_byteLevel->decode(Ids{m_byteLevel->tokenId("\xC3\xA6")}), std::string("\xEF\xBF\xBD"));
        // A partial special token is plain text.
        const Ids partial = m_byteLevel->encode("<|endoftext");
        QVERIFY(std::find(partial.begin(), partial.end(), eot) == partial.end());
    }

    void metaspaceByteFallback()
    {
        const NaiveBpe naive = NaiveBpe::fromFile((m_tmp.path() + "/metaspace/tokenizer.json").toStdString());
        QVERIFY(m_metaspace->byteFallback() && !m_metaspace->isByteLevel());
        QCOMPARE(m_metaspace->postProcessorPrefix(), Ids{1});
        // 東 (E6 9D B1) is not in the training text: three byte pieces.
        const Ids east = m_metaspace->encode("\xE6\x9D\xB1");
        const Ids wantEast = {m_metaspace->tokenId("\xE2\x96\x81"), m_metaspace->tokenId("<0xE6>"),
                              m_metaspace->tokenId("<0x9D>"), m_metaspace->tokenId("<0xB1>")};
        COMPARE_IDS(east, wantEast, QStringLiteral("byte fallback of 東"));
        for (const std::string s : {"Once upon a time, Lily saw 東京 😀!", "The dog didn't mind.", "x  y", "naïve"}) {
            Ids want;
            naive.encodeWord("\xE2\x96\x81" + replaceAll(s, " ", "\xE2\x96\x81"), want);
            COMPARE_IDS(m_metaspace->encode(s), want, QString::fromStdString("metaspace '" + s + "'"));
            QCOMPARE(m_metaspace->decode(m_metaspace->encode(s)), s);
        }
        // prepend_scheme "first": only the piece at the very start of the input gets ▁.
        Ids want = {1};
        naive.encodeWord("Once", want);
        COMPARE_IDS(m_metaspace->encode("<s>Once"), want, QStringLiteral("no prefix after <s>"));
        QCOMPARE(m_metaspace->decode(Ids{m_metaspace->tokenId("<0xE6>"), m_metaspace->tokenId("<0x9D>")}),
                 std::string("\xEF\xBF\xBD\xEF\xBF\xBD")); // incomplete UTF-8: one U+FFFD per byte, as HF
    }

    void preTokenizers_data()
    {
        QTest::addColumn<QString>("pre");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("pieces");
        const auto split = [](const char* behavior, bool invert = false) {
            return QString::fromStdString(
                Json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}}
                    .dump());
        };
        QTest::newRow("null") << "null"
                              << "a b"
                              << "a b";
        QTest::newRow("Whitespace") << R"({"type":"Whitespace"})"
                                    << "Hello, world!  foo_bar 42"
                                    << "Hello|,|world|!|foo_bar|42";
        QTest::newRow("Whitespace marks") << R"({"type":"Whitespace"})"
                                          << "e\u0301x y"
                                          << "e\u0301x|y";
        QTest::newRow("WhitespaceSplit") << R"({"type":"WhitespaceSplit"})"
                                         << "Hello, world!\tx "
                                         << "Hello,|world!|x";
        QTest::newRow("Punctuation") << R"({"type":"Punctuation"})"
                                     << "a,b!!c—d"
                                     << "a|,|b|!|!|c|—|d";
        QTest::newRow("Punctuation contiguous") << R"({"type":"Punctuation","behavior":"Contiguous"})"
                                                << "a,b!!c"
                                                << "a|,|b|!!|c";
        QTest::newRow("Digits individual") << R"({"type":"Digits","individual_digits":true})"
                                           << "ab123c٣"
                                           << "ab|1|2|3|c|٣";
        QTest::newRow("Digits grouped") << R"({"type":"Digits","individual_digits":false})"
                                        << "ab123c"
                                        << "ab|123|c";
        QTest::newRow("Split Removed") << split("Removed") << "a-b--c"
                                       << "a|b|c";
        QTest::newRow("Split Isolated") << split("Isolated") << "a-b--c"
                                        << "a|-|b|-|-|c";
        QTest::newRow("Split MergedWithPrevious") << split("MergedWithPrevious") << "a-b--c"
                                                  << "a-|b-|-|c";
        QTest::newRow("Split MergedWithNext") << split("MergedWithNext") << "a-b--c"
                                              << "a|-b|-|-c";
        QTest::newRow("Split Contiguous") << split("Contiguous") << "a-b--c"
                                          << "a|-|b|--|c";
        QTest::newRow("Split invert") << split("Removed", true) << "a-b--c"
                                      << "-|-|-";
        QTest::newRow("Split regex")
            << R"({"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Isolated","invert":false})"
            << "ab12cd3"
            << "ab|12|cd|3";
        QTest::newRow("Metaspace always")
            << R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})"
            << "hello world"
            << "▁hello|▁world";
        QTest::newRow("Metaspace leading spaces")
            << R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})"
            << "  a"
            << "▁|▁a";
        QTest::newRow("Metaspace never")
            << R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":true})"
            << "hi there"
            << "hi|▁there";
        QTest::newRow("Metaspace no split")
            << R"({"type":"Metaspace","replacement":"▁","add_prefix_space":true,"split":false})"
            << "hi there"
            << "▁hi▁there";
        QTest::newRow("Metaspace first after added")
            << R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true})"
            << "<x>hi there"
            << "[<x>]|hi|▁there";
        QTest::newRow("Metaspace always after added")
            << R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})"
            << "<x>hi"
            << "[<x>]|▁hi";
        QTest::newRow("ByteLevel regex") << R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})"
                                         << "Hello world\n"
                                         << "ĠHello|Ġworld|Ċ";
        QTest::newRow("ByteLevel no regex") << R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})"
                                            << "Hello world"
                                            << "HelloĠworld";
        QTest::newRow("Sequence")
            << R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})"
            << "ab12 c3"
            << "ab|1|2|c|3";
        QTest::newRow("Bert") << R"({"type":"BertPreTokenizer"})"
                              << "Hi, there!"
                              << "Hi|,|there|!";
        const Json llama3 = {{"type", "Split"},
                             {"pattern",
                              {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?"
                                         "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                             {"behavior", "Isolated"},
                             {"invert", false}};
        QTest::newRow("Llama-3 regex") << QString::fromStdString(llama3.dump()) << "Hello world'S 12345 !!\n\n  x"
                                       << "Hello| world|'S| |123|45| !!\n\n| | x";
    }

    void preTokenizers()
    {
        QFETCH(QString, pre);
        QFETCH(QString, text);
        QFETCH(QString, pieces);
        const Json added = Json::array({addedTok(1000, "<x>", false)});
        QCOMPARE(probe(probeJson(nullptr, Json::parse(pre.toStdString()), added), text.toStdString()), pieces);
    }

    void normalizers_data()
    {
        QTest::addColumn<QString>("norm");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("normalized");
        QTest::newRow("Lowercase") << R"({"type":"Lowercase"})"
                                   << "HeLLo İ"
                                   << "hello i̇";
        QTest::newRow("NFKC") << R"({"type":"NFKC"})"
                              << "ﬁ²"
                              << "fi2";
        QTest::newRow("NFC") << R"({"type":"NFC"})"
                             << "e\u0301"
                             << "é";
        QTest::newRow("NFD") << R"({"type":"NFD"})"
                             << "é"
                             << "e\u0301";
        QTest::newRow("NFKD") << R"({"type":"NFKD"})"
                              << "ﬁé"
                              << "fie\u0301";
        QTest::newRow("Strip") << R"({"type":"Strip","strip_left":true,"strip_right":true})"
                               << "  a b \n"
                               << "a b";
        QTest::newRow("Strip left") << R"({"type":"Strip","strip_left":true,"strip_right":false})"
                                    << "  a b "
                                    << "a b ";
        QTest::newRow("Replace regex") << R"({"type":"Replace","pattern":{"Regex":" +"},"content":"-"})"
                                       << "a  b c"
                                       << "a-b-c";
        QTest::newRow("Replace string") << R"({"type":"Replace","pattern":{"String":"ab"},"content":"x"})"
                                        << "aabab"
                                        << "axx";
        QTest::newRow("Prepend") << R"({"type":"Prepend","prepend":"▁"})"
                                 << "a"
                                 << "▁a";
        QTest::newRow("Prepend empty") << R"({"type":"Prepend","prepend":"▁"})"
                                       << ""
                                       << "";
        QTest::newRow("Sequence NFD StripAccents")
            << R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]})"
            << "café"
            << "cafe";
        QTest::newRow("added token splits before Prepend") << R"({"type":"Prepend","prepend":"▁"})"
                                                           << "a<x>b"
                                                           << "▁a[<x>]▁b";
    }

    void normalizers()
    {
        QFETCH(QString, norm);
        QFETCH(QString, text);
        QFETCH(QString, normalized);
        const Json added = Json::array({addedTok(1000, "<x>", false)});
        // With no pre-tokenizer each normalized piece is one word: its characters are the normalized text.
        QCOMPARE(probe(probeJson(Json::parse(norm.toStdString()), nullptr, added), text.toStdString())
                     .remove(QLatin1Char('|')),
                 normalized);
    }

    void addedTokenOptions()
    {
        const auto run = [](const Json& tok, const Json& norm, const std::string& text) {
            return probe(probeJson(norm, Json{{"type", "WhitespaceSplit"}}, Json::array({tok})), text);
        };
        QCOMPARE(run(addedTok(900, "<m>", false), nullptr, "a  <m>b"), QStringLiteral("a|[<m>]|b"));
        QCOMPARE(run(addedTok(900, "<m>", false, true), nullptr, "a  <m>b"), QStringLiteral("a|[<m>]|b"));
        const auto noSplit = [](const Json& tok, const std::string& text) {
            return probe(probeJson(nullptr, nullptr, Json::array({tok})), text);
        };
        QCOMPARE(noSplit(addedTok(900, "<m>", false), "a  <m>  b"), QStringLiteral("a  |[<m>]|  b"));
        QCOMPARE(noSplit(addedTok(900, "<m>", false, true), "a  <m>  b"), QStringLiteral("a|[<m>]|  b"));
        QCOMPARE(noSplit(addedTok(900, "<m>", false, false, true), "a  <m>  b"), QStringLiteral("a  |[<m>]|b"));
        QCOMPARE(noSplit(addedTok(900, "ab", false, false, false, true), "ab cab ab"),
                 QStringLiteral("[ab]| cab |[ab]"));
        // normalized:true tokens are matched on normalized text by their normalized form.
        QCOMPARE(run(addedTok(900, "<M>", true), Json{{"type", "Lowercase"}}, "x<M>Y"), QStringLiteral("x|[<M>]|y"));
        QCOMPARE(run(addedTok(900, "<M>", false), Json{{"type", "Lowercase"}}, "x<m>Y"), QStringLiteral("x<m>y"));
        // Leftmost-longest among overlapping added tokens.
        const std::string two = probeJson(nullptr, nullptr,
                                          Json::array({addedTok(900, "<a>", false), addedTok(901, "<a><b>", false)}));
        QCOMPARE(probe(two, "<a><b><a>"), QStringLiteral("[<a><b>]|[<a>]"));
    }

    void bpeModelOptions()
    {
        const auto make = [](Json model) {
            model["type"] = "BPE";
            auto t = ql::HfTokenizer::fromJson(Json{{"model", model}}.dump(), "opts.json");
            return t ? *t : nullptr;
        };
        const Json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"c", 3}, {"ab", 4}, {"abc", 5}, {"bc", 6}};
        auto strings = make({{"vocab", vocab}, {"merges", Json::array({"a b", "b c"})}, {"unk_token", "<unk>"}});
        auto arrays = make({{"vocab", vocab},
                            {"merges", Json::array({Json::array({"a", "b"}), Json::array({"b", "c"})})},
                            {"unk_token", "<unk>"}});
        QVERIFY(strings && arrays);
        QCOMPARE(strings->encode("abc"), (Ids{4, 3}));
        QCOMPARE(arrays->encode("abc"), (Ids{4, 3}));
        auto ranked = make({{"vocab", vocab}, {"merges", Json::array({"b c", "a b"})}, {"unk_token", "<unk>"}});
        QCOMPARE(ranked->encode("abc"), (Ids{1, 6}));
        auto ignore = make({{"vocab", vocab}, {"merges", Json::array({"a b"})}, {"ignore_merges", true}});
        QCOMPARE(ignore->encode("abc"), Ids{5});
        QCOMPARE(ignore->encode("abcx"), (Ids{4, 3})); // no unk_token: unknown chars vanish
        auto fused = make({{"vocab", vocab}, {"merges", Json::array()}, {"unk_token", "<unk>"}, {"fuse_unk", true}});
        auto unfused = make({{"vocab", vocab}, {"merges", Json::array()}, {"unk_token", "<unk>"}, {"fuse_unk", false}});
        QCOMPARE(fused->encode("a??b"), (Ids{1, 0, 2}));
        QCOMPARE(unfused->encode("a??b"), (Ids{1, 0, 0, 2}));
        // Byte fallback needs every byte piece of the character; otherwise unk.
        auto bytes = make({{"vocab", {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}, {"<0xE6>", 4}}},
                           {"merges", Json::array()},
                           {"unk_token", "<unk>"},
                           {"byte_fallback", true}});
        QCOMPARE(bytes->encode("a\xC3\xA9\xE6\x9D\xB1"), (Ids{1, 2, 3, 0}));
        auto prefixed = make({{"vocab", {{"a", 0}, {"##b", 1}, {"ab", 2}}},
                              {"merges", Json::array({"a ##b"})},
                              {"continuing_subword_prefix", "##"}});
        QCOMPARE(prefixed->encode("ab"), Ids{2});
        auto suffixed = make({{"vocab", {{"a", 0}, {"b</w>", 1}, {"ab</w>", 2}, {"a</w>", 3}}},
                              {"merges", Json::array({"a b</w>"})},
                              {"end_of_word_suffix", "</w>"}});
        QCOMPARE(suffixed->encode("ab"), Ids{2});
        QCOMPARE(suffixed->encode("a"), Ids{3});
    }

    void decoders()
    {
        const auto make = [](const Json& decoder, const Json& vocab) {
            auto t = ql::HfTokenizer::fromJson(
                Json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", Json::array()}}}, {"decoder", decoder}}
                    .dump(),
                "dec.json");
            return t ? *t : nullptr;
        };
        const Json vocab = {
            {"\xE2\x96\x81hello", 0}, {"\xE2\x96\x81world", 1}, {"<0xE2>", 2}, {"<0x82>", 3}, {"<0xAC>", 4}, {"x", 5}};
        auto meta = make({{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}}, vocab);
        QVERIFY(meta);
        QCOMPARE(meta->decode(Ids{0, 1}), std::string("hello world"));
        auto fallback = make(
            Json::parse(R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
            {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})"),
            vocab);
        QVERIFY(fallback);
        QCOMPARE(fallback->decode(Ids{0, 2, 3, 4, 5, 1}), std::string("hello\xE2\x82\xACx world"));
        auto none = make(nullptr, vocab);
        QCOMPARE(none->decode(Ids{5, 5}), std::string("x x"));
    }

    void badInput_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("mentions");
        const QString model = QStringLiteral(R"("model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]})");
        QTest::newRow("empty file") << ""
                                    << "invalid JSON";
        QTest::newRow("truncated") << "{\"model\":{\"type\":\"BPE\",\"vocab\":{"
                                   << "invalid JSON";
        QTest::newRow("not an object") << "[1,2]"
                                       << "not a tokenizer.json";
        QTest::newRow("no model") << R"({"normalizer":null})"
                                  << "model";
        QTest::newRow("WordPiece") << R"({"model":{"type":"WordPiece","vocab":{"a":0}}})"
                                   << "WordPiece";
        QTest::newRow("Unigram") << R"({"model":{"type":"Unigram","vocab":[["a",0.0]]}})"
                                 << "Unigram";
        QTest::newRow("untyped unigram") << R"({"model":{"vocab":[["a",0.0]]}})"
                                         << "Unigram";
        QTest::newRow("normalizer") << "{" + model +
                                           R"(,"normalizer":{"type":"Precompiled","precompiled_charsmap":""}})"
                                    << "Precompiled";
        QTest::newRow("nested normalizer")
            << "{" + model + R"(,"normalizer":{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Nope"}]}})"
            << "normalizer.normalizers[1]: normalizer type 'Nope'";
        QTest::newRow("pre_tokenizer") << "{" + model + R"(,"pre_tokenizer":{"type":"UnicodeScripts"}})"
                                       << "pre_tokenizer: pre-tokenizer type 'UnicodeScripts'";
        QTest::newRow("decoder") << "{" + model + R"(,"decoder":{"type":"CTC"}})"
                                 << "decoder type 'CTC'";
        QTest::newRow("bad regex")
            << "{" + model +
                   R"(,"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\p{Nope}"},"behavior":"Isolated"}})"
            << "regex";
        QTest::newRow("bad behavior")
            << "{" + model + R"(,"pre_tokenizer":{"type":"Split","pattern":{"String":"a"},"behavior":"Sideways"}})"
            << "Sideways";
        QTest::newRow("merge not in vocab") << R"({"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}})"
                                            << "model.merges[0]: merged token 'ab'";
        QTest::newRow("merge malformed") << R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["ab"]}})"
                                         << "model.merges[0]";
        QTest::newRow("merges not array") << R"({"model":{"type":"BPE","vocab":{"a":0},"merges":7}})"
                                          << "model.merges";
        QTest::newRow("vocab bad id") << R"({"model":{"type":"BPE","vocab":{"a":"zero"},"merges":[]}})"
                                      << "model.vocab";
        QTest::newRow("vocab missing") << R"({"model":{"type":"BPE","merges":[]}})"
                                       << "model.vocab";
        QTest::newRow("added token no content") << "{" + model + R"(,"added_tokens":[{"id":5}]})"
                                                << "added_tokens[0]";
        QTest::newRow("wrong field type")
            << "{" + model +
                   R"(,"pre_tokenizer":{"type":"Split","pattern":{"String":"a"},"behavior":"Isolated","invert":"yes"}})"
            << "invert";
    }

    void badInput()
    {
        QFETCH(QString, json);
        QFETCH(QString, mentions);
        const std::string path = (m_tmp.path() + "/bad/tokenizer.json").toStdString();
        QDir().mkpath(m_tmp.path() + "/bad");
        std::ofstream(path, std::ios::binary | std::ios::trunc) << json.toStdString();
        const auto tok = ql::HfTokenizer::fromFile(path);
        QVERIFY(!tok.ok());
        const QString msg = QString::fromStdString(tok.message());
        QVERIFY2(msg.contains(QString::fromStdString(path)), qPrintable(msg));
        QVERIFY2(msg.contains(mentions), qPrintable(msg));
    }

    void missingFile()
    {
        const std::string path = (m_tmp.path() + "/nowhere/tokenizer.json").toStdString();
        const auto tok = ql::HfTokenizer::fromFile(path);
        QVERIFY(!tok.ok());
        QVERIFY2(QString::fromStdString(tok.message()).contains(QString::fromStdString(path)), tok.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestHfTokenizer)
#include "tst_hftokenizer.moc"
