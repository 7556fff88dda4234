#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/safetensors.h"
#include "quantlens/model/weights.h"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ql {

/// One linear layer of the model as a researcher addresses it.
struct LinearLayer {
    std::string name; ///< Hugging Face module name, e.g. model.layers.3.mlp.down_proj
    std::string site; ///< activation site feeding it, e.g. layers.3.down_in
    int block = 0;
    LinearKind kind = LinearKind::Q;
    int64_t outFeatures = 0;
    int64_t inFeatures = 0;
    bool hasBias = false;
    DType dtype = DType::F32;

    int64_t params() const { return outFeatures * inFeatures + (hasBias ? outFeatures : 0); }
};

/// A Hugging Face model folder: config, validated tensor table over mmapped safetensors shards.
/// Weights stay mapped and are converted to fp32 one block at a time on request.
class Model final : public WeightSource {
public:
    /// Opens a model folder (config.json + model.safetensors, or sharded with an index).
    static Expected<Model> open(const std::string& dir);

    const ModelConfig& config() const { return m_config; }
    const std::string& dir() const { return m_dir; }
    /// Names the model in messages and reports by another path: a GGUF file read through a
    /// temporary folder is reported as the file (the weights stay where they were opened).
    void setDir(std::string path) { m_dir = std::move(path); }
    /// The folder the model's files are in (dir() unless setDir renamed it).
    const std::string& folder() const { return m_folder; }
    /// Every linear layer in block order.
    const std::vector<LinearLayer>& linearLayers() const { return m_linears; }
    /// All tensors by name.
    const std::map<std::string, TensorInfo>& tensors() const { return m_tensors; }
    /// The weight files, in load order.
    const std::vector<std::string>& weightFiles() const { return m_files; }
    /// Total number of stored parameters.
    int64_t parameterCount() const;
    /// Converts one tensor to fp32 (row-major, shape flattened to rows × last dim).
    Expected<RowMatrix> tensorAsFloat(const std::string& name) const;
    /// An fp32 tensor where it lies in the mapping (rows × last dim), not yet checked for NaN and
    /// Inf (checkFinite does that); nullopt for other dtypes, which need tensorAsFloat.
    std::optional<ConstRowMap> floatView(const std::string& name) const;
    /// Fails on the first NaN or Inf among n values of tensor name starting at flat index offset,
    /// naming the tensor, the element and the file; passes everything while non-finite values
    /// are allowed. For readers of floatView who check as they go.
    Expected<void> checkFinite(const std::string& name, const float* values, int64_t n, int64_t offset = 0) const;
    /// The tensor lmHead() reads: lm_head.weight, or the embedding when they are tied.
    const std::string& lmHeadTensor() const { return m_lmHeadName; }

    Expected<void> block(int i, BlockWeights& out) const override;
    Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const override;
    Expected<Eigen::VectorXf> finalNorm() const override;
    Expected<RowMatrix> lmHead() const override;
    /// The mapped F32 head, checked for NaN and Inf (nullopt for other dtypes).
    Expected<std::optional<ConstRowMap>> lmHeadView() const override;

    /// Weights are checked for NaN and Inf as they are converted (each block once), and a bad
    /// value fails the load naming the tensor and index; allowing them turns the check off.
    void allowNonFinite(bool allow) { m_allowNonFinite = allow; }
    /// Scans every floating-point tensor: one line per tensor that holds NaN or Inf, naming the
    /// first bad element (empty when all are finite). Reads the whole model.
    std::vector<std::string> nonFiniteTensors() const;

    /// HF tensor names of block i's norms and linears.
    static std::string attnNormName(int i);
    static std::string mlpNormName(int i);
    static std::string linearName(int i, LinearKind k);
    /// The block and kind of a linear's module name ("model.layers.3.mlp.down_proj", with or
    /// without ".weight"); nullopt for anything else.
    static std::optional<std::pair<int, LinearKind>> parseLinearName(std::string_view name);

private:
    Expected<void> validate();
    Expected<Eigen::VectorXf> vector(const std::string& name) const;

    ModelConfig m_config;
    std::string m_dir;
    std::string m_folder;
    std::vector<std::string> m_files;
    std::vector<SafetensorsFile> m_shards;
    std::map<std::string, TensorInfo> m_tensors;
    std::vector<LinearLayer> m_linears;
    std::string m_lmHeadName;
    bool m_allowNonFinite = false;
    /// Per block: its weights were found finite (shared by copies, which see the same mapping).
    std::shared_ptr<std::atomic<bool>[]> m_blockChecked;
};

} // namespace ql
