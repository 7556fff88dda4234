#include "fuzzutil.h"

#include "fixturemodel.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace qlfuzz {

const std::string& scratchDir()
{
    static const std::string dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/ql-fuzz-XXXXXX";
        if (!mkdtemp(pattern.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        return pattern;
    }();
    return dir;
}

std::string writeInput(const std::string& name, const uint8_t* data, size_t size)
{
    const std::string path = scratchDir() + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
    return path;
}

void writeFixtureModel(const std::string& dir)
{
    // Small enough that a whole safetensors file is about 12 kB, so mutations stay fast; grouped-
    // query attention; a vocabulary the byte-level fixture tokenizer fits in (256 bytes, 40
    // merges, 3 added tokens), so the command-line tool can analyse it for seed inputs.
    qlfix::ModelSpec spec;
    spec.hidden = 16;
    spec.intermediate = 32;
    spec.layers = 1;
    spec.heads = 2;
    spec.kvHeads = 1;
    spec.vocab = 300;
    spec.maxPositions = 64;
    spec.dtype = "F16";
    std::string error;
    if (!qlfix::writeModel(dir, spec, &error)) {
        std::fprintf(stderr, "cannot write the fixture model: %s\n", error.c_str());
        std::abort();
    }
}

const std::string& fixtureModelDir()
{
    static const std::string dir = [] {
        const std::string d = scratchDir() + "/fixture-model";
        writeFixtureModel(d);
        return d;
    }();
    return dir;
}

const ql::Model& fixtureModel()
{
    static const ql::Model model = [] {
        auto m = ql::Model::open(fixtureModelDir());
        if (!m) {
            std::fprintf(stderr, "fixture model: %s\n", m.message().c_str());
            std::abort();
        }
        return std::move(*m);
    }();
    return model;
}

void exercise(const ql::Tokenizer& tokenizer)
{
    const std::vector<int32_t> ids = tokenizer.encode(sampleText());
    (void)tokenizer.decode(ids);
    const int32_t n = tokenizer.vocabSize();
    for (int32_t id : {0, 1, n / 2, n - 1})
        if (id >= 0 && id < n) (void)tokenizer.tokenText(id);
    (void)tokenizer.tokenId("the");
}

std::string_view sampleText()
{
    return "Once upon a time, a little 猫 said: \"héllo\"  world!\n\n\t1234 5.67 <|endoftext|> don't   stop";
}

} // namespace qlfuzz
