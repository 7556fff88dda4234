#include "quantlens/methods/smoothquant.h"

#include <cmath>

namespace ql {

namespace {

// The smoothable sites of a block, each behind a norm: attn_in (attnNorm, q/k/v) and mlp_in
// (mlpNorm, gate/up).
constexpr BlockPoint kSmoothSites[] = {BlockPoint::AttnIn, BlockPoint::MlpIn};

} // namespace

Eigen::VectorXf smoothQuantScales(const Eigen::Ref<const Eigen::VectorXf>& a,
                                  const Eigen::Ref<const Eigen::VectorXf>& w, double alpha)
{
    Eigen::VectorXf s(a.size());
    for (Eigen::Index j = 0; j < a.size(); ++j) {
        // In double: a^α / w^(1-α) spans many decades for outlier channels.
        const double v = std::pow(double(a[j]), alpha) / std::pow(std::max(double(w[j]), 1e-5), 1.0 - alpha);
        s[j] = float(std::max(v, 1e-5));
    }
    return s;
}

Expected<std::map<std::string, Eigen::VectorXf>> smoothQuant(FloatWeights& weights, const std::vector<SiteStats>& sites,
                                                             const SmoothQuantOptions& opt, Feedback* fb)
{
    if (!(opt.alpha >= 0 && opt.alpha <= 1))
        return makeError("smoothquant: alpha must be in [0, 1], got " + std::to_string(opt.alpha));
    std::map<std::string, const SiteStats*> byName;
    for (const SiteStats& s : sites) byName[s.name] = &s;
    const int hidden = weights.config().hidden;
    // Check every site before touching any weight, so a missing one leaves the model as it was.
    for (int i = 0; i < weights.layers(); ++i)
        for (const BlockPoint site : kSmoothSites) {
            const std::string name = siteName(i, site);
            auto it = byName.find(name);
            if (it == byName.end())
                return makeError("smoothquant: no activation statistics for site " + name +
                                 " (analyze the model with calibration data first)");
            const Eigen::VectorXf& a = it->second->absmax;
            if (a.size() != hidden)
                return makeError("smoothquant: statistics of site " + name + " have " + std::to_string(a.size()) +
                                 " channels, the model's hidden size is " + std::to_string(hidden));
            if (!a.allFinite() || a.minCoeff() < 0)
                return makeError("smoothquant: statistics of site " + name +
                                 " have negative or non-finite absmax values");
        }

    std::map<std::string, Eigen::VectorXf> applied;
    for (int i = 0; i < weights.layers(); ++i) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        BlockWeights& b = weights.blockWeights(i);
        for (const BlockPoint site : kSmoothSites) {
            const std::string name = siteName(i, site);
            Eigen::VectorXf wmax = Eigen::VectorXf::Zero(hidden);
            for (LinearKind k : linearsReading(site))
                wmax = wmax.cwiseMax(weights.linear(i, k).cwiseAbs().colwise().maxCoeff().transpose());
            const Eigen::VectorXf s = smoothQuantScales(byName.at(name)->absmax, wmax, opt.alpha);
            Eigen::VectorXf& gamma = site == BlockPoint::AttnIn ? b.attnNorm : b.mlpNorm;
            gamma = gamma.cwiseQuotient(s);
            for (LinearKind k : linearsReading(site)) {
                RowMatrix& w = weights.linear(i, k);
                w = w * s.asDiagonal();
            }
            applied[name] = s;
        }
        if (fb) fb->progress(double(i + 1) / weights.layers());
    }
    return applied;
}

std::string SmoothQuantTransform::description() const
{
    return "SmoothQuant: per-channel scales move activation outliers of attn_in and mlp_in into the weights, "
           "folded into the RMSNorm before them";
}

std::vector<ParamSpec> SmoothQuantTransform::parameters() const
{
    return {{.name = "alpha",
             .defaultValue = 0.5,
             .min = 0.0,
             .max = 1.0,
             .help = "Migration strength α: s = max|X|^α / max|W|^(1-α) (0.5 default; 0.8–0.85 for LLaMA / Mistral)"}};
}

Expected<void> SmoothQuantTransform::apply(FloatWeights& weights, const TransformContext& ctx,
                                           const ParamMap& params) const
{
    auto p = completeParams(parameters(), params, id());
    if (!p) return p.error();
    if (!ctx.sites || ctx.sites->empty())
        return makeError("smoothquant needs activation statistics (per-channel absmax of attn_in and mlp_in): "
                         "analyze the model with calibration data first");
    SmoothQuantOptions o;
    o.alpha = paramDouble(*p, "alpha");
    auto r = smoothQuant(weights, *ctx.sites, o, ctx.feedback);
    if (!r) return r.error();
    if (ctx.feedback)
        ctx.feedback->message("smoothquant: smoothed " + std::to_string(r->size()) + " sites, alpha " +
                              paramValueText(p->at("alpha")));
    return {};
}

} // namespace ql
