// GGUF vocabularies of Hugging Face BPE tokenizers, both directions: tinystories-656k's
// SentencePiece-style tokenizer.json written as a "llama" vocabulary with its merges and read back
// to the golden ids of the whole WikiText-2 test text, the same vocabulary read by its scores
// alone (llama.cpp's rule), and byte-level fixture tokenizers written as "gpt2" vocabularies
// under each llama.cpp pre-tokenizer name QuantLens knows, read back to the original's ids.
#include "quantlens/export/ggufexport.h"
#include "quantlens/export/ggufimport.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/export/ggufwriter.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/model/model.h"
#include "quantlens/text/hftokenizer.h"
#include "quantlens/text/tokenizer.h"

#include "fixturemodel.h"
#include "testpaths.h"
#include "tokenizerfixture.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using Json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

// Multilingual text with digits, runs of whitespace, contractions and the fixture's added tokens.
const char* const kProbe =
    "Hello world! The quick brown fox jumps over the lazy dog 12345 times, 3.14159 and 1,000,000.\n\n"
    "  Ça va? Größe, naïve café; 東京は晴れ。 Привет мир! Γειά σου κόσμε — tabs\there   spaces   \n"
    "I'm sure you'll see they've done it, WE'RE here. <tool> x<|endoftext|>y <|im_start|>z\r\nend  \n"
    "Numbers 0 07 123456789, emoji 🦙🦙, tabs\t\tand\u00a0no-break spaces, cafe\u0301 (a combining accent).";

// The fixtures' training text: enough English and a little of every script above for merges.
std::string trainingText()
{
    std::string text;
    for (int k = 0; k < 4; ++k)
        text += "The cat sat on the mat, and the dog sat on the log. They're friends; they've always been. "
                "In 2024 there were 365 days, 52 weeks and 12 months. Ça va très bien, merci. Die Größe des "
                "Hauses ist schön. 東京と大阪は日本の都市です。 Привет, как дела? Καλημέρα σας. "
                "Whitespace   runs\tand\ttabs\n\nnew lines.\n";
    return text + kProbe;
}

const std::string* stringKey(const ql::GgufFile& f, const char* key)
{
    const ql::GgufValue* v = f.value(key);
    return v ? std::get_if<std::string>(v) : nullptr;
}

template <class T>
const std::vector<T>* arrayKey(const ql::GgufFile& f, const char* key)
{
    const ql::GgufValue* v = f.value(key);
    return v ? std::get_if<std::vector<T>>(v) : nullptr;
}

bool boolKey(const ql::GgufFile& f, const char* key)
{
    const ql::GgufValue* v = f.value(key);
    return v && std::get_if<bool>(v) && std::get<bool>(*v);
}

// Ids of a inside the stretches of text that a and b cut differently: a stretch starts at the
// first differing id and ends where both sides have covered the same number of piece bytes.
size_t differingIds(const Ids& a, const Ids& b, const ql::Tokenizer& t, size_t& stretches)
{
    size_t i = 0, j = 0, ids = 0;
    stretches = 0;
    while (i < a.size() && j < b.size()) {
        if (a[i] == b[j]) {
            ++i, ++j;
            continue;
        }
        ++stretches;
        size_t la = t.tokenText(a[i++]).size(), lb = t.tokenText(b[j++]).size();
        ++ids;
        while (la != lb && i < a.size() && j < b.size()) {
            if (la < lb) {
                la += t.tokenText(a[i++]).size();
                ++ids;
            } else {
                lb += t.tokenText(b[j++]).size();
            }
        }
    }
    return ids + (a.size() - i);
}

