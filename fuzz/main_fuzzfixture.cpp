// ql-fuzz-fixture OUT_DIR: writes the seed material fuzz/run.sh builds its corpora from: the
// fuzz targets' fixture model with a byte-level tokenizer.json (OUT_DIR/model), a Metaspace
// tokenizer.json (OUT_DIR/metaspace) and a SentencePiece tokenizer.model (OUT_DIR/sentencepiece).
#include "fixturemodel.h"
#include "fuzzutil.h"
#include "tokenizerfixture.h"

#include <cstdio>
#include <filesystem>

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: ql-fuzz-fixture OUT_DIR\n");
        return 2;
    }
    const std::string out = argv[1];
    const std::string text = std::string(qlfuzz::sampleText()) +
                             " The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore; "
                             "a little bird sang in the tall old tree, and the children laughed. ";
    qlfuzz::writeFixtureModel(out + "/model");
    bool ok = !qlfix::writeByteLevelTokenizer(out + "/model", text, 40).empty();
    std::filesystem::create_directories(out + "/metaspace");
    ok = ok && !qlfix::writeMetaspaceTokenizer(out + "/metaspace", text, 40).empty();
    std::string error;
    std::filesystem::create_directories(out + "/sentencepiece");
    ok = ok && qlfix::writeSentencePieceTokenizer(out + "/sentencepiece", text + text + text, 400, &error);
    if (!ok) {
        std::fprintf(stderr, "error: cannot write the seed fixtures in %s %s\n", out.c_str(), error.c_str());
        return 1;
    }
    return 0;
}
