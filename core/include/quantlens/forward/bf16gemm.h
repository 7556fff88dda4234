#pragma once

// Products with bf16 operands and fp32 accumulation (AVX512-BF16's dot product), for the
// evaluation setting RuntimeNumerics::bf16Products: what a bf16 runtime computes, at about three
// times the speed of the fp32 products on CPUs that have the instruction.

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ql::bf16 {

/// True when this CPU runs AVX512-BF16 (the products below need it).
bool supported();

/// A weight [rows, cols] rounded to bf16 and laid out for the product: blocks of 48 rows, and in
/// each block the pairs of adjacent input columns of every row together (zeros pad the last
/// block and an odd column count).
class PackedWeights {
public:
    /// Packs a row-major float matrix.
    void pack(const float* rowMajor, Eigen::Index rows, Eigen::Index cols);
    Eigen::Index rows() const { return m_rows; }
    Eigen::Index cols() const { return m_cols; }
    /// The packed words (one bf16 pair each), for the product.
    const uint32_t* data() const { return m_data.data(); }

private:
    std::vector<uint32_t> m_data;
    Eigen::Index m_rows = 0, m_cols = 0;
};

/// An input features × tokens rounded to bf16, in panels of 8 tokens with each token's pairs of
/// adjacent features together (zeros pad the last panel and an odd feature count).
class PackedInput {
public:
    /// Packs a column-major float matrix (a column per token).
    void pack(const Eigen::Ref<const Eigen::MatrixXf>& x);
    Eigen::Index rows() const { return m_rows; }
    Eigen::Index cols() const { return m_cols; }
    /// The packed words, for the product.
    const uint32_t* data() const { return m_data.data(); }

private:
    std::vector<uint32_t> m_data;
    Eigen::Index m_rows = 0, m_cols = 0;
};

/// out = W·X with the bf16 operands' products summed in fp32 in feature order, each output by
/// one thread (the result is the same for every thread count). Needs supported().
void multiply(const PackedWeights& w, const PackedInput& x, Eigen::MatrixXf& out);

/// out = W·X for a row-major float W [rows, cols], each block of 48 rows rounded and packed as
/// it is multiplied: for a weight used once (the lm_head), with the same result as packing it
/// whole, without its packed copy.
void multiply(const float* w, Eigen::Index rows, Eigen::Index cols, const PackedInput& x, Eigen::MatrixXf& out);

} // namespace ql::bf16
