#pragma once
// A hand-built AnalysisSnapshot with known numbers for the view tests: 3 blocks × 7 linear layers
// (hidden 8, intermediate 16), 4 sites per block, weight statistics for every layer but the last,
// sensitivity at 2/3/4 bits and, optionally, end-to-end KL with its Spearman summary.
#include "snapshot.h"

#include <cmath>
#include <memory>

namespace viewfixture {

inline constexpr int kBlocks = 3;
inline constexpr int kHidden = 8;
inline constexpr int kInter = 16;
inline const char* const kSiteKinds[] = {"attn_in", "o_in", "mlp_in", "down_in"};

inline std::string layerName(int block, ql::LinearKind k)
{
    const char* part = (k == ql::LinearKind::Gate || k == ql::LinearKind::Up || k == ql::LinearKind::Down)
                           ? "mlp"
                           : "self_attn";
    return "model.layers." + std::to_string(block) + "." + part + "." + ql::linearShortName(k);
}

inline std::string siteOf(int block, ql::LinearKind k)
{
    int s = 0;
    if (k == ql::LinearKind::O)
        s = 1;
    else if (k == ql::LinearKind::Gate || k == ql::LinearKind::Up)
        s = 2;
    else if (k == ql::LinearKind::Down)
        s = 3;
    return "layers." + std::to_string(block) + "." + kSiteKinds[s];
}

// Values spanning orders of magnitude, so text order and numeric order differ (9 < 10 < 100 but "10" < "100" < "9").
inline double proxyValue(int layerIndex, int bits)
{
    return (layerIndex % 5 + 1) * std::pow(10.0, layerIndex % 3) * 8.0 / bits;
}
inline double relMseValue(int layerIndex, int bits)
{
    return 0.001 * (layerIndex + 1) * 8.0 / bits;
}
inline double sqnrValue(int layerIndex, int bits)
{
    return 6.0 * bits - 0.5 * layerIndex;
}
inline double klValue(int layerIndex, int bits)
{
    return 0.01 * ((layerIndex * 7) % 11 + 1) * 8.0 / bits;
}

// A bell-shaped histogram over [-w, w] with `bins` bins and a few outliers in the tails.
inline void bellHistogram(int bins, float w, double scale, std::vector<double>& counts, std::vector<float>& edges)
{
    counts.assign(size_t(bins), 0.0);
    edges.resize(size_t(bins) + 1);
    for (int i = 0; i <= bins; ++i) edges[size_t(i)] = -w + 2 * w * float(i) / float(bins);
    for (int i = 0; i < bins; ++i) {
        const double x = (i + 0.5) / bins * 2 - 1;
        counts[size_t(i)] = std::floor(scale * std::exp(-x * x * 60.0));
    }
    counts[0] = 1, counts[size_t(bins) - 1] = 2;
}

// Per-channel statistics of a realistic spread: a scale that varies from channel to channel,
// and every 97th channel an outlier 40 times larger, which the outlier list names.
inline void realisticChannels(int channels, int block, ql::SiteStats& st)
{
    auto vec = [channels] { return Eigen::VectorXf(channels); };
    st.min = vec(), st.max = vec(), st.p01 = vec(), st.p25 = vec(), st.p75 = vec(), st.p99 = vec();
    st.mean = vec(), st.var = vec(), st.kurtosis = vec(), st.absmax = vec();
    st.outlierChannels.clear();
    for (int c = 0; c < channels; ++c) {
        const bool outlier = c % 97 == 13;
        const float s = (0.5f + 0.5f * float((c * 7919 + block * 31) % 101) / 101.0f) * (outlier ? 40.0f : 1.0f);
        st.p25[c] = -0.67f * s, st.p75[c] = 0.67f * s;
        st.p01[c] = -2.3f * s, st.p99[c] = 2.4f * s;
        st.min[c] = -4.0f * s, st.max[c] = 4.5f * s;
        st.mean[c] = 0.02f * s, st.var[c] = s * s, st.kurtosis[c] = outlier ? 12.0f : 0.3f;
        st.absmax[c] = 4.5f * s;
        if (outlier) st.outlierChannels.push_back(c);
    }
}

/// The test snapshot; `analysis` false leaves the analysis null, `kl` false leaves KL uncomputed.
/// The sizes default to the small model the content checks use; `bins` > 0 gives every site and
/// weight a bell-shaped histogram of that many bins and every site realistic per-channel
/// statistics (a realistic picture for screenshots and the paint benchmark).
inline ql::SnapshotPtr makeSnapshot(bool analysis = true, bool kl = true, int blocks = kBlocks, int hidden = kHidden,
                                    int inter = kInter, int bins = 0)
{
    auto snap = std::make_shared<ql::AnalysisSnapshot>();
    snap->modelName = "tiny-test";
    snap->blocks = blocks;
    snap->hidden = hidden;
    for (int b = 0; b < blocks; ++b) {
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const auto kind = ql::LinearKind(k);
            ql::LinearLayer l;
            l.name = layerName(b, kind);
            l.site = siteOf(b, kind);
            l.block = b;
            l.kind = kind;
            l.outFeatures = (kind == ql::LinearKind::Gate || kind == ql::LinearKind::Up) ? inter : hidden;
            l.inFeatures = kind == ql::LinearKind::Down ? inter : hidden;
            l.hasBias = kind == ql::LinearKind::Q;
            l.dtype = ql::DType::BF16;
            snap->layers.push_back(l);
        }
    }
    if (!analysis) return snap;

