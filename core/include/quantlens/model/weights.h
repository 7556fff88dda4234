#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/quant/actquant.h"
#include "quantlens/forward/site.h"

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace ql {

class HadamardRotation;

/// A row-major fp32 matrix: the layout of a Hugging Face [out, in] weight.
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A read-only view of a row-major fp32 matrix.
using ConstRowMap = Eigen::Map<const RowMatrix>;

/// The fp32 weights of one decoder block, ready for the forward pass. A linear is either
/// owned (converted or computed) or a view of memory that outlives the block, such as an
/// mmapped F32 tensor; storage is reused when a block object is filled again.
struct BlockWeights {
    Eigen::VectorXf attnNorm;
    Eigen::VectorXf mlpNorm;
    std::array<RowMatrix, kLinearCount> storage;    ///< owned values (unused for views)
    std::array<Eigen::VectorXf, kLinearCount> bias; ///< empty where the layer has no bias

    // Forward-pass hooks installed by transforms and activation-quantization specs. Both are
    // off by default, and the forward pass without them is unchanged (see ForwardEngine).
    /// Online rotation R of down_proj's input: the forward feeds R·a to down_proj, whose weight
    /// the transform stored as W·Rᵀ (QuaRot's online Hadamard). Null: none.
    std::shared_ptr<const HadamardRotation> downInputRotation;
    /// Simulated activation quantization of each linear's input (bits 0: none).
    std::array<ActQuantSpec, kLinearCount> actQuant{};
    /// Per linear, the block minimums m (rows × in/32) of a q4_1/q5_1 weight, whose product
    /// llama.cpp takes with q8_1 input: its m-term uses the block sum fp16(d·Σq) instead of
    /// Σ fp16(d)·q, and the forward adds the difference (q8_1Correction). Null: none.
    std::array<std::shared_ptr<const RowMatrix>, kLinearCount> q8_1Mins{};

    /// Removes every forward-pass hook (sources that have none call this when refilling).
    void clearHooks()
    {
        downInputRotation.reset();
        actQuant.fill(ActQuantSpec{});
        q8_1Mins.fill(nullptr);
    }

    /// The weight of linear k, [out, in].
    ConstRowMap operator[](LinearKind k) const
    {
        const View& v = m_views[static_cast<int>(k)];
        return ConstRowMap(v.data, v.rows, v.cols);
    }
    /// Makes linear k a view of external fp32 data.
    void setView(LinearKind k, const float* data, Eigen::Index rows, Eigen::Index cols)
    {
        m_views[static_cast<int>(k)] = View{data, rows, cols};
    }
    /// Makes linear k use its own storage (after storage[k] was filled).
    void useStorage(LinearKind k)
    {
        const RowMatrix& m = storage[static_cast<int>(k)];
        m_views[static_cast<int>(k)] = View{m.data(), m.rows(), m.cols()};
    }

private:
    struct View {
        const float* data = nullptr;
        Eigen::Index rows = 0;
        Eigen::Index cols = 0;
    };
    std::array<View, kLinearCount> m_views{};
};

/// Where the forward pass gets fp32 weights from: the stored model (Model), float weights after
/// transforms (FloatWeights) or a quantized model's dequantized weights (QuantizedModel).
class WeightSource {
public:
    virtual ~WeightSource() = default;
    /// Fills out with block i's fp32 weights, reusing out's storage where shapes allow.
    virtual Expected<void> block(int i, BlockWeights& out) const = 0;
    /// Embedding rows of ids as columns of out (hidden × ids.size()).
    virtual Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const = 0;
    /// The final RMSNorm weight.
    virtual Expected<Eigen::VectorXf> finalNorm() const = 0;
    /// The output projection [vocab, hidden] (the embedding when tied).
    virtual Expected<RowMatrix> lmHead() const = 0;
    /// The output projection without a copy, when the source holds it as fp32 in memory
    /// (nullopt: call lmHead). At vocabulary size a copy costs more than the product it feeds.
    virtual Expected<std::optional<ConstRowMap>> lmHeadView() const { return std::optional<ConstRowMap>(); }
};

} // namespace ql