// tinystories-656k exported as an f32 GGUF into dir; empty (with a skip message) when missing.
std::string exportTinyStories(const QTemporaryDir& dir, std::shared_ptr<ql::Tokenizer>& tok, QString& skip)
{
    const QString model = qltest::sharedModel(QStringLiteral("tinystories-656k"));
    if (!QFileInfo::exists(model + QStringLiteral("/tokenizer.json"))) {
        skip = QStringLiteral("shared model not found: %1 (set QL_SHARED_DIR or QL_TEST_MODELS)").arg(model);
        return {};
    }
    auto m = ql::Model::open(model.toStdString());
    auto t = ql::loadTokenizer(model.toStdString());
    if (!m || !t) {
        skip = QStringLiteral("tinystories-656k does not open: ") +
               QString::fromStdString(m ? t.message() : m.message());
        return {};
    }
    tok = *t;
    const std::string path = dir.filePath(QStringLiteral("tinystories.gguf")).toStdString();
    ql::GgufExportOptions opt;
    opt.type = ql::GgmlType::F32;
    auto r = ql::exportGguf(*m, *m, *tok, opt, path);
    if (!r) {
        skip = QStringLiteral("export failed: ") + QString::fromStdString(r.error().message);
        return {};
    }
    return path;
}

// A fixture model folder whose tokenizer.json is trained by write (into a side folder first, so
// the model gets the tokenizer's vocabulary size), then edited by edit.
std::string fixtureModel(const QTemporaryDir& tmp, const std::function<std::string(const std::string&)>& write,
                         const std::function<void(Json&)>& edit = {})
{
    namespace fs = std::filesystem;
    const std::string side = tmp.filePath(QStringLiteral("tokenizer")).toStdString();
    const std::string dir = tmp.filePath(QStringLiteral("model")).toStdString();
    if (write(side).empty()) return {};
    auto tok = ql::HfTokenizer::fromFile(side + "/tokenizer.json");
    if (!tok) return {};
    qlfix::ModelSpec spec;
    spec.vocab = (*tok)->vocabSize();
    if (!qlfix::writeModel(dir, spec)) return {};
    Json j = Json::parse(qltest::readAll(side + "/tokenizer.json"));
    if (edit) edit(j);
    std::ofstream(dir + "/tokenizer.json", std::ios::binary) << j.dump(2);
    std::error_code ec;
    fs::copy_file(side + "/tokenizer_config.json", dir + "/tokenizer_config.json", ec);
    return ec ? std::string() : dir;
}

// Exports the fixture model at dir as f32 GGUF; the error message, or "" on success.
std::string exportFixture(const std::string& dir, const std::string& path)
{
    auto m = ql::Model::open(dir);
    if (!m) return m.message();
    auto t = ql::loadTokenizer(dir);
    if (!t) return t.message();
    ql::GgufExportOptions opt;
    opt.type = ql::GgmlType::F32;
    auto r = ql::exportGguf(*m, *m, **t, opt, path);
    return r ? std::string() : r.error().message;
}

// The byte-level fixture's pre-tokenizer replaced by Split(regex) + ByteLevel without a regex.
std::function<void(Json&)> splitPreTokenizer(const std::string& regex, bool ignoreMerges, bool nfc)
{
    return [=](Json& j) {
        const Json split = {
            {"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
        const Json byteLevel = {
            {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
        j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split, byteLevel})}};
        j["model"]["ignore_merges"] = ignoreMerges;
        j["normalizer"] = nfc ? Json{{"type", "NFC"}} : Json(nullptr);
    };
}

} // namespace

