#pragma once

#include "quantlens/forward/quickeval.h"
#include "quantlens/text/tokenizer.h"

#include <string>

namespace ql {

/// The plan's quick slice of `model`: `textFile` tokenized (BOS when the tokenizer adds one) and
/// the float model run once over its windows; errors name the file.
Expected<QuickEvaluator> prepareQuickSlice(const Model& model, const Tokenizer& tokenizer, const std::string& textFile,
                                           const EvalOptions& options, Feedback* feedback);

} // namespace ql
