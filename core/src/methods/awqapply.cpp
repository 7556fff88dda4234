// AWQ's block-by-block driver (awq.h): capture a block's sites, search and fold its scales,
// clip its weights, and move the calibration states on to the next block.
#include "quantlens/methods/awq.h"

#include "quantlens/forward/forward.h"
#include "quantlens/base/threadscope.h"

#include <algorithm>
#include <cstdio>

namespace ql {

namespace {

// Columns 0, step, 2·step … of the concatenated windows divided by s (the fold's effect on the
// site), with step = max(1, N / maxTokens) as the reference samples its clip tokens.
Eigen::MatrixXf sampledInputs(const std::vector<Eigen::MatrixXf>& xs, const Eigen::VectorXf* s, int maxTokens)
{
    Eigen::Index total = 0;
    for (const auto& x : xs) total += x.cols();
    const Eigen::Index step = std::max<Eigen::Index>(1, total / std::max(1, maxTokens));
    const Eigen::Index kept = (total + step - 1) / step;
    Eigen::MatrixXf out(xs.empty() ? 0 : xs[0].rows(), kept);
    Eigen::Index t = 0, k = 0;
    for (const auto& x : xs)
        for (Eigen::Index c = 0; c < x.cols(); ++c, ++t)
            if (t % step == 0) out.col(k++) = x.col(c);
    if (s) out = s->cwiseInverse().asDiagonal() * out;
    return out;
}

std::string fmt(const char* f, double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

} // namespace

Expected<AwqBlockInputs> awqCaptureBlock(const FloatWeights& w, int layer, std::vector<Eigen::MatrixXf> blockInputs,
                                         int threads)
{
    if (layer < 0 || layer >= w.layers()) return makeError("awq: no layer " + std::to_string(layer));
    AwqBlockInputs in;
    const size_t n = blockInputs.size();
    in.attnIn.resize(n);
    in.oIn.resize(n);
    in.mlpIn.resize(n);
    in.downIn.resize(n);
    in.attnOut.resize(n);
    in.input = blockInputs;
    const std::pair<BlockPoint, std::vector<Eigen::MatrixXf>*> slots[] = {
        {BlockPoint::AttnIn, &in.attnIn}, {BlockPoint::OIn, &in.oIn},         {BlockPoint::MlpIn, &in.mlpIn},
        {BlockPoint::DownIn, &in.downIn}, {BlockPoint::AttnOut, &in.attnOut},
    };
    ForwardEngine engine(w.config(), w);
    engine.setObserver([&](const Activation& a) {
        if (a.layer != layer) return;
        for (const auto& [point, dst] : slots)
            if (a.point == point) (*dst)[size_t(a.sequence)] = a.x;
    });
    ForwardOptions fo;
    fo.threads = threads;
    fo.computeLogits = false;
    auto ran = engine.runLayers(layer, layer + 1, blockInputs, fo);
    if (!ran) return ran.error();
    return in;
}

Expected<AwqReport> applyAwq(FloatWeights& w, const std::vector<std::vector<int32_t>>& windows, const AwqOptions& o,
                             Feedback* fb)
{
    if (windows.empty()) return makeError("awq needs calibration data: no calibration windows were given");
    for (const auto& win : windows)
        if (win.empty()) return makeError("awq: a calibration window is empty");
    if (o.grid < 1) return makeError("awq: alpha_grid must be at least 1, got " + std::to_string(o.grid));
    if (o.clipGrid < 1) return makeError("awq: clip_grid must be at least 1, got " + std::to_string(o.clipGrid));
    if (!(o.maxShrink >= 0 && o.maxShrink < 1))
        return makeError("awq: max_shrink must be in [0, 1), got " + std::to_string(o.maxShrink));
    if (o.clipTokens < 1) return makeError("awq: clip tokens must be at least 1, got " + std::to_string(o.clipTokens));
    // Checks the format and grouping before any weight changes.
    if (auto probe = awqFakeQuantize(RowMatrix::Zero(1, 1), o.weight); !probe) return probe.error();
    const ThreadScope threads(o.threads);

    std::vector<Eigen::MatrixXf> states(windows.size());
    for (size_t s = 0; s < windows.size(); ++s) {
        auto e = w.embed(windows[s], states[s]);
        if (!e) return makeError("awq: " + e.message());
    }

    AwqReport report;
    for (int layer = 0; layer < w.layers(); ++layer) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        auto in = awqCaptureBlock(w, layer, std::move(states), o.threads);
        if (!in) return in.error();
        AwqBlockReport br;
        br.layer = layer;
        // All groups are searched on the block as it came in, then folded together: each search
        // sees float weights elsewhere, as in the reference's auto_scale_block + apply_scale.
        for (int g = 0; g < kAwqGroupCount; ++g) {
            auto r = awqSearchGroup(w, layer, AwqGroup(g), *in, o);
            if (!r) return r.error();
            br.groups.push_back(std::move(*r));
        }
        for (const AwqGroupResult& r : br.groups) awqFoldGroup(w, layer, r);

        if (o.clip) {
            auto scalesOf = [&](AwqGroup g) -> const Eigen::VectorXf* {
                const AwqGroupResult& r = br.groups[size_t(g)];
                return r.applied ? &r.scales : nullptr;
            };
            const std::pair<LinearKind, AwqGroup> clipped[] = {
                {LinearKind::V, AwqGroup::AttnIn},    {LinearKind::O, AwqGroup::OIn},
                {LinearKind::Gate, AwqGroup::MlpIn},  {LinearKind::Up, AwqGroup::MlpIn},
                {LinearKind::Down, AwqGroup::DownIn},
            };
            const std::vector<Eigen::MatrixXf>* sites[] = {&in->attnIn, &in->oIn, &in->mlpIn, &in->downIn};
            Eigen::MatrixXf x;
            AwqGroup cached = AwqGroup::AttnIn;
            bool have = false;
            for (const auto& [k, g] : clipped) {
                if (!have || cached != g) {
                    x = sampledInputs(*sites[int(g)], scalesOf(g), o.clipTokens);
                    cached = g;
                    have = true;
                }
                auto c = awqClipLinear(w.linear(layer, k), x, o);
                if (!c)
                    return makeError("awq: layer " + std::to_string(layer) + " " + linearShortName(k) + ": " +
                                     c.message());
                c->linear = k;
                br.clips.push_back(*c);
            }
        }

        // The next block's inputs come from this block as AWQ left it (scaled and clipped).
        states = std::move(in->input);
        ForwardEngine engine(w.config(), w);
        ForwardOptions fo;
        fo.threads = o.threads;
        fo.computeLogits = false;
        auto ran = engine.runLayers(layer, layer + 1, states, fo);
        if (!ran) return ran.error();

        if (fb) {
            std::string msg = "awq: layer " + std::to_string(layer) + ":";
            for (const AwqGroupResult& r : br.groups)
                msg += std::string(" ") + awqGroupSite(r.group) +
                       (r.applied ? " α " + fmt("%.2f", r.alpha) + " (loss " + fmt("%.3g", r.lossPlain) + " → " +
                                        fmt("%.3g", r.lossBest) + ")"
                                  : " skipped");
            fb->message(msg);
            fb->progress(double(layer + 1) / w.layers());
        }
        report.blocks.push_back(std::move(br));
    }
    if (auto v = w.validate(); !v) return makeError("awq produced invalid weights: " + v.message());
    return report;
}

} // namespace ql