class TestGgufVocab : public QObject {
    Q_OBJECT

private slots:
    // tinystories-656k (SentencePiece-style BPE: Prepend/Replace normalizer, no pre-tokenizer)
    // goes out as a "llama" vocabulary with scores -rank and its merges, and reads back through
    // a rebuilt tokenizer.json to the golden ids of the whole WikiText-2 test text.
    void tinyStoriesAsLlamaVocabulary()
    {
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        const QString golden = qltest::sharedFile(QStringLiteral("golden/tinystories-656k.wiki.test.ids"));
        QL_REQUIRE_SHARED(text);
        QL_REQUIRE_SHARED(golden);
        QTemporaryDir tmp;
        std::shared_ptr<ql::Tokenizer> tok;
        QString skip;
        const std::string path = exportTinyStories(tmp, tok, skip);
        if (path.empty()) QSKIP(qPrintable(skip));
        const auto& hf = dynamic_cast<const ql::HfTokenizer&>(*tok);

        auto g = ql::GgufFile::open(path);
        QVERIFY2(g, g ? "" : g.error().message.c_str());
        QCOMPARE(*stringKey(*g, "tokenizer.ggml.model"), std::string("llama"));
        const auto* tokens = arrayKey<std::string>(*g, "tokenizer.ggml.tokens");
        const auto* types = arrayKey<int32_t>(*g, "tokenizer.ggml.token_type");
        const auto* scores = arrayKey<float>(*g, "tokenizer.ggml.scores");
        const auto* merges = arrayKey<std::string>(*g, "tokenizer.ggml.merges");
        QVERIFY(tokens && types && scores && merges);
        QCOMPARE(tokens->size(), size_t(2048));
        QCOMPARE((*tokens)[1], std::string("<|start_story|>"));
        QCOMPARE((*types)[0], 2); // <unk>: unknown
        QCOMPARE((*types)[1], 3); // <|start_story|>: special added token, control
        QCOMPARE((*types)[2], 3); // <|end_story|>
        QCOMPARE(merges->size(), size_t(1967));
        QCOMPARE(merges->front(), hf.merges().front().first + " " + hf.merges().front().second);
        // The piece merge r makes scores -r; pieces no merge makes lose to every merge.
        for (size_t r : {size_t(0), size_t(1), size_t(1000), size_t(1966)}) {
            const int32_t id = tok->tokenId(hf.merges()[r].first + hf.merges()[r].second);
            QCOMPARE((*scores)[size_t(id)], -float(r));
        }
        QVERIFY((*scores)[size_t(tok->tokenId("e"))] < -1966.f);
        QVERIFY(boolKey(*g, "tokenizer.ggml.add_space_prefix"));
        QVERIFY(!boolKey(*g, "tokenizer.ggml.remove_extra_whitespaces"));
        QVERIFY(boolKey(*g, "tokenizer.ggml.add_bos_token"));

        auto back = ql::OpenedModel::open(path);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        QVERIFY2(back->tokenizer, back->tokenizerError.c_str());
        QCOMPARE(back->tokenizer->kind(), std::string("hf-bpe"));
        const Ids want = qltest::readIds(golden);
        QVERIFY(back->tokenizer->encode(qltest::readAll(text)) == want);
        QCOMPARE(back->tokenizer->bosId(), tok->bosId());
        QCOMPARE(back->tokenizer->eosId(), tok->eosId());
        QCOMPARE(back->tokenizer->addsBos(), tok->addsBos());
        QCOMPARE(back->tokenizer->vocabSize(), tok->vocabSize());
    }

    // The same file without tokenizer.ggml.merges is read by the scores alone, as llama.cpp reads
    // every "llama" vocabulary: the SentencePiece rule (join the adjacent pair whose piece scores
    // highest) in place of HF's (apply the listed merge of lowest rank). The two can differ when
    // a piece is spelled by an adjacent pair its merge does not list, or by two pairs of different
    // ranks; on this BPE-trained vocabulary we measured no difference at all on the whole
    // WikiText-2 test text. llama.cpp itself would not get that far: the vocabulary has no <0xNN>
    // pieces, so its SPM tokenizer throws on the first character outside its 78 single-character
    // pieces (llama-vocab.cpp byte_to_token: token_to_id.at), where SentencePiece and HF give <unk>.
    void tinyStoriesByScoresAlone()
    {
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        const QString golden = qltest::sharedFile(QStringLiteral("golden/tinystories-656k.wiki.test.ids"));
        QL_REQUIRE_SHARED(text);
        QL_REQUIRE_SHARED(golden);
        QTemporaryDir tmp;
        std::shared_ptr<ql::Tokenizer> tok;
        QString skip;
        const std::string path = exportTinyStories(tmp, tok, skip);
        if (path.empty()) QSKIP(qPrintable(skip));
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        ql::GgufWriter w; // the same metadata without the merges (GgufWriter adds general.alignment itself)
        for (const auto& [key, value] : g->metadata())
            if (key != "tokenizer.ggml.merges" && key != "general.alignment") w.set(key, value);
        const std::string bare = tmp.filePath(QStringLiteral("no-merges.gguf")).toStdString();
        QVERIFY(w.write(bare));
        auto gb = ql::GgufFile::open(bare);
        QVERIFY(gb);
        auto sp = ql::ggufTokenizer(*gb);
        QVERIFY2(sp, sp ? "" : sp.error().message.c_str());
        QCOMPARE((*sp)->kind(), std::string("sentencepiece"));
        QCOMPARE((*sp)->bosId(), tok->bosId());
        QCOMPARE((*sp)->addsBos(), tok->addsBos());

        for (const char* s : {"Once upon a time, there was a little girl named Lily.",
                              "She loved to play outside in the sun with her dog, Max.",
                              "One day, she saw a big red ball in the park. \"Can I play with you?\" asked Tom.",
                              "They were happy and played all day.\nThe end."})
            QVERIFY2((*sp)->encode(s) == tok->encode(s), s);

        const Ids want = qltest::readIds(golden);
        const Ids got = (*sp)->encode(qltest::readAll(text));
        size_t stretches = 0;
        const size_t differing = differingIds(want, got, *tok, stretches);
        qInfo("merge-free (scores only) read of tinystories-656k on WikiText-2: %zu of %zu golden ids in %zu "
              "differently cut stretches; %zu ids in all",
              differing, want.size(), stretches, got.size());
        QCOMPARE(differing, size_t(0)); // measured: none
    }

