// The built-in PB-LLM method as a plugin module; the algorithm is core's pbllmQuantize.
#include "quantlensplugin.h"
#include "quantlens/params.h"
#include "quantlens/pbllm.h"

#include <QObject>

#include <chrono>

namespace {

class PbllmQuantizer final : public ql::Quantizer {
public:
    std::string id() const override { return "pbllm"; }
    std::string description() const override
    {
        return "PB-LLM: binarize most weights, keep a salient fraction at high precision, with GPTQ error compensation";
    }
    std::vector<ql::ParamSpec> parameters() const override
    {
        using T = ql::ParamSpec::Type;
        return {
            {"salient_fraction", T::Double, 0.1, 0.0, 1.0, {}, "Share of the weights kept at salient_bits"},
            {"criterion", T::Choice, std::string("hessian"), 0, -1, {"magnitude", "hessian"},
             "Salient weights by |w| or by the OBS saliency w² / U_jj²"},
            {"salient_bits", T::Int, int64_t(8), 2, 8, {}, "Bits of the salient weights (asymmetric integer)"},
            {"damp", T::Double, 0.01, 0.0, 1.0, {}, "Dampening: H += damp · mean(diag H) · I"},
            {"auto_damp", T::Bool, true, 0, -1, {}, "When the dampened Hessian is not positive definite, retry with 10x the dampening and report it"},
            {"block_size", T::Int, int64_t(128), 1, 4096, {}, "Columns per block (lazy update, mask and parameter unit)"},
        };
    }
    bool needsHessian() const override { return true; }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec&, const ql::ParamMap& p) const override
    {
        const auto t0 = std::chrono::steady_clock::now();
        if (!in.weight || !in.hessian || in.hessian->size() == 0)
            return ql::makeError("PB-LLM needs the layer's Hessian: give calibration data");
        ql::PbllmOptions o;
        o.salientFraction = ql::paramDouble(p, "salient_fraction");
        o.criterion = ql::paramString(p, "criterion") == "magnitude" ? ql::PbllmCriterion::Magnitude : ql::PbllmCriterion::Hessian;
        o.salientBits = int(ql::paramInt(p, "salient_bits"));
        o.blockSize = int(ql::paramInt(p, "block_size"));
        ql::Expected<ql::PbllmResult> q = ql::makeError("not run");
        const double asked = ql::paramDouble(p, "damp");
        auto used = ql::withAutoDamping(asked, ql::paramBool(p, "auto_damp"), [&](double damp) -> ql::Expected<void> {
            o.damp = damp;
            q = ql::pbllmQuantize(*in.weight, *in.hessian, o);
            if (!q) return q.error();
            return {};
        });
        if (!used) return used.error();
        ql::LayerResult r; // two formats in one weight: no single QuantizedTensor
        r.report.metrics["damp"] = *used;
        if (*used != asked)
            r.report.notes.push_back("the Hessian was not positive definite with damp " + ql::paramValueText(asked) +
                                     "; raised to " + ql::paramValueText(*used));
        r.dequantized = std::move(q->dequantized);
        r.report.bitsPerWeight = q->bitsPerWeight;
        r.report.metrics["gptq_loss"] = q->loss;
        r.report.metrics["salient_weights"] = double(q->salientCount);
        r.report.metrics["stored_bits_per_weight"] = q->storedBitsPerWeight;
        r.report.notes.push_back("salient weights and binarized weights are kept as one dequantized weight");
        ql::fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
        r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return r;
    }
};

} // namespace

class PbllmPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "pbllm.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {std::make_shared<PbllmQuantizer>()}; }
};

#include "pbllmplugin.moc"
