#include "quantlens/recipe/layercompare.h"

#include "quantlens/analysis/statscollector.h"
#include "quantlens/forward/sitecapture.h"
#include "quantlens/quant/quantizedmodel.h"

#include <algorithm>

namespace ql {

Expected<LayerComparison> compareOnLayer(const Model& model, RecipeRunner& runner, QuickEvaluator& quick,
                                         const Tokenizer* tokenizer, const std::string& layer,
                                         const std::vector<QuantSpec>& specs, const Recipe& calibrated, Feedback* fb)
{
    const auto& layers = model.linearLayers();
    const auto it = std::find_if(layers.begin(), layers.end(), [&](const LinearLayer& l) { return l.name == layer; });
    if (it == layers.end()) return makeError("compare: the model has no linear layer " + layer);
    if (specs.empty()) return makeError("compare: no method to run on " + layer);
    BlockWeights block;
    QL_TRY(model.block(it->block, block));
    const RowMatrix w = block[it->kind];
    LayerComparison out;
    out.layer = layer;
    weightHistogram(w, out.weights);
    // Only the compared layer has a rule: every other layer stays float.
    Recipe recipe;
    recipe.name = "compare";
    recipe.calibration = calibrated.calibration;
    recipe.calibrationFile = calibrated.calibrationFile;
    std::optional<RecipeRun> previous;
    Eigen::MatrixXd hessian; // Σ x xᵀ of the layer's input on the calibration windows
    double signal = 0;       // ‖W X‖²
    for (const QuantSpec& spec : specs) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        LayerMethodResult r;
        r.spec = spec;
        r.label = spec.method + " " + spec.weight.format +
                  (spec.weight.granularity == Granularity::PerGroup ? " g" + std::to_string(spec.weight.groupSize)
                                                                    : std::string());
        if (fb) fb->message("compare: " + r.label + " on " + layer);
        recipe.rules = {{layer, spec}};
        auto run = runner.run(recipe, tokenizer, fb);
        if (!run) return makeError("compare: " + r.label + " on " + layer + ": " + run.message());
        const QuantizedLayer* q = run->model->layer(layer);
        if (!q || !q->result) return makeError("compare: " + r.label + " left " + layer + " unquantized");
        const LayerReport& report = q->result->report;
        r.bitsPerWeight = report.bitsPerWeight;
        r.weightRelError = report.weightRelError;
        // Output error the same way for every method (whatever each reports): from the float
        // model's inputs to the layer on the calibration windows, the bias left out.
        if (hessian.size() == 0 && !run->calib.windows.empty()) {
            if (fb) fb->message("compare: the inputs of " + layer + " on the calibration windows");
            hessian = Eigen::MatrixXd::Zero(w.cols(), w.cols());
            for (const auto& window : run->calib.windows) {
                auto x = captureSite(model, model.config(), window, it->site, 0, fb);
                if (!x) return makeError("compare: " + layer + ": " + x.message());
                hessian.selfadjointView<Eigen::Lower>().rankUpdate(x->cast<double>().transpose());
            }
            hessian.triangularView<Eigen::StrictlyUpper>() = hessian.transpose();
            const Eigen::MatrixXd wd = w.cast<double>();
            signal = (wd * hessian).cwiseProduct(wd).sum();
        }
        const RowMatrix delta = w - q->result->dequantized;
        if (hessian.size() && signal > 0) {
            const Eigen::MatrixXd d = delta.cast<double>();
            r.outputRelMse = (d * hessian).cwiseProduct(d).sum() / signal;
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
