#pragma once

// The block-level quantizer interface of the plugin SDK: one method quantizes the linears of a
// whole decoder block at once, trained against the float block's outputs (OmniQuant, AutoRound).

#include "quantlens/base/feedback.h"
#include "quantlens/forward/site.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/quant/quantizer.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace ql {

/// Everything a block quantizer may use for one decoder block.
struct BlockInput {
    int block = 0;
    const ModelConfig* config = nullptr;
    /// The block's float weights (after transforms), with the activation-quantization hooks the
    /// specs ask for already installed, so training sees the forward the quantized model runs.
    const BlockWeights* weights = nullptr;
    /// Per linear, its spec; null where the linear stays float. Every non-null spec names this
    /// method with the same parameters; formats may differ per linear.
    std::array<const QuantSpec*, kLinearCount> specs{};
    std::array<std::string, kLinearCount> names; ///< HF module names
    /// The block's input per calibration window (hidden × tokens): the output of the blocks
    /// quantized before it in sequential mode, of the float model otherwise.
    const std::vector<Eigen::MatrixXf>* inputs = nullptr;
    /// The float block's output on the float model's input, per window: the training target.
    const std::vector<Eigen::MatrixXf>* targets = nullptr;
    /// Per site (attn_in, o_in, mlp_in, down_in), the per-channel maximum of |x| in the float
    /// model over the calibration windows: where smoothing-like transforms start.
    const std::array<Eigen::VectorXf, kSiteCount>* floatAbsmax = nullptr;
};

/// What a block quantizer returns.
struct BlockResult {
    /// One result per linear with a spec; the pipeline takes them as it takes per-layer results.
    std::array<std::optional<LayerResult>, kLinearCount> layers;
    double lossBefore = 0;        ///< the block's output MSE against the targets before training
    double lossAfter = 0;         ///< the same with the returned layers
    std::vector<double> stepLoss; ///< the training loss per epoch or iteration, for the report
    std::vector<std::string> notes;
};

/// A method that quantizes a decoder block as a whole. It is a Quantizer so that registries,
/// recipes and parameter checks treat it as any other method; its per-layer quantize() refuses.
class BlockQuantizer : public Quantizer {
public:
    const BlockQuantizer* asBlockQuantizer() const final { return this; }
    /// Refuses: the pipeline calls quantizeBlock() for block methods.
    Expected<LayerResult> quantize(const LayerInput& input, const QuantSpec& spec, const ParamMap& params) const final;
    /// Quantizes every linear of the block that has a spec; params are complete and valid.
    virtual Expected<BlockResult> quantizeBlock(const BlockInput& input, const ParamMap& params,
                                                Feedback* feedback) const = 0;
};

/// An asymmetric integer grid a block method trains: bits and inputs per group (0: per row).
struct AsymmetricGrid {
    int bits = 4;
    int group = 128;
};

/// The grid of spec for a linear with `inputs` columns, or an error naming the layer and the
/// method when spec's format is not an asymmetric integer one, per channel or in groups (the
/// last group of a row may be partial; a group of at least the row is the row).
Expected<AsymmetricGrid> asymmetricGrid(const QuantSpec& spec, Eigen::Index inputs, const std::string& layer,
                                        const std::string& method);

/// The closing step of a block method for the linear `k` of input: the layer result of tensor t
/// against the linear's float weight, with the method's share of the block's seconds.
LayerResult finishBlockLayer(const BlockInput& input, int k, QuantizedTensor t, double seconds);

/// The output MSE a block result reached, as metrics every linear of the block reports (the
/// run report lists them per layer): block_loss_before, block_loss_after.
void attachBlockLoss(BlockResult& result);

} // namespace ql
