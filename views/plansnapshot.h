#pragma once

#include "quantlens/base/params.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/quant/quantizer.h"
#include "quantlens/quant/quantspec.h"
#include "quantlens/recipe/plansize.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ql {

/// One linear layer of a plan as the plan table shows it.
struct PlanRow {
    std::string layer; ///< HF module name
    int block = 0;
    int64_t outFeatures = 0, inFeatures = 0;
    QuantSpec spec;                    ///< resolved (skip: float)
    std::string source;                ///< the rule, skip or overrides it came from
    double plannedBits = 16;           ///< from the spec alone
    std::optional<LayerReport> report; ///< of the last run of this exact spec, if any
};

/// The quick measure of a plan (KL to the float model on the quick slice).
struct PlanMeasure {
    KlResult kl;
    int windows = 0, ctx = 0;
    int blocksRun = 0;
    bool bf16 = false; ///< measured with bf16 products (RuntimeNumerics::bf16Products)
};

/// Everything the plan editor shows, immutable once built by the application: the resolved
/// plan, its size, the last measures and the choices the delegates offer.
struct PlanSnapshot {
    std::vector<PlanRow> rows;                             ///< model order
    std::string recipeJson;                                ///< the plan as recipe JSON (the rule editor's text)
    std::string error;                                     ///< why the recipe does not resolve ("" when it does)
    PlanSize size;                                         ///< from the specs
    std::optional<double> measuredBitsPerWeight;           ///< of the last run, when it ran this plan
    std::optional<PlanMeasure> measure;                    ///< of the plan shown, when measured
    std::optional<PlanMeasure> full;                       ///< a full evaluation of the plan shown, when one ran
    bool measuring = false;                                ///< a newer measure is on its way
    std::vector<std::string> formats;                      ///< format ids the delegates offer
    std::map<std::string, std::vector<ParamSpec>> methods; ///< method id → its parameters (plugins)
};

/// Shared, immutable plan snapshot.
using PlanSnapshotPtr = std::shared_ptr<const PlanSnapshot>;

} // namespace ql
