#include "quantlens/methods/rtnquantizer.h"

#include <chrono>
#include <cmath>

namespace ql {

std::string RtnQuantizer::description() const
{
    return "Round-to-nearest weight quantization (per tensor, channel or group), optional MSE clip search";
}

std::vector<ParamSpec> RtnQuantizer::parameters() const
{
    return {
        {.name = "mse_clip",
         .type = ParamSpec::Type::Bool,
         .defaultValue = false,
         .help = "Search a clipping ratio per group that minimises the rounding error (GPTQ's mse option)"},
        {.name = "clip_grid",
         .type = ParamSpec::Type::Int,
         .defaultValue = int64_t(100),
         .min = 10,
         .max = 1000,
         .help = "Steps of the clip grid"},
        {.name = "clip_max_shrink",
         .defaultValue = 0.8,
         .min = 0.0,
         .max = 0.99,
         .help = "Largest fraction of the range the search may cut"},
        {.name = "clip_norm",
         .defaultValue = 2.4,
         .min = 1.0,
         .max = 4.0,
         .help = "Exponent p of the error Σ|q - w|^p the search minimises"},
    };
}

namespace {

// The columns of (row r, group g) under the tensor's group index.
std::vector<Eigen::Index> columnsOf(const QuantizedTensor& t, int g)
{
    std::vector<Eigen::Index> cols;
    for (Eigen::Index j = 0; j < t.cols(); ++j)
        if (t.groupIndex()[size_t(j)] == g) cols.push_back(j);
    return cols;
}

} // namespace

Expected<LayerResult> RtnQuantizer::quantize(const LayerInput& in, const QuantSpec& spec, const ParamMap& params) const
{
    const auto t0 = std::chrono::steady_clock::now();
    if (!in.weight) return makeError("no weight given");
    const Eigen::MatrixXf w = *in.weight;
    std::optional<QuantizedTensor> tensor;
    if (!paramBool(params, "mse_clip")) {
        auto q = ql::quantize(w, spec.weight);
        if (!q) return q.error();
        tensor = std::move(*q);
    } else {
        auto t = QuantizedTensor::create(w.rows(), w.cols(), spec.weight);
        if (!t) return t.error();
        const WeightFormat& f = t->format();
        const int grid = int(paramInt(params, "clip_grid"));
        const double maxShrink = paramDouble(params, "clip_max_shrink"), norm = paramDouble(params, "clip_norm");
        const bool perTensor = spec.weight.granularity == Granularity::PerTensor;
        for (int g = 0; g < t->groups(); ++g) {
            const std::vector<Eigen::Index> cols = columnsOf(*t, g);
            if (cols.empty()) continue;
            const Eigen::Index rows = perTensor ? 1 : w.rows();
            for (Eigen::Index row = 0; row < rows; ++row) {
                Eigen::VectorXf v(perTensor ? Eigen::Index(cols.size()) * w.rows() : Eigen::Index(cols.size()));
                Eigen::Index k = 0;
                for (Eigen::Index rr = perTensor ? 0 : row; rr < (perTensor ? w.rows() : row + 1); ++rr)
                    for (Eigen::Index c : cols) v[k++] = w(rr, c);
                auto best = computeParams(f, v, 1.f);
                if (!best) return best.error();
                if (f.kind != FormatKind::Binary && f.kind != FormatKind::Ternary) {
                    double bestErr = (fakeQuantize(f, *best, v) - v).array().abs().pow(norm).cast<double>().sum();
                    for (int i = 1; i < int(maxShrink * grid); ++i) {
                        auto p = computeParams(f, v, float(1.0 - double(i) / grid));
                        if (!p) return p.error();
                        const double err = (fakeQuantize(f, *p, v) - v).array().abs().pow(norm).cast<double>().sum();
                        if (err < bestErr) bestErr = err, best = p;
                    }
                }
                QL_TRY(t->setParams(row, g, *best));
            }
        }
        for (Eigen::Index j = 0; j < w.cols(); ++j) QL_TRY(t->quantizeColumn(j, w.col(j)));
        tensor = std::move(*t);
    }
    LayerResult r = finishLayer(in, std::move(*tensor));
    r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

} // namespace ql
