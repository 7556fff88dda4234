#include "quantlens/forward/siteranges.h"

#include "quantlens/forward/forward.h"

#include <cmath>
#include <map>

namespace ql {

Expected<std::vector<SiteStats>> siteRanges(const ModelConfig& config, const WeightSource& weights,
                                            const std::vector<std::vector<int32_t>>& windows, int threads, Feedback* fb)
{
    if (windows.empty()) return makeError("site statistics need calibration windows");
    std::map<std::string, SiteStats> sites;
    std::vector<std::string> order;
    for (int i = 0; i < config.layers; ++i)
        for (const BlockPoint p : kSitePoints) {
            const std::string name = siteName(i, p);
            order.push_back(name);
            sites[name].name = name;
            sites[name].layer = i;
        }
    ForwardEngine engine(config, weights);
    engine.setObserver([&](const Activation& a) {
        auto it = sites.find(a.name);
        if (it == sites.end()) return;
        SiteStats& st = it->second;
        if (st.nTokens == 0) {
            st.min = Eigen::VectorXf::Constant(a.x.rows(), INFINITY);
            st.max = Eigen::VectorXf::Constant(a.x.rows(), -INFINITY);
        }
        st.min = st.min.cwiseMin(a.x.rowwise().minCoeff());
        st.max = st.max.cwiseMax(a.x.rowwise().maxCoeff());
        st.nTokens += a.x.cols();
    });
    ForwardOptions fo;
    fo.threads = threads;
    fo.computeLogits = false;
    QL_TRY(engine.run(windows, {}, fo, fb));
    std::vector<SiteStats> out;
    for (const auto& name : order) {
        SiteStats& st = sites.at(name);
        st.absmax = st.min.cwiseAbs().cwiseMax(st.max.cwiseAbs());
        st.absmaxSite = st.absmax.size() ? st.absmax.maxCoeff() : 0.0;
        out.push_back(std::move(st));
    }
    return out;
}

} // namespace ql
