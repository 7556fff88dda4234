// A minimal out-of-tree quantizer: symmetric per-row rounding with a step parameter, using the
// SDK's format helpers for the codes.
#include <quantlens/base/params.h>
#include <quantlens/quant/quantizer.h>
#include <quantlensplugin.h>

#include <QObject>

namespace {

class HalfStep final : public ql::Quantizer {
public:
    std::string id() const override { return "halfstep"; }
    std::string description() const override { return "per-row symmetric rounding (out-of-tree example)"; }
    std::vector<ql::ParamSpec> parameters() const override
    {
        return {{.name = "shrink",
                 .defaultValue = 1.0,
                 .min = 0.5,
                 .max = 1.0,
                 .help = "Fraction of the row's range kept"}};
    }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec& spec,
                                           const ql::ParamMap& p) const override
    {
        ql::FormatSpec f = spec.weight;
        f.granularity = ql::Granularity::PerChannel;
        auto t = ql::QuantizedTensor::create(in.weight->rows(), in.weight->cols(), f);
        if (!t) return t.error();
        for (Eigen::Index r = 0; r < in.weight->rows(); ++r) {
            auto params = ql::computeParams(t->format(), in.weight->row(r).transpose(),
                                            float(ql::paramDouble(p, "shrink")));
            if (!params) return params.error();
            QL_TRY(t->setParams(r, 0, *params));
        }
        for (Eigen::Index c = 0; c < in.weight->cols(); ++c) QL_TRY(t->quantizeColumn(c, in.weight->col(c)));
        return ql::finishLayer(in, std::move(*t));
    }
};

} // namespace

class HalfStepPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "halfstep.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {std::make_shared<HalfStep>()}; }
};

#include "halfstep.moc"
