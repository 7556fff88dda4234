#pragma once

// The quantizer interface of the plugin SDK: one method quantizes one linear layer.

#include "quantlens/analysis/analysis.h"
#include "quantlens/base/expected.h"
#include "quantlens/base/params.h"
#include "quantlens/quant/quantizedtensor.h"
#include "quantlens/quant/quantspec.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ql {

class BlockQuantizer;

/// Version of the plugin interfaces; a plugin built against another one is refused unloaded.
inline constexpr int kPluginApiVersion = 3;

/// Everything a quantizer may use for one linear layer. Pointers are null when not available.
struct LayerInput {
    std::string name;                         ///< HF module name, e.g. model.layers.3.mlp.down_proj
    const RowMatrix* weight = nullptr;        ///< [out, in] float weight (after transforms)
    const Eigen::VectorXf* bias = nullptr;    ///< empty when the layer has none
    const SiteStats* site = nullptr;          ///< statistics of the layer's input site
    const Eigen::MatrixXd* hessian = nullptr; ///< Σ x xᵀ over the calibration tokens (not divided)
    int64_t tokens = 0;                       ///< calibration tokens behind the Hessian
    const Eigen::MatrixXf* inputs = nullptr;  ///< calibration inputs, in × tokens (when asked for)
};

/// What a quantizer says about its work on one layer.
struct LayerReport {
    double seconds = 0;
    double weightRelError = 0;             ///< ||W - Ŵ||² / ||W||²
    std::optional<double> outputRelMse;    ///< ||(W - Ŵ) X||² / ||W X||² from the Hessian, when known
    double bitsPerWeight = 0;              ///< codes plus parameters, per weight
    std::map<std::string, double> metrics; ///< method-specific numbers (e.g. GPTQ loss)
    std::vector<std::string> notes;
};

/// A quantized linear layer.
struct LayerResult {
    std::optional<QuantizedTensor> tensor; ///< the codes, when the method's output fits one format
    RowMatrix dequantized;                 ///< [out, in]: what the fake-quant forward uses
    LayerReport report;
    /// The weight of the RMSNorm before the layer's input when the method folded a scale into it
    /// (OmniQuant's LET; codes and dequantized then hold the matching transformed weight); empty:
    /// the model's norm. The layers reading one site carry the same vector.
    Eigen::VectorXf inputNorm;
};

/// A quantization method for one linear layer (RTN, GPTQ, PB-LLM, plugins ...).
class Quantizer {
public:
    virtual ~Quantizer() = default;
    /// Stable id used in recipes ("gptq").
    virtual std::string id() const = 0;
    /// One line for lists and tooltips.
    virtual std::string description() const = 0;
    /// The parameters the method accepts, with defaults and ranges.
    virtual std::vector<ParamSpec> parameters() const = 0;
    /// True when the method needs the site's Hessian (the pipeline then accumulates it).
    virtual bool needsHessian() const { return false; }
    /// True when the method needs the calibration inputs themselves.
    virtual bool needsInputs() const { return false; }
    /// Non-null for a method that quantizes whole decoder blocks (see blockquantizer.h).
    virtual const BlockQuantizer* asBlockQuantizer() const { return nullptr; }
    /// Quantizes one layer; params are complete (defaults applied) and valid.
    virtual Expected<LayerResult> quantize(const LayerInput& input, const QuantSpec& spec,
                                           const ParamMap& params) const = 0;
};

/// Bits per weight of a quantized tensor: the codes plus its parameters, counted as stored by
/// the exporters (an fp16 scale per group; a zero at the code width for asymmetric integers;
/// fp16 μ and α for binary).
double effectiveBits(const QuantizedTensor& t);

/// ||W - Ŵ||² / ||W||², and the output error from a Hessian when one is given.
void fillErrorReport(const RowMatrix& weight, const RowMatrix& dequantized, const Eigen::MatrixXd* hessian,
                     LayerReport& report);

/// The closing steps every single-format quantizer shares: the result holding t, its
/// dequantized weight, bits per weight and the error report against input.weight.
LayerResult finishLayer(const LayerInput& input, QuantizedTensor t);

} // namespace ql
