#pragma once

#include "testpaths.h"
// Helpers of the transform tests: fixture models with edited tensors, forward runs over any
// WeightSource, site statistics gathered from the observer, and error measures.
#include "fixturemodel.h"
#include "quantlens/analysis/analysis.h"
#include "quantlens/forward/forward.h"
#include "quantlens/quant/quantspec.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace qltest {

/// Writes config.json and model.safetensors for spec, after edit(tensors) if given.
inline bool writeEditedModel(const std::string& dir, const qlfix::ModelSpec& spec,
                             const std::function<void(std::vector<qlfix::Tensor>&)>& edit, std::string* error)
{
    std::filesystem::create_directories(dir);
    std::ofstream(std::filesystem::path(dir) / "config.json") << qlfix::configJson(spec);
    auto tensors = qlfix::makeWeights(spec);
    if (edit) edit(tensors);
    return qlfix::writeSafetensors((std::filesystem::path(dir) / "model.safetensors").string(), tensors, {}, error);
}

/// The tensor of that name in a generated list (must exist).
inline qlfix::Tensor& tensorNamed(std::vector<qlfix::Tensor>& ts, const std::string& name)
{
    for (auto& t : ts)
        if (t.name == name) return t;
    static qlfix::Tensor none;
    return none;
}

/// Logits of every window (vocab × tokens each); empty on failure.
inline std::vector<Eigen::MatrixXf> logitsOf(const ql::ModelConfig& cfg, const ql::WeightSource& src,
                                             const std::vector<std::vector<int32_t>>& windows,
                                             const ql::ActivationObserver& observer = {})
{
    ql::ForwardEngine engine(cfg, src);
    engine.setObserver(observer);
    std::vector<Eigen::MatrixXf> out(windows.size());
    auto r = engine.run(windows, [&](int s, const Eigen::MatrixXf& l) -> ql::Expected<void> {
        out[size_t(s)] = l;
        return {};
    });
    if (!r) return {};
    return out;
}

/// Per-channel absmax of every site (attn_in, o_in, mlp_in, down_in) over all windows.
inline std::vector<ql::SiteStats> siteAbsmax(const ql::ModelConfig& cfg, const ql::WeightSource& src,
                                             const std::vector<std::vector<int32_t>>& windows)
{
    std::map<std::string, ql::SiteStats> byName;
    logitsOf(cfg, src, windows, [&](const ql::Activation& a) {
        for (const char* site : {".attn_in", ".o_in", ".mlp_in", ".down_in"})
            if (a.name.size() > std::strlen(site) && a.name.ends_with(site)) {
                ql::SiteStats& s = byName[a.name];
                const Eigen::VectorXf m = a.x.cwiseAbs().rowwise().maxCoeff();
                if (s.absmax.size() == 0) {
                    s.name = a.name;
                    s.layer = a.layer;
                    s.absmax = m;
                } else {
                    s.absmax = s.absmax.cwiseMax(m);
                }
                s.nTokens += a.x.cols();
            }
    });
    std::vector<ql::SiteStats> out;
    for (auto& [n, s] : byName) out.push_back(std::move(s));
    return out;
}

/// Every value of one site over all windows (features × tokens).
inline Eigen::MatrixXf siteValues(const ql::ModelConfig& cfg, const ql::WeightSource& src,
                                  const std::vector<std::vector<int32_t>>& windows, const std::string& site)
{
    std::vector<Eigen::MatrixXf> parts;
    logitsOf(cfg, src, windows, [&](const ql::Activation& a) {
        if (a.name == site) parts.push_back(a.x);
    });
    Eigen::Index n = 0;
    for (const auto& p : parts) n += p.cols();
    Eigen::MatrixXf all(parts.empty() ? 0 : parts[0].rows(), n);
    n = 0;
    for (const auto& p : parts) {
        all.middleCols(n, p.cols()) = p;
        n += p.cols();
    }
    return all;
}

/// Activation fake quantization written out loop by loop, per the definition in actquant.h.
inline Eigen::MatrixXf naiveActQuant(const Eigen::MatrixXf& x, const ql::ActQuantSpec& a)
{
    Eigen::MatrixXf out = x;
    auto range = [&](Eigen::Index c0, Eigen::Index c1) {
        float mn = INFINITY, mx = -INFINITY, amax = 0;
        for (Eigen::Index c = c0; c < c1; ++c)
            for (Eigen::Index r = 0; r < x.rows(); ++r) {
                mn = std::min(mn, x(r, c));
                mx = std::max(mx, x(r, c));
                amax = std::max(amax, std::abs(x(r, c)));
            }
        float s, z = 0, lo, hi;
        if (a.symmetric) {
            hi = float((1 << (a.bits - 1)) - 1);
            lo = -hi - 1;
            s = amax / hi;
        } else {
            lo = 0;
            hi = float((1 << a.bits) - 1);
            s = (std::max(mx, 0.f) - std::min(mn, 0.f)) / hi;
            if (s > 0) z = std::nearbyint(-std::min(mn, 0.f) / s);
        }
        if (!(s > 0)) return;
        for (Eigen::Index c = c0; c < c1; ++c)
            for (Eigen::Index r = 0; r < x.rows(); ++r) {
                const float q = std::min(std::max(std::nearbyint(x(r, c) / s) + z, lo), hi);
                out(r, c) = (q - z) * s;
            }
    };
    if (a.perToken)
        for (Eigen::Index c = 0; c < x.cols(); ++c) range(c, c + 1);
    else
        range(0, x.cols());
    return out;
}

/// Excess kurtosis m4 / m2² - 3 of all values (population moments).
inline double excessKurtosis(const Eigen::MatrixXf& x)
{
    const double n = double(x.size()), mean = x.cast<double>().sum() / n;
    const Eigen::ArrayXXd d = x.cast<double>().array() - mean;
    const double m2 = d.square().sum() / n, m4 = d.square().square().sum() / n;
    return m4 / (m2 * m2) - 3.0;
}

/// max |a - b| / max |b| over all windows (infinity when the shapes differ).
inline double maxRelError(const std::vector<Eigen::MatrixXf>& a, const std::vector<Eigen::MatrixXf>& b)
{
    if (a.size() != b.size() || a.empty()) return INFINITY;
    double diff = 0, scale = 0;
    for (size_t s = 0; s < a.size(); ++s) {
        if (a[s].rows() != b[s].rows() || a[s].cols() != b[s].cols()) return INFINITY;
        diff = std::max(diff, double((a[s] - b[s]).cwiseAbs().maxCoeff()));
        scale = std::max(scale, double(b[s].cwiseAbs().maxCoeff()));
    }
    return diff / scale;
}

} // namespace qltest