    void byteLevelRoundTrip_data()
    {
        QTest::addColumn<QString>("pre");
        QTest::addColumn<QString>("regex"); // "" : the ByteLevel pre-tokenizer's own (GPT-2's)
        QTest::addColumn<bool>("ignoreMerges");
        QTest::addColumn<bool>("nfc");
        // The regexes as the models' tokenizer.json files spell them (llama-vocab.cpp quotes each).
        QTest::newRow("gpt-2") << "gpt-2"
                               << "" << false << false;
        QTest::newRow("llama-bpe")
            << "llama-bpe"
            << R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
            << true << false;
        QTest::newRow("qwen2")
            << "qwen2"
            << R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
            << false << true;
        QTest::newRow("tekken")
            << "tekken"
            << R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
            << true << false;
        QTest::newRow("gpt-4o")
            << "gpt-4o"
            << R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
            << false << false;
    }

    // A byte-level fixture goes out as "gpt2" with the pre-tokenizer's name, its merges and token
    // types, and reads back to the original's ids, specials and BOS settings.
    void byteLevelRoundTrip()
    {
        QFETCH(QString, pre);
        QFETCH(QString, regex);
        QFETCH(bool, ignoreMerges);
        QFETCH(bool, nfc);
        QTemporaryDir tmp;
        const std::string train = trainingText();
        const auto write = [&](const std::string& d) { return qlfix::writeByteLevelTokenizer(d, train, 300); };
        const std::string dir = regex.isEmpty()
                                    ? fixtureModel(tmp, write)
                                    : fixtureModel(tmp, write,
                                                   splitPreTokenizer(regex.toStdString(), ignoreMerges, nfc));
        QVERIFY(!dir.empty());
        auto tok = ql::loadTokenizer(dir);
        QVERIFY2(tok, tok ? "" : tok.error().message.c_str());
        const std::string path = tmp.filePath(QStringLiteral("m.gguf")).toStdString();
        const std::string error = exportFixture(dir, path);
        QVERIFY2(error.empty(), error.c_str());

        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        QCOMPARE(*stringKey(*g, "tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(*stringKey(*g, "tokenizer.ggml.pre"), pre.toStdString());
        const auto& hf = dynamic_cast<const ql::HfTokenizer&>(**tok);
        const auto* merges = arrayKey<std::string>(*g, "tokenizer.ggml.merges");
        const auto* types = arrayKey<int32_t>(*g, "tokenizer.ggml.token_type");
        QVERIFY(merges && types && !g->value("tokenizer.ggml.scores"));
        QCOMPARE(merges->size(), hf.merges().size());
        QCOMPARE(merges->back(), hf.merges().back().first + " " + hf.merges().back().second);
        QCOMPARE((*types)[size_t(hf.tokenId(qlfix::kEndOfText))], 3);
        QCOMPARE((*types)[size_t(hf.tokenId(qlfix::kImStart))], 3);
        QCOMPARE((*types)[size_t(hf.tokenId(qlfix::kToolTag))], 4); // not special: user-defined
        QCOMPARE((*types)[0], 1);

        auto back = ql::OpenedModel::open(path);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        QVERIFY2(back->tokenizer, back->tokenizerError.c_str());
        for (const std::string& text : {std::string(kProbe), train}) {
            const Ids want = (*tok)->encode(text);
            QVERIFY(want.size() > 10);
            QVERIFY(back->tokenizer->encode(text) == want);
        }
        QCOMPARE(back->tokenizer->bosId(), (*tok)->bosId());
        QCOMPARE(back->tokenizer->eosId(), (*tok)->eosId());
        QCOMPARE(back->tokenizer->addsBos(), (*tok)->addsBos());
        QCOMPARE(back->tokenizer->vocabSize(), (*tok)->vocabSize());
    }

    // The SentencePiece-style fixture (Metaspace pre-tokenizer in place of tinystories'
    // normalizer, <0xNN> byte pieces) goes out as "llama" with its merges and reads back exactly,
    // whether Metaspace splits words or not (no merge of it joins across a '▁').
    void metaspaceRoundTrip()
    {
        for (const bool split : {false, true}) {
            QTemporaryDir tmp;
            const std::string train = trainingText();
            const std::string dir = fixtureModel(
                tmp, [&](const std::string& d) { return qlfix::writeMetaspaceTokenizer(d, train, 300, split); });
            QVERIFY(!dir.empty());
            auto tok = ql::loadTokenizer(dir);
            QVERIFY(tok);
            const std::string path = tmp.filePath(QStringLiteral("m.gguf")).toStdString();
            const std::string error = exportFixture(dir, path);
            QVERIFY2(error.empty(), error.c_str());
            auto g = ql::GgufFile::open(path);
            QVERIFY(g);
            QCOMPARE(*stringKey(*g, "tokenizer.ggml.model"), std::string("llama"));
            QVERIFY(boolKey(*g, "tokenizer.ggml.add_space_prefix"));
            const auto* types = arrayKey<int32_t>(*g, "tokenizer.ggml.token_type");
            QVERIFY(types);
            QCOMPARE((*types)[size_t((*tok)->tokenId("<0x41>"))], 6);
            auto back = ql::OpenedModel::open(path);
            QVERIFY2(back && back->tokenizer, back ? back->tokenizerError.c_str() : back.error().message.c_str());
            for (const std::string& text : {std::string(kProbe), train})
                QVERIFY(back->tokenizer->encode(text) == (*tok)->encode(text));
            QCOMPARE(back->tokenizer->bosId(), (*tok)->bosId());
            QCOMPARE(back->tokenizer->addsBos(), (*tok)->addsBos());
        }
    }

    // A pre-tokenizer regex llama.cpp has no name for is refused, naming it (a wrong
    // tokenizer.ggml.pre would tokenize silently differently); an unknown name is refused on import.
    void unknownPreTokenizersAreRefused()
    {
        QTemporaryDir tmp;
        const std::string train = trainingText();
        const std::string regex = R"(\p{L}+|\p{N}+|\s+|.)";
        const std::string dir = fixtureModel(
            tmp, [&](const std::string& d) { return qlfix::writeByteLevelTokenizer(d, train, 100); },
            splitPreTokenizer(regex, false, false));
        QVERIFY(!dir.empty());
        const std::string path = tmp.filePath(QStringLiteral("m.gguf")).toStdString();
        const std::string error = exportFixture(dir, path);
        QVERIFY2(error.find("'" + regex + "'") != std::string::npos, error.c_str());
        QVERIFY(!QFileInfo::exists(QString::fromStdString(path)));

        ql::GgufWriter w;
        w.set("tokenizer.ggml.model", std::string("gpt2"));
        w.set("tokenizer.ggml.pre", std::string("made-up"));
        w.set("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "ab"});
        w.set("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
        QVERIFY(w.write(path));
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        auto t = ql::ggufTokenizer(*g);
        QVERIFY(!t);
        QVERIFY2(t.error().message.find("'made-up'") != std::string::npos, t.error().message.c_str());
        QVERIFY2(t.error().message.find(path) != std::string::npos, t.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestGgufVocab)
#include "tst_ggufvocab.moc"
