#pragma once

// A quantized [out, in] weight: packed codes, per-(row, group) parameters and the group of
// every input column, plus round-to-nearest quantization into one.
//
// Code packing: each row is a little-endian bit stream of `bits`-bit codes, column j at bits
// [j·bits, (j+1)·bits); stream bit k is bit k % 32 of 32-bit word k / 32 of the row, so a code
// may straddle two words (3, 5, 6, 7 bits). Rows are padded to whole words (unused high bits are
// 0) and stored one after the other: wordsPerRow() = ceil(cols·bits / 32). On a little-endian
// host the words' bytes are the same stream in byte order (bit k in byte k / 8, bit k % 8).
// Whole rows never share a word, so different rows may be written from different threads.
//
// Parameters: scales() and zeros() are rows × groups() for every granularity; per tensor, the
// one (scale, zero) is repeated on every row. Column j uses group groupIndex()[j] (GPTQ's
// g_idx); the default is j / groupSize, act-order passes a permuted assignment.

#include "quantlens/quant/groupparams.h"

#include <Eigen/Core>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ql {

/// Which weights share one (scale, zero).
enum class Granularity : uint8_t { PerTensor, PerChannel, PerGroup };

/// The spelling of a granularity in recipes and run files: per_tensor, per_channel or per_group.
const char* granularityName(Granularity g);
/// The granularity a spelling names, or nothing for any other text.
std::optional<Granularity> granularityFromName(std::string_view name);

/// Format and granularity of a quantized weight.
struct FormatSpec {
    std::string format = "int4_asym"; ///< an id of the format table
    Granularity granularity = Granularity::PerGroup;
    int groupSize = 128; ///< input columns per group (PerGroup only); the last group may be partial

    bool operator==(const FormatSpec&) const = default;
};

/// A quantized [out, in] weight with packed codes, parameters and group index.
class QuantizedTensor {
public:
    /// An empty tensor (codes 0, default parameters, default group index) to fill column by column.
    static Expected<QuantizedTensor> create(Eigen::Index rows, Eigen::Index cols, const FormatSpec& spec);

    /// A tensor from stored parts (an importer's data), every part checked against the layout above.
    static Expected<QuantizedTensor> fromParts(Eigen::Index rows, Eigen::Index cols, const FormatSpec& spec,
                                               std::vector<uint32_t> packedCodes, Eigen::MatrixXf scales,
                                               Eigen::MatrixXf zeros, std::vector<int32_t> groupIndex);

    /// Output rows of the weight.
    Eigen::Index rows() const { return m_rows; }
    /// Input columns of the weight.
    Eigen::Index cols() const { return m_cols; }
    /// The spec the tensor was made with.
    const FormatSpec& spec() const { return m_spec; }
    /// The format table row of spec().format.
    const WeightFormat& format() const { return *m_format; }
    /// Number of parameter groups per row: 1 per tensor or channel, ceil(cols / groupSize) per group.
    int groups() const { return int(m_scales.cols()); }

    /// Group of every input column.
    const std::vector<int32_t>& groupIndex() const { return m_gIdx; }
    /// Replaces the group index; one entry per column, each in [0, groups()).
    Expected<void> setGroupIndex(std::vector<int32_t> gIdx);

    /// Scales, rows × groups().
    const Eigen::MatrixXf& scales() const { return m_scales; }
    /// Zeros (see formats.h for their meaning per kind), rows × groups().
    const Eigen::MatrixXf& zeros() const { return m_zeros; }
    /// Parameters of (row, group).
    GroupParams params(Eigen::Index row, int group) const { return {m_scales(row, group), m_zeros(row, group)}; }
    /// Sets the parameters of (row, group) after checkParams(); per tensor it sets every row.
    Expected<void> setParams(Eigen::Index row, int group, const GroupParams& p);

    /// Code at (row, col).
    uint32_t code(Eigen::Index row, Eigen::Index col) const;
    /// Stores a code; errors on an index out of range or a code the format never emits.
    Expected<void> setCode(Eigen::Index row, Eigen::Index col, uint32_t code);
    /// The packed codes, rows × wordsPerRow() words (layout above).
    const std::vector<uint32_t>& packedCodes() const { return m_codes; }
    /// 32-bit words per packed row.
    Eigen::Index wordsPerRow() const { return m_wordsPerRow; }

    /// Quantizes column j of the weight with the parameters of its group on each row, stores
    /// the codes and returns the dequantized column (GPTQ's per-column step).
    Expected<Eigen::VectorXf> quantizeColumn(Eigen::Index j, Eigen::Ref<const Eigen::VectorXf> w);

    /// The weight the codes and parameters represent, exactly as dequantizeCode() gives it.
    Eigen::MatrixXf dequantize() const;

private:
    friend Expected<QuantizedTensor> quantize(Eigen::Ref<const Eigen::MatrixXf>, const FormatSpec&,
                                              std::span<const int32_t>);
    QuantizedTensor() = default;
    void storeCode(Eigen::Index row, Eigen::Index col, uint32_t code);

    Eigen::Index m_rows = 0, m_cols = 0, m_wordsPerRow = 0;
    FormatSpec m_spec;
    const WeightFormat* m_format = nullptr;
    std::vector<uint32_t> m_codes;
    Eigen::MatrixXf m_scales, m_zeros;
    std::vector<int32_t> m_gIdx;
};

/// Round-to-nearest quantization of w [out, in] (the parameter rules of groupparams.h per
/// (row, group)). `groupIndex` assigns columns to groups (act-order); empty means j / groupSize.
Expected<QuantizedTensor> quantize(Eigen::Ref<const Eigen::MatrixXf> w, const FormatSpec& spec,
                                   std::span<const int32_t> groupIndex = {});

} // namespace ql
