#include "quantlens/recipe/layercompare.h"

#include "quantlens/analysis/statscollector.h"
#include "quantlens/forward/sitecapture.h"
#include "quantlens/quant/quantizedmodel.h"

#include <algorithm>

namespace ql {

namespace {

// Σ x xᵀ of the layer's input over the calibration windows, from `weights` (the float model or
// its transformed weights: a transform changes what the layer reads).
Expected<Eigen::MatrixXd> inputGram(const WeightSource& weights, const ModelConfig& config, const LinearLayer& layer,
                                    const CalibrationSet& calib, Feedback* fb)
{
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(layer.inFeatures, layer.inFeatures);
    for (const auto& window : calib.windows) {
        auto x = captureSite(weights, config, window, layer.site, 0, fb);
        if (!x) return x.error();
        gram.selfadjointView<Eigen::Lower>().rankUpdate(x->cast<double>().transpose());
    }
    gram.triangularView<Eigen::StrictlyUpper>() = gram.transpose();
    return gram;
}

} // namespace

std::string layerCandidateLabel(const LayerCandidate& c)
{
    std::string label;
    for (const TransformStep& t : c.transforms) label += t.method + "+";
    const QuantSpec& spec = c.spec;
    return label + spec.method + " " + spec.weight.format +
           (spec.weight.granularity == Granularity::PerGroup ? " g" + std::to_string(spec.weight.groupSize)
                                                             : std::string());
}

Expected<LayerComparison> compareOnLayer(const Model& model, RecipeRunner& runner, QuickEvaluator& quick,
                                         const Tokenizer* tokenizer, const std::string& layer,
                                         const std::vector<LayerCandidate>& candidates, const Recipe& calibrated,
                                         Feedback* fb)
{
    const auto& layers = model.linearLayers();
    const auto it = std::find_if(layers.begin(), layers.end(), [&](const LinearLayer& l) { return l.name == layer; });
    if (it == layers.end()) return makeError("compare: the model has no linear layer " + layer);
    if (candidates.empty()) return makeError("compare: no method to run on " + layer);
    BlockWeights block;
    QL_TRY(model.block(it->block, block));
    const RowMatrix w = block[it->kind];
    LayerComparison out;
    out.layer = layer;
    weightHistogram(w, out.weights);
    // Only the compared layer has a rule: every other layer stays float (transformed or not).
    Recipe recipe;
    recipe.name = "compare";
    recipe.calibration = calibrated.calibration;
    recipe.calibrationFile = calibrated.calibrationFile;
    std::optional<RecipeRun> previous;
    // Σ x xᵀ of the layer's input per transform chain, shared by the candidates that run it.
    std::vector<std::pair<std::vector<TransformStep>, Eigen::MatrixXd>> grams;
    for (const LayerCandidate& c : candidates) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        LayerMethodResult r;
        r.transforms = c.transforms;
        r.spec = c.spec;
        r.label = layerCandidateLabel(c);
        if (fb) fb->message("compare: " + r.label + " on " + layer);
        recipe.transforms = c.transforms;
        recipe.rules = {{layer, c.spec}};
        auto run = runner.run(recipe, tokenizer, fb);
        if (!run) return makeError("compare: " + r.label + " on " + layer + ": " + run.message());
        const QuantizedLayer* q = run->model->layer(layer);
        if (!q || !q->result) return makeError("compare: " + r.label + " left " + layer + " unquantized");
        const LayerReport& report = q->result->report;
        r.bitsPerWeight = report.bitsPerWeight;
        r.weightRelError = report.weightRelError;
        // Output error the same way for every candidate (whatever each reports): from the inputs
        // the float model (after the candidate's transforms) gives the layer on the calibration
        // windows, the bias left out.
        const RowMatrix& wt = run->transformed ? run->transformed->linear(it->block, it->kind) : w;
        auto cached = std::find_if(grams.begin(), grams.end(), [&c](const auto& g) { return g.first == c.transforms; });
        if (cached == grams.end() && !run->calib.windows.empty()) {
            if (fb) fb->message("compare: the inputs of " + layer + " on the calibration windows");
            const WeightSource& source = run->transformed ? static_cast<const WeightSource&>(*run->transformed) : model;
            auto g = inputGram(source, run->transformed ? run->transformed->config() : model.config(), *it, run->calib,
                               fb);
            if (!g) return makeError("compare: " + layer + ": " + g.message());
            cached = grams.insert(grams.end(), {c.transforms, std::move(*g)});
        }
        const RowMatrix delta = wt - q->result->dequantized;
        if (cached != grams.end()) {
            const Eigen::MatrixXd& gram = cached->second;
            const Eigen::MatrixXd wd = wt.cast<double>(), d = delta.cast<double>();
            const double signal = (wd * gram).cwiseProduct(wd).sum();
            if (signal > 0) r.outputRelMse = (d * gram).cwiseProduct(d).sum() / signal;
        }
        weightHistogram(delta, r.error);
        auto kl = quick.measure(*run->model, firstChangedBlock(*run, previous ? &*previous : nullptr), fb);
        if (!kl) return makeError("compare: " + r.label + ": " + kl.message());
        r.kl = *kl;
        previous = std::move(*run);
        out.methods.push_back(std::move(r));
    }
    return out;
}

} // namespace ql
