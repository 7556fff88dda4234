#include "quantlens/recipe/plansize.h"

#include "quantlens/quant/formats.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// Total bits of a rows × cols block stored in format f (codes and per-group parameters).
double blockBits(const FormatSpec& f, double rows, double cols)
{
    if (rows <= 0 || cols <= 0) return 0;
    auto found = findFormat(f.format);
    if (!found) return 16.0 * rows * cols; // an unknown format stays float (resolution reports it)
    const WeightFormat& w = **found;
    double perGroup = 16; // the fp16 scale
    if (w.kind == FormatKind::IntAsym) perGroup += w.bits;
    if (w.kind == FormatKind::Binary) perGroup += 16; // μ
    double groups = rows;
    if (f.granularity == Granularity::PerTensor)
        groups = 1;
    else if (f.granularity == Granularity::PerGroup && f.groupSize > 0)
        groups = rows * std::ceil(cols / double(f.groupSize));
    return w.bits * rows * cols + groups * perGroup;
}

} // namespace

double specBitsPerWeight(const QuantSpec& spec, int64_t rows, int64_t cols)
{
    if (spec.skip) return 16;
    const double weights = double(rows) * double(cols);
    if (weights <= 0) return 0;
    double salient = 0, salientBits = 0;
    for (const ChannelOverride& c : spec.channels) {
        const double k = c.selector.empty() ? double(c.channels.size())
                                            : std::max(1.0, std::ceil(c.selectorValue * double(cols) / 100.0 - 1e-9));
        const double take = std::min(k, double(cols) - salient);
        salient += take;
        salientBits += blockBits(c.weight, double(rows), take);
    }
    // The base format keeps its groups over the full width; salient columns leave only their codes.
    const double base = blockBits(spec.weight, double(rows), double(cols));
    auto f = findFormat(spec.weight.format);
    const double codeBits = f ? double((*f)->bits) : 16.0;
    return (base - codeBits * double(rows) * salient + salientBits) / weights;
}

PlanSize planSize(const std::map<std::string, QuantSpec>& specs, const std::vector<LinearLayer>& layers,
                  int64_t modelParameters)
{
    PlanSize s;
    double bits = 0, linearParams = 0;
    for (const LinearLayer& l : layers) {
        const double n = double(l.outFeatures) * double(l.inFeatures);
        linearParams += double(l.params());
        const double bias = double(l.params()) - n;
        auto it = specs.find(l.name);
        if (it == specs.end() || it->second.skip) {
            bits += 16.0 * double(l.params());
            continue;
        }
        const double b = specBitsPerWeight(it->second, l.outFeatures, l.inFeatures);
        s.quantizedWeights += n;
        s.bitsPerWeight += b * n;
        bits += b * n + 16.0 * bias;
    }
    if (s.quantizedWeights > 0) s.bitsPerWeight /= s.quantizedWeights;
    bits += 16.0 * std::max(0.0, double(modelParameters) - linearParams);
    s.modelBytes = int64_t(bits / 8.0 + 0.5);
    return s;
}

} // namespace ql
