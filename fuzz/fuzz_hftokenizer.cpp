// tokenizer.json: model, pre-tokenizer, normalizer, decoder and added tokens; a tokenizer that
// loads must encode and decode a mixed text without failing.
#include "fuzzutil.h"

#include "quantlens/text/hftokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto tok = ql::HfTokenizer::fromJson(std::string_view(reinterpret_cast<const char*>(data), size), "tokenizer.json");
    if (!tok) return 0;
    qlfuzz::exercise(**tok);
    return 0;
}
