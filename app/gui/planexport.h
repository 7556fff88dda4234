#pragma once

#include "job.h"

#include "quantlens/analysis/analysis.h"
#include "quantlens/export/ggmltype.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/reciperunner.h"
#include "quantlens/text/tokenizer.h"

#include <QString>

#include <functional>
#include <memory>
#include <vector>

namespace ql {

/// One export of the plan as the export dialog asks for it.
struct ExportRequest {
    QString format;                     ///< gguf, gptq, fakequant, recipe, tensor-types or imatrix
    GgmlType ggufType = GgmlType::Q4_0; ///< gguf / tensor-types: the type of every 2-D weight
    QString path;                       ///< the file or folder to write
    bool preview = false;               ///< decide and report per tensor, write nothing
};

/// What an export does with one tensor or layer.
struct ExportLine {
    QString tensor, asked, written, note; ///< note: what the format cannot represent and the fallback
    bool fallback = false;                ///< the note is a fallback (else it says what was kept)
};

/// What an export did (or, previewed, would do).
struct ExportOutcome {
    std::vector<ExportLine> lines;
    int fallbacks = 0; ///< lines with a fallback
    uint64_t bytes = 0;
    double seconds = 0;
    QString summary; ///< one line for the dialog
};

/// What an export reads: the model, its tokenizer, the run of the plan (null for imatrix), the
/// analysis (imatrix only) and the model's weight hash (recipe).
struct ExportInputs {
    std::shared_ptr<const Model> model;
    std::shared_ptr<const Tokenizer> tokenizer;
    std::shared_ptr<const RecipeRun> run;
    std::shared_ptr<const AnalysisResult> analysis;
    std::string modelSha256;
};

/// Writes text to path atomically (a temporary file beside it, renamed when complete).
Expected<void> writeTextFile(const QString& path, const std::string& text);

/// The work of an export job: every artifact of quantlens-cli export, written atomically.
std::function<Expected<ExportOutcome>(Job&)> exportWork(const ExportRequest& request, const ExportInputs& inputs);

} // namespace ql
