#include "quickslice.h"

#include "quantlens/text/calibration.h"

namespace ql {

Expected<QuickEvaluator> prepareQuickSlice(const Model& model, const Tokenizer& tokenizer, const std::string& textFile,
                                           const EvalOptions& options, Feedback* feedback)
{
    if (textFile.empty()) return makeError("the project has no evaluation or calibration text for the quick slice");
    if (feedback) feedback->message("the float model on the quick slice");
    auto text = readCalibrationText(textFile);
    if (!text) return text.error();
    const int bos = tokenizer.addsBos() ? tokenizer.bosId() : -1;
    auto quick = QuickEvaluator::prepare(model, tokenizer.encode(*text), bos, options, feedback);
    if (!quick) return makeError(textFile + ": " + quick.message());
    return quick;
}

} // namespace ql