    auto a = std::make_shared<ql::AnalysisResult>();
    a->meta.samples = 4;
    a->meta.seqlen = 32;
    for (int b = 0; b < blocks; ++b) {
        for (int s = 0; s < 4; ++s) {
            const int i = b * 4 + s;
            ql::SiteStats st;
            st.name = "layers." + std::to_string(b) + "." + kSiteKinds[s];
            st.layer = b;
            st.nTokens = 128;
            const int channels = s == 3 ? inter : hidden;
            st.absmax = Eigen::VectorXf::Constant(channels, 1.0f);
            st.absmaxSite = 10.0 * (b + 1) + s;
            st.kurtosisSite = 0.25 * i;
            st.energyEntropyBits = 2.0 + 0.1 * b + 0.01 * s;
            st.valueEntropyBits = 5.0 + 0.2 * b + 0.02 * s;
            for (int c = 0; c < s; ++c) st.outlierChannels.push_back(c * 2);
            st.histCounts = {1.0, 10.0 * (i + 1), 5.0, 0.0};
            st.histEdges = {-2.0f * (i + 1), -1.0f * (i + 1), 0.0f, 1.0f * (i + 1), 2.0f * (i + 1)};
            if (bins > 0) {
                bellHistogram(bins, 20.0f * float(b + 1), 1e6, st.histCounts, st.histEdges);
                realisticChannels(channels, b, st);
            }
            a->sites.push_back(st);
        }
    }
    for (size_t i = 0; i < snap->layers.size(); ++i) {
        const ql::LinearLayer& l = snap->layers[i];
        if (i + 1 < snap->layers.size()) {
            ql::WeightStats w;
            w.name = l.name + ".weight";
            w.rowAbsmax.resize(l.outFeatures);
            w.rowStd.resize(l.outFeatures);
            for (int r = 0; r < l.outFeatures; ++r) {
                w.rowAbsmax[r] = 0.01f * float(i + 1) * float(r + 1);
                w.rowStd[r] = 0.001f * float(i + 1);
                if (bins > 0) { // a noisy band with a few spiky rows
                    w.rowAbsmax[r] = 0.05f + 0.03f * float((r * 37) % 17) / 17.0f + (r % 997 == 5 ? 0.3f : 0.0f);
                    w.rowStd[r] = 0.012f + 0.004f * float((r * 13) % 7) / 7.0f;
                }
            }
            w.kurtosis = 0.5 * double(i);
            w.fracBeyond3Sigma = 0.001 * double(i + 1);
            w.histCounts = {double(i + 1), 100.0 + double(i), 3.0};
            w.histEdges = {-0.1f * float(i + 1), -0.01f, 0.01f, 0.1f * float(i + 1)};
            if (bins > 0) bellHistogram(bins, 0.2f, 1e5, w.histCounts, w.histEdges);
            a->weights.push_back(w);
        }
        ql::LayerSensitivity s;
        s.name = l.name;
        s.bits = {2, 3, 4};
        for (int bits : s.bits) {
            s.proxy.push_back(proxyValue(int(i), bits));
            s.relMse.push_back(relMseValue(int(i), bits));
            s.sqnrDb.push_back(sqnrValue(int(i), bits));
            if (kl) s.kl.push_back(klValue(int(i), bits));
        }
        a->sensitivity.push_back(s);
    }
    if (kl) {
        a->endToEnd.windows = 2;
        a->endToEnd.seqlen = 32;
        a->endToEnd.tokens = 62;
        a->endToEnd.bits = {2, 3, 4};
        a->endToEnd.spearmanProxyKl = {0.61, 0.72, 0.83};
        a->endToEnd.spearmanRelMseKl = {0.44, 0.55, 0.66};
    }
    snap->analysis = a;
    return snap;
}

/// Row of a layer in model order.
inline int layerIndex(int block, ql::LinearKind k)
{
    return block * ql::kLinearCount + int(k);
}

} // namespace viewfixture
