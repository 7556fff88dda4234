#pragma once

#include "quantlens/expected.h"

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <span>

namespace ql {

/// A row-major fp32 matrix: the layout of a Hugging Face [out, in] weight.
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The seven linear layers of a decoder block, in execution order.
enum class LinearKind { Q = 0, K, V, O, Gate, Up, Down };
inline constexpr int kLinearCount = 7;

/// Short name of a linear kind ("q_proj" ... "down_proj").
const char* linearShortName(LinearKind k);

/// The fp32 weights of one decoder block, ready for the forward pass.
struct BlockWeights {
    Eigen::VectorXf attnNorm;
    Eigen::VectorXf mlpNorm;
    std::array<RowMatrix, kLinearCount> linear;
    std::array<Eigen::VectorXf, kLinearCount> bias; ///< empty where the layer has no bias

    RowMatrix& operator[](LinearKind k) { return linear[static_cast<int>(k)]; }
    const RowMatrix& operator[](LinearKind k) const { return linear[static_cast<int>(k)]; }
};

/// Where the forward pass gets fp32 weights from: a float model, or later a quantized one.
class WeightSource {
public:
    virtual ~WeightSource() = default;
    /// Weights of block i, converted to fp32.
    virtual Expected<BlockWeights> block(int i) const = 0;
    /// Embedding rows of ids as columns of out (hidden × ids.size()).
    virtual Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const = 0;
    /// The final RMSNorm weight.
    virtual Expected<Eigen::VectorXf> finalNorm() const = 0;
    /// The output projection [vocab, hidden] (the embedding when tied).
    virtual Expected<RowMatrix> lmHead() const = 0;
};

} // namespace ql
