#pragma once

#include "quantlens/model/model.h"
#include "quantlens/quant/quantizer.h"
#include "quantlens/quant/quantspec.h"

#include <map>
#include <memory>
#include <string>

namespace ql {

/// One quantized linear layer of a QuantizedModel.
struct QuantizedLayer {
    std::string name;
    int block = 0;
    LinearKind kind = LinearKind::Q;
    QuantSpec spec;
    std::shared_ptr<const LayerResult> result; ///< shared with the pipeline's cache
};

/// A model whose quantized linear layers are served as their dequantized weights (the
/// fake-quant forward, with simulated activation quantization where a spec asks for it); every
/// other weight comes from the float weights underneath: the model itself, or its transformed
/// copy (FloatWeights). Evaluator and exporters read it.
class QuantizedModel final : public WeightSource {
public:
    explicit QuantizedModel(const Model& model) : m_model(model), m_base(model) {}
    /// Quantized layers over transformed float weights (which must outlive this object).
    QuantizedModel(const Model& model, const WeightSource& base) : m_model(model), m_base(base) {}

    /// Replaces a layer (or sets it for the first time).
    void setLayer(QuantizedLayer layer);
    /// The quantized layer of that HF module name, or null when it is float.
    const QuantizedLayer* layer(const std::string& name) const;
    /// Every quantized layer, by name.
    const std::map<std::string, QuantizedLayer>& layers() const { return m_layers; }
    /// The model the layers belong to.
    const Model& model() const { return m_model; }
    /// The float weights underneath.
    const WeightSource& base() const { return m_base; }

    /// True when a layer of block i carries its own input norm (LayerResult::inputNorm).
    bool changesNorms(int i) const;

    /// The base's block with the quantized layers' weights, activation quantization and norms.
    Expected<void> block(int i, BlockWeights& out) const override;
    Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const override
    {
        return m_base.embed(ids, out);
    }
    Expected<Eigen::VectorXf> finalNorm() const override { return m_base.finalNorm(); }
    Expected<RowMatrix> lmHead() const override { return m_base.lmHead(); }
    Expected<std::optional<ConstRowMap>> lmHeadView() const override { return m_base.lmHeadView(); }

private:
    const Model& m_model;
    const WeightSource& m_base;
    std::map<std::string, QuantizedLayer> m_layers;
    std::map<int, std::vector<const QuantizedLayer*>> m_byBlock;
};

} // namespace ql
