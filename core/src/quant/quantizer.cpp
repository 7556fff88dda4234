#include "quantlens/quant/quantizer.h"

namespace ql {

double effectiveBits(const QuantizedTensor& t)
{
    const double weights = double(t.rows()) * double(t.cols());
    if (weights == 0) return 0;
    const WeightFormat& f = t.format();
    double perGroup = 16; // scale
    if (f.kind == FormatKind::IntAsym) perGroup += f.bits;
    if (f.kind == FormatKind::Binary) perGroup += 16; // μ
    const double groups = t.spec().granularity == Granularity::PerTensor ? 1.0 : double(t.rows()) * t.groups();
    return f.bits + groups * perGroup / weights;
}

void fillErrorReport(const RowMatrix& w, const RowMatrix& q, const Eigen::MatrixXd* h, LayerReport& report)
{
    const Eigen::MatrixXd wd = w.cast<double>(), dw = (q - w).cast<double>();
    const double wn = wd.squaredNorm();
    report.weightRelError = wn > 0 ? dw.squaredNorm() / wn : 0.0;
    if (h && h->rows() == w.cols()) {
        // ||ΔW X||² = tr(ΔW H ΔWᵀ) with H = Σ x xᵀ.
        const double err = ((dw * *h).cwiseProduct(dw)).sum();
        const double sig = ((wd * *h).cwiseProduct(wd)).sum();
        report.outputRelMse = sig > 0 ? err / sig : 0.0;
    }
}

LayerResult finishLayer(const LayerInput& in, QuantizedTensor t)
{
    LayerResult r;
    r.dequantized = t.dequantize();
    r.report.bitsPerWeight = effectiveBits(t);
    fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
    r.tensor = std::move(t);
    return r;
}

} // namespace ql
