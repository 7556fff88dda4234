#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/model/model.h"

#include <memory>
#include <string>
#include <vector>

namespace ql {

/// Everything the views read, immutable once built: the model's layer table, the analysis (null
/// before one exists), the calibration tokens and the tokenizer's pieces for token text.
struct AnalysisSnapshot {
    std::string modelName;           ///< folder name, for titles
    std::vector<LinearLayer> layers; ///< model order
    int blocks = 0;
    int hidden = 0;
    std::shared_ptr<const AnalysisResult> analysis; ///< null until an analysis ran or was loaded
    std::vector<int32_t> calibTokens;               ///< sample-major, samples × seqlen (may be empty)
    int seqlen = 0;
    std::vector<std::string> tokenPieces; ///< id → display text (may be empty)

    /// Display text of a token id ("#id" when no tokenizer piece is known).
    std::string tokenText(int32_t id) const
    {
        if (id >= 0 && size_t(id) < tokenPieces.size()) return tokenPieces[size_t(id)];
        std::string text = "#"; // appended, not "#" + ...: GCC 12 warns falsely (-Wrestrict) on that
        text += std::to_string(id);
        return text;
    }
    /// The statistics of a site ("layers.3.down_in"), or null.
    const SiteStats* site(const std::string& name) const
    {
        if (!analysis) return nullptr;
        for (const auto& s : analysis->sites)
            if (s.name == name) return &s;
        return nullptr;
    }
};

/// Raw activations of one site for one calibration sample (the heat map's data), captured on
/// request by a job (core captureSite), never computed by a view.
struct SiteSample {
    std::string site;            ///< e.g. "layers.3.down_in"
    int sample = 0;              ///< calibration window index
    RowMatrix values;            ///< [tokens, channels]
    std::vector<int32_t> tokens; ///< the window's token ids
};

/// Shared, immutable snapshot handed to every view.
using SnapshotPtr = std::shared_ptr<const AnalysisSnapshot>;

} // namespace ql
