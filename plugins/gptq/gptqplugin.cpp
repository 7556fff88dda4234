// The built-in GPTQ method as a plugin module; the algorithm is core's gptqQuantize.
#include "quantlensplugin.h"
#include "quantlens/gptq.h"
#include "quantlens/params.h"

#include <QObject>

#include <chrono>

namespace {

class GptqQuantizer final : public ql::Quantizer {
public:
    std::string id() const override { return "gptq"; }
    std::string description() const override
    {
        return "GPTQ: quantize column by column, pushing each error onto the remaining columns through the inverse Hessian";
    }
    std::vector<ql::ParamSpec> parameters() const override
    {
        using T = ql::ParamSpec::Type;
        return {
            {"damp", T::Double, 0.01, 0.0, 1.0, {}, "Dampening: H += damp · mean(diag H) · I (GPTQ's percdamp)"},
            {"auto_damp", T::Bool, true, 0, -1, {}, "When the dampened Hessian is not positive definite, retry with 10x the dampening and report it"},
            {"block_size", T::Int, int64_t(128), 1, 4096, {}, "Columns per lazy batch update"},
            {"act_order", T::Bool, false, 0, -1, {}, "Quantize columns in order of decreasing Hessian diagonal (desc_act)"},
            {"static_groups", T::Bool, false, 0, -1, {}, "Compute all group parameters up front from the original weight"},
            {"mse_clip", T::Bool, false, 0, -1, {}, "Search a clipping ratio per group (quant.py's mse grid)"},
            {"block_invariant_groups", T::Bool, false, 0, -1, {},
             "Take group parameters from the fully updated weights, so codes do not depend on block_size (the reference "
             "takes them from the weights as they were when the block began)"},
        };
    }
    bool needsHessian() const override { return true; }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec& spec,
                                           const ql::ParamMap& p) const override
    {
        const auto t0 = std::chrono::steady_clock::now();
        if (!in.weight || !in.hessian || in.hessian->size() == 0)
            return ql::makeError("GPTQ needs the layer's Hessian: give calibration data");
        ql::GptqOptions o;
        o.blockSize = int(ql::paramInt(p, "block_size"));
        o.actOrder = ql::paramBool(p, "act_order");
        o.staticGroups = ql::paramBool(p, "static_groups");
        o.mseClip = ql::paramBool(p, "mse_clip");
        o.blockInvariantGroups = ql::paramBool(p, "block_invariant_groups");
        ql::Expected<ql::GptqResult> g = ql::makeError("not run");
        const double asked = ql::paramDouble(p, "damp");
        auto used = ql::withAutoDamping(asked, ql::paramBool(p, "auto_damp"), [&](double damp) -> ql::Expected<void> {
            o.damp = damp;
            g = ql::gptqQuantize(*in.weight, *in.hessian, spec.weight, o);
            if (!g) return g.error();
            return {};
        });
        if (!used) return used.error();
        ql::LayerResult r;
        r.report.metrics["damp"] = *used;
        if (*used != asked)
            r.report.notes.push_back("the Hessian was not positive definite with damp " + ql::paramValueText(asked) +
                                     "; raised to " + ql::paramValueText(*used));
        r.dequantized = std::move(g->dequantized);
        r.report.bitsPerWeight = ql::effectiveBits(g->tensor);
        r.report.metrics["gptq_loss"] = g->loss;
        r.report.metrics["dead_columns"] = g->deadColumns;
        r.tensor = std::move(g->tensor);
        ql::fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
        r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return r;
    }
};

} // namespace

class GptqPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "gptq.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {std::make_shared<GptqQuantizer>()}; }
};

#include "gptqplugin.moc"
