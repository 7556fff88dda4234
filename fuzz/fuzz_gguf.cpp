// GGUF files: header, metadata, tensor table, every tensor decoded, and the config and tokenizer
// QuantLens derives from the metadata.
#include "fuzzutil.h"

#include "quantlens/export/ggufimport.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto file = ql::GgufFile::open(qlfuzz::writeInput("model.gguf", data, size));
    if (!file) return 0;
    for (const auto& t : file->tensors())
        if (t.elements() <= (1u << 20)) (void)file->readFloat(t.name);
    (void)ql::ggufConfigJson(*file);
    if (auto tok = ql::ggufTokenizer(*file)) qlfuzz::exercise(**tok);
    return 0;
}
