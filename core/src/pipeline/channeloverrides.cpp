#include "pipeline/channeloverrides.h"

#include "quantlens/quant/formats.h"
#include "quantlens/recipe/recipe.h"

#include <set>

namespace ql::detail {

bool needsSiteStatistics(const QuantSpec& spec)
{
    for (const ChannelOverride& c : spec.channels)
        if (!c.selector.empty()) return true;
    return false;
}

Expected<void> applyChannelOverrides(const LayerInput& in, const QuantSpec& spec, LayerResult& result)
{
    if (spec.channels.empty()) return {};
    const RowMatrix& w = *in.weight;
    const Eigen::Index rows = w.rows(), cols = w.cols();
    auto base = findFormat(spec.weight.format);
    if (!base) return makeError("layer " + in.name + ": " + base.message());
    std::set<int32_t> taken;
    double bits = result.report.bitsPerWeight * double(rows) * double(cols);
    for (size_t i = 0; i < spec.channels.size(); ++i) {
        const ChannelOverride& c = spec.channels[i];
        auto picked = selectChannels(c, in.site, int(cols));
        if (!picked)
            return makeError("layer " + in.name + ": channels[" + std::to_string(i) + "]: " + picked.message());
        std::vector<int32_t> mine;
        for (int32_t ch : *picked)
            if (taken.insert(ch).second) mine.push_back(ch);
        if (mine.empty()) continue;
        Eigen::MatrixXf sub(rows, Eigen::Index(mine.size()));
        for (size_t k = 0; k < mine.size(); ++k) sub.col(Eigen::Index(k)) = w.col(mine[k]);
        auto t = quantize(sub, c.weight);
        if (!t) return makeError("layer " + in.name + ": channels[" + std::to_string(i) + "]: " + t.message());
        const Eigen::MatrixXf dq = t->dequantize();
        for (size_t k = 0; k < mine.size(); ++k) result.dequantized.col(mine[k]) = dq.col(Eigen::Index(k));
        // The base codes of these columns are not stored; theirs are, with their parameters.
        bits += (effectiveBits(*t) - double((*base)->bits)) * double(rows) * double(mine.size());
        result.report.notes.push_back(std::to_string(mine.size()) + " input channels in " + c.weight.format +
                                      " (channels[" + std::to_string(i) + "])");
    }
    if (taken.empty()) return {};
    result.tensor.reset(); // several formats: no single-format tensor describes the layer
    result.report.bitsPerWeight = bits / (double(rows) * double(cols));
    fillErrorReport(w, result.dequantized, in.hessian, result.report);
    return {};
}

} // namespace ql::detail
