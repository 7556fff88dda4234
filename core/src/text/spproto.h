#pragma once

// The few fields of SentencePiece's ModelProto (sentencepiece_model.proto) QuantLens reads and
// writes, in protobuf's wire format: Debian's SentencePiece ships no generated message classes,
// and a vocabulary from a GGUF file has to become a model the library loads.

#include "quantlens/text/sptokenizer.h"

#include <string>
#include <string_view>

namespace ql {

/// Serializes v as a ModelProto (pieces, trainer spec, identity normalizer spec).
std::string writeSpModelProto(const SpVocabulary& v);
/// Reads the model type and the normalizer flags of a serialized ModelProto into v (pieces are
/// left alone; the processor answers for them); fields absent take protobuf's declared defaults.
void readSpModelFlags(std::string_view proto, SpVocabulary& v);

} // namespace ql
