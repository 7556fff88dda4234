#include "quantlens/quant/blockquantizer.h"

namespace ql {

Expected<LayerResult> BlockQuantizer::quantize(const LayerInput& input, const QuantSpec&, const ParamMap&) const
{
    return makeError("layer " + input.name + ": method " + id() +
                     " quantizes whole decoder blocks; run it through the quantization pipeline");
}

Expected<AsymmetricGrid> asymmetricGrid(const QuantSpec& spec, Eigen::Index inputs, const std::string& layer,
                                        const std::string& method)
{
    auto f = findFormat(spec.weight.format);
    if (!f) return makeError("layer " + layer + ": " + f.message());
    if ((*f)->kind != FormatKind::IntAsym)
        return makeError("layer " + layer + ": " + method + " trains an asymmetric integer grid; format " +
                         spec.weight.format + " is not one (use int2_asym ... int8_asym)");
    AsymmetricGrid g{(*f)->bits, 0};
    switch (spec.weight.granularity) {
    case Granularity::PerTensor:
        return makeError("layer " + layer + ": " + method + " needs per_channel or per_group granularity");
    case Granularity::PerChannel: break;
    case Granularity::PerGroup: g.group = spec.weight.groupSize >= inputs ? 0 : spec.weight.groupSize; break;
    }
    return g;
}

LayerResult finishBlockLayer(const BlockInput& input, int k, QuantizedTensor t, double seconds)
{
    const RowMatrix w = (*input.weights)[LinearKind(k)];
    LayerInput li;
    li.name = input.names[size_t(k)];
    li.weight = &w;
    LayerResult r = finishLayer(li, std::move(t));
    r.report.seconds = seconds;
    return r;
}

void attachBlockLoss(BlockResult& result)
{
    for (auto& layer : result.layers) {
        if (!layer) continue;
        layer->report.metrics["block_loss_before"] = result.lossBefore;
        layer->report.metrics["block_loss_after"] = result.lossAfter;
    }
}

} // namespace ql
