// SentencePiece tokenizer.model as QuantLens wraps it (the protobuf is parsed by libsentencepiece,
// the vocabulary checks and the encoder are ours).
#include "fuzzutil.h"

#include "quantlens/text/sptokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto tok = ql::SpTokenizer::fromFile(qlfuzz::writeInput("tokenizer.model", data, size));
    if (!tok) return 0;
    qlfuzz::exercise(**tok);
    return 0;
}
