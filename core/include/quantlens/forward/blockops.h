#pragma once

#include "quantlens/model/modelconfig.h"

#include <Eigen/Core>

namespace ql {

/// out = weight ⊙ x / sqrt(mean(x²) + eps), per column, as transformers' LlamaRMSNorm.
void rmsNorm(const Eigen::MatrixXf& x, const Eigen::VectorXf& w, float eps, Eigen::MatrixXf& out);

/// Rotate-half RoPE on every head of m (heads·headDim × T) at positions 0..T-1, or its inverse
/// (the transposed rotation, which the backward pass applies to gradients) when inverse is set.
void applyRope(Eigen::MatrixXf& m, int headDim, const Eigen::MatrixXf& cosT, const Eigen::MatrixXf& sinT,
               bool inverse = false);

/// Softmax of scale·col over the visible keys [lo, j] of a query column of `keys` scores; the
/// other entries become zero (the causal and sliding-window masks).
void maskedSoftmax(float* col, Eigen::Index lo, Eigen::Index j, Eigen::Index keys, float scale);

/// Fills the rotary tables (headDim/2 × n) as transformers computes them: the fp32 angle
/// position · inv_freq, then its cosine and sine. Tables already covering n positions are kept.
void ropeTables(const ModelConfig& config, Eigen::Index n, Eigen::MatrixXf& cosT, Eigen::MatrixXf& sinT);

} // namespace ql
