#include "quantlens/analysis/analysis.h"

namespace ql {

double inputMeanSquare(const SiteStats& site)
{
    return (site.var.cast<double>().array() + site.mean.cast<double>().array().square()).mean();
}

std::string sensitivityOptionLabel(const SensitivityOption& o)
{
    return o.method + " w" + std::to_string(o.bits) + (o.group > 0 ? " g" + std::to_string(o.group) : " row");
}

SensitivityOption LayerSensitivity::option(size_t k) const
{
    SensitivityOption o;
    o.bits = bits.at(k);
    if (k < methods.size()) o.method = methods[k];
    if (k < groups.size()) o.group = groups[k];
    return o;
}

} // namespace ql
