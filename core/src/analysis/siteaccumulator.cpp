#include "analysis/siteaccumulator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ql::detail {

namespace {

// Exact percentiles by histogram selection: one pass bins a channel's values on a fine uniform
// grid over its [min, max], the cumulative counts name the bin holding each wanted rank, a second
// pass gathers only those bins' values, and nth_element finishes inside them. Binning is monotone
// (x ↦ (x - lo)·s is monotone under round-to-nearest), so a value's rank among all values equals
// the values in lower bins plus its rank inside its bin.
constexpr int kSelectBins = 2048;
// numpy.percentile's default ("linear"): value at rank q·(n-1), interpolated.
constexpr double kQuantiles[4] = {0.01, 0.25, 0.75, 0.99};
constexpr Eigen::Index kStrip = 2048; // values binned per strip, so the bin indices stay in L1

inline int binOf(float x, float lo, float scale, int bins)
{
    return std::clamp(static_cast<int>((x - lo) * scale), 0, bins - 1);
}

struct Scratch {
    std::vector<int32_t> chan, site; // two interleaved copies each (see scatter)
    std::vector<int32_t> ib, is;     // bin indices of one strip
    std::vector<int8_t> slotOfBin;   // which gathered bin a selection bin feeds, or -1
    std::vector<std::vector<float>> gathered;
    std::vector<int64_t> siteTotal;
};

struct ChannelMoments {
    double mean, m2, m3, m4; // central sums (not divided by n)
    double meanAbs;
};

ChannelMoments moments(const float* v, Eigen::Index n)
{
    double s1 = 0, sa = 0;
#pragma omp simd reduction(+ : s1, sa)
    for (Eigen::Index t = 0; t < n; ++t) {
        s1 += double(v[t]);
        sa += std::abs(double(v[t]));
    }
    const double mean = s1 / double(n);
    double a2 = 0, a3 = 0, a4 = 0;
#pragma omp simd reduction(+ : a2, a3, a4)
    for (Eigen::Index t = 0; t < n; ++t) {
        const double d = double(v[t]) - mean, d2 = d * d;
        a2 += d2;
        a3 += d2 * d;
        a4 += d2 * d2;
    }
    return {mean, a2, a3, a4, sa / double(n)};
}

// Channel-selection and site histograms of one channel in one pass over its values.
void binChannel(const float* v, Eigen::Index n, float lo, float scale, float siteLo, float siteScale, int siteBins,
                Scratch& s)
{
    // The histograms arrive zeroed: every reader below clears what it reads, which is cheaper
    // than clearing 24 KB per channel up front.
    int32_t* chan1 = s.chan.data() + kSelectBins;
    int32_t* site1 = s.site.data() + siteBins;
    for (Eigen::Index t0 = 0; t0 < n; t0 += kStrip) {
        const Eigen::Index len = std::min(kStrip, n - t0);
        const float* x = v + t0;
        int32_t* ib = s.ib.data();
        int32_t* is = s.is.data();
#pragma omp simd
        for (Eigen::Index t = 0; t < len; ++t) {
            ib[t] = binOf(x[t], lo, scale, kSelectBins);
            is[t] = binOf(x[t], siteLo, siteScale, siteBins);
        }
        // Neighbouring values often share a bin; alternating between two copies keeps those
        // increments from waiting on each other.
        Eigen::Index t = 0;
        for (; t + 2 <= len; t += 2) {
            s.chan[ib[t]]++;
            chan1[ib[t + 1]]++;
            s.site[is[t]]++;
            site1[is[t + 1]]++;
        }
        for (; t < len; ++t) {
            s.chan[ib[t]]++;
            s.site[is[t]]++;
        }
    }
    for (int b = 0; b < kSelectBins; ++b) {
        s.chan[b] += chan1[b];
        chan1[b] = 0;
    }
    for (int b = 0; b < siteBins; ++b) {
        s.siteTotal[b] += s.site[b] + site1[b];
        s.site[b] = site1[b] = 0;
    }
}

// Orders floats like their values: flips the sign bit of positives, every bit of negatives.
inline uint32_t orderKey(float x)
{
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline float fromOrderKey(uint32_t k)
{
    const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

// The smallest value of the channel's range [min, max] that bins to b or above (+inf past the
// last bin), by bisection over the float order: binning is monotone, so a value is in bin b
// exactly when firstValueOfBin(b) <= x < firstValueOfBin(b + 1).
float firstValueOfBin(int b, float lo, float mx, float scale)
{
    if (b <= 0) return -INFINITY;
    if (b >= kSelectBins) return INFINITY;
    uint32_t a = orderKey(lo), z = orderKey(mx);
    if (binOf(mx, lo, scale, kSelectBins) < b) return INFINITY;
    while (a < z) { // invariant: binOf(fromOrderKey(z)) >= b
        const uint32_t m = a + (z - a) / 2;
        if (binOf(fromOrderKey(m), lo, scale, kSelectBins) >= b)
            z = m;
        else
            a = m + 1;
    }
    return fromOrderKey(z);
}

// The four percentiles of one channel, given its selection histogram in s.chan.
void percentiles(const float* v, Eigen::Index n, float lo, float hi, float scale, Scratch& s, float out[4])
{
    Eigen::Index ranks[8];
    double fracs[4];
    for (int i = 0; i < 4; ++i) {
        const double pos = kQuantiles[i] * double(n - 1);
        ranks[2 * i] = static_cast<Eigen::Index>(std::floor(pos));
        fracs[i] = pos - double(ranks[2 * i]);
        ranks[2 * i + 1] = std::min<Eigen::Index>(ranks[2 * i] + 1, n - 1);
    }
    // Bin of each rank, and how many values lie in lower bins.
    int bin[8];
    int64_t below[8];
    std::fill(s.slotOfBin.begin(), s.slotOfBin.end(), int8_t(-1));
    int slots = 0;
    int64_t cum = 0;
    int r = 0;
    for (int b = 0; b < kSelectBins; ++b) { // reads every bin, leaving the histogram zeroed
        const int64_t next = cum + s.chan[b];
        while (r < 8 && ranks[r] < next) {
            bin[r] = b;
            below[r] = cum;
            if (s.slotOfBin[b] < 0) {
                s.slotOfBin[b] = int8_t(slots);
                s.gathered[slots].clear();
                s.gathered[slots].reserve(size_t(s.chan[b]));
                ++slots;
            }
            ++r;
        }
        s.chan[b] = 0;
        cum = next;
    }
    // The gather pass tests values against the value ranges of the wanted bins, 16 at a time
    // (vectorised), and bins exactly only the rare blocks that hold a candidate.
    float rangeLo[8], rangeHi[8];
    int ranges = 0;
    for (int b = 0; b < kSelectBins; ++b) {
        if (s.slotOfBin[b] < 0) continue;
        const float from = firstValueOfBin(b, lo, hi, scale), to = firstValueOfBin(b + 1, lo, hi, scale);
        if (ranges > 0 && rangeHi[ranges - 1] == from)
            rangeHi[ranges - 1] = to;
        else
            rangeLo[ranges] = from, rangeHi[ranges] = to, ++ranges;
    }
    for (Eigen::Index t0 = 0; t0 < n; t0 += 16) {
        const Eigen::Index len = std::min<Eigen::Index>(16, n - t0);
        const float* x = v + t0;
        int any = 0;
        for (int k = 0; k < ranges; ++k) {
            const float a = rangeLo[k], z = rangeHi[k];
#pragma omp simd reduction(| : any)
            for (Eigen::Index t = 0; t < len; ++t) any |= int(x[t] >= a) & int(x[t] < z);
        }
        if (!any) continue;
        for (Eigen::Index t = 0; t < len; ++t) {
            const int slot = s.slotOfBin[binOf(x[t], lo, scale, kSelectBins)];
            if (slot >= 0) s.gathered[slot].push_back(x[t]);
        }
    }
    float at[8];
    for (int i = 0; i < 8; ++i) {
        std::vector<float>& g = s.gathered[s.slotOfBin[bin[i]]];
        const auto k = static_cast<std::ptrdiff_t>(ranks[i] - below[i]);
        std::nth_element(g.begin(), g.begin() + k, g.end());
        at[i] = g[size_t(k)];
    }
    for (int i = 0; i < 4; ++i)
        out[i] = static_cast<float>(at[2 * i] + fracs[i] * (double(at[2 * i + 1]) - double(at[2 * i])));
}

float rangeScale(float lo, float hi, int bins)
{
    return hi > lo ? float(bins / (double(hi) - double(lo))) : 0.f;
}

// Σ x xᵀ over the rows of x (tokens × channels). Products in float over short strips of tokens
// (short strips bound the rounding of entries whose terms cancel), sums in double. The lower
// triangle is cut into tiles computed in parallel, each a single-threaded GEMM: half a full
// product's work, on every core.
Eigen::MatrixXd hessianOf(const Eigen::MatrixXf& x)
{
    constexpr Eigen::Index kHessianStrip = 512, kTile = 192;
    const Eigen::Index n = x.rows(), c = x.cols();
    Eigen::MatrixXd h = Eigen::MatrixXd::Zero(c, c);
    std::vector<std::pair<Eigen::Index, Eigen::Index>> tiles;
    for (Eigen::Index i = 0; i < c; i += kTile)
        for (Eigen::Index j = 0; j <= i; j += kTile) tiles.emplace_back(i, j);
#pragma omp parallel
    {
        Eigen::MatrixXf part;
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < tiles.size(); ++k) {
            const auto [i0, j0] = tiles[k];
            const Eigen::Index ni = std::min(kTile, c - i0), nj = std::min(kTile, c - j0);
            for (Eigen::Index t0 = 0; t0 < n; t0 += kHessianStrip) {
                const Eigen::Index len = std::min(kHessianStrip, n - t0);
                part.noalias() = x.block(t0, i0, len, ni).transpose() * x.block(t0, j0, len, nj);
                h.block(i0, j0, ni, nj) += part.cast<double>();
            }
        }
    }
    for (Eigen::Index j = 0; j < c; ++j)
        for (Eigen::Index i = j + 1; i < c; ++i) h(j, i) = h(i, j);
    return h;
}

} // namespace

void SiteAccumulator::start(Eigen::Index channels, int64_t tokens)
{
    if (m_values.rows() != tokens || m_values.cols() != channels) m_values.resize(tokens, channels);
    m_min.setConstant(channels, INFINITY);
    m_max.setConstant(channels, -INFINITY);
    m_tokenAbsmax.assign(size_t(tokens), 0.f);
    m_active = true;
}

void SiteAccumulator::add(int64_t offset, const Eigen::Ref<const Eigen::MatrixXf>& chunk)
{
    const Eigen::Index c = chunk.rows(), len = chunk.cols();
    float* mn = m_min.data();
    float* mx = m_max.data();
    for (Eigen::Index t = 0; t < len; ++t) {
        const float* col = chunk.data() + t * chunk.outerStride();
        float am = 0;
#pragma omp simd reduction(max : am)
        for (Eigen::Index ch = 0; ch < c; ++ch) {
            mn[ch] = std::min(mn[ch], col[ch]);
            mx[ch] = std::max(mx[ch], col[ch]);
            am = std::max(am, std::abs(col[ch]));
        }
        m_tokenAbsmax[size_t(offset + t)] = am;
    }
    // Transposed copy in 16-channel × 64-token tiles: each source cache line (16 floats of one
    // token) is used whole, and each destination write is a 256-byte run of one channel.
    const Eigen::Index stride = chunk.outerStride();
    const float* src = chunk.data();
#pragma omp parallel for schedule(static)
    for (Eigen::Index c0 = 0; c0 < c; c0 += 16)
        for (Eigen::Index t0 = 0; t0 < len; t0 += 64) {
            const Eigen::Index cn = std::min<Eigen::Index>(16, c - c0), tn = std::min<Eigen::Index>(64, len - t0);
            for (Eigen::Index ch = c0; ch < c0 + cn; ++ch) {
                float* dst = m_values.col(ch).data() + offset + t0;
                const float* s = src + t0 * stride + ch;
                for (Eigen::Index t = 0; t < tn; ++t) dst[t] = s[t * stride];
            }
        }
}

SiteStats SiteAccumulator::finish(const std::string& name, int layer, const StatsOptions& opt)
{
    m_active = false;
    SiteStats s;
    s.name = name;
    s.layer = layer;
    s.outlierThreshold = opt.outlierThreshold;
    const Eigen::Index n = m_values.rows(), c = m_values.cols();
    s.nTokens = n;
    s.tokenAbsmax = m_tokenAbsmax;
    s.min = m_min;
    s.max = m_max;
    s.absmax = m_min.cwiseAbs().cwiseMax(m_max.cwiseAbs());
    for (Eigen::VectorXf* v : {&s.mean, &s.var, &s.kurtosis, &s.p01, &s.p25, &s.p75, &s.p99, &s.meanAbs}) v->resize(c);
    const int bins = std::max(1, opt.histogramBins);
    const float siteLo = c ? m_min.minCoeff() : 0.f, siteHi = c ? m_max.maxCoeff() : 0.f;
    const float siteScale = rangeScale(siteLo, siteHi, bins);
    std::vector<ChannelMoments> mom(static_cast<size_t>(c));
    std::vector<int64_t> counts(size_t(bins), 0);
    if (n > 0) {
#pragma omp parallel
        {
            Scratch scratch;
            scratch.chan.resize(2 * kSelectBins);
            scratch.site.resize(2 * size_t(bins));
            scratch.ib.resize(kStrip);
            scratch.is.resize(kStrip);
            scratch.slotOfBin.resize(kSelectBins);
            scratch.gathered.resize(8);
            scratch.siteTotal.assign(size_t(bins), 0);
#pragma omp for schedule(dynamic, 4) nowait
            for (Eigen::Index j = 0; j < c; ++j) {
                const float* v = m_values.col(j).data();
                const ChannelMoments m = moments(v, n);
                mom[size_t(j)] = m;
                const double c2 = m.m2 / double(n), c4 = m.m4 / double(n);
                s.mean[j] = float(m.mean);
                s.var[j] = float(c2);
                s.meanAbs[j] = float(m.meanAbs);
                s.kurtosis[j] = c2 > 0 ? float(c4 / (c2 * c2) - 3.0) : 0.f;
                const float scale = rangeScale(m_min[j], m_max[j], kSelectBins);
                binChannel(v, n, m_min[j], scale, siteLo, siteScale, bins, scratch);
                float p[4];
                percentiles(v, n, m_min[j], m_max[j], scale, scratch, p);
                s.p01[j] = p[0], s.p25[j] = p[1], s.p75[j] = p[2], s.p99[j] = p[3];
            }
#pragma omp critical
            for (int b = 0; b < bins; ++b) counts[size_t(b)] += scratch.siteTotal[size_t(b)];
        }
    }
    s.absmaxSite = c ? s.absmax.maxCoeff() : 0.0;

    // Energy entropy (llama.cpp imatrix): p_c ∝ E[x_c²] = var_c + mean_c².
    double etot = 0;
    std::vector<double> energy(static_cast<size_t>(c));
    for (Eigen::Index j = 0; j < c; ++j) {
        const auto& m = mom[size_t(j)];
        energy[size_t(j)] = n ? m.m2 / double(n) + m.mean * m.mean : 0.0;
        etot += energy[size_t(j)];
    }
    s.energyEntropyBits = 0;
    for (double e : energy)
        if (e > 0) s.energyEntropyBits -= e / etot * std::log2(e / etot);

    // Site-wide moments of all values pooled, from the channels' central sums:
    // Σ(x-g)² = M2 + nδ², Σ(x-g)⁴ = M4 + 4δM3 + 6δ²M2 + nδ⁴ with δ = mean_c - g.
    const double total = double(n) * double(c);
    double gmean = 0;
    for (const auto& m : mom) gmean += m.mean;
    gmean = c ? gmean / double(c) : 0.0;
    double g2 = 0, g4 = 0;
    for (const auto& m : mom) {
        const double d = m.mean - gmean, d2 = d * d;
        g2 += m.m2 + double(n) * d2;
        g4 += m.m4 + 4 * d * m.m3 + 6 * d2 * m.m2 + double(n) * d2 * d2;
    }
    if (total > 0) g2 /= total, g4 /= total;
    s.kurtosisSite = g2 > 0 ? g4 / (g2 * g2) - 3.0 : 0.0;

    // Value histogram on uniform bins over the site's [min, max]; its Shannon entropy is the value entropy.
    s.histEdges.resize(size_t(bins) + 1);
    for (int b = 0; b <= bins; ++b) s.histEdges[size_t(b)] = siteLo + (siteHi - siteLo) * float(b) / float(bins);
    s.histCounts.assign(size_t(bins), 0.0);
    s.valueEntropyBits = 0;
    for (int b = 0; b < bins; ++b) {
        s.histCounts[size_t(b)] = double(counts[size_t(b)]);
        if (counts[size_t(b)]) {
            const double p = double(counts[size_t(b)]) / total;
            s.valueEntropyBits -= p * std::log2(p);
        }
    }

    // Outlier channels: absmax above threshold × the median channel absmax.
    if (c) {
        std::vector<float> a(s.absmax.data(), s.absmax.data() + c);
        std::nth_element(a.begin(), a.begin() + c / 2, a.end());
        double median = a[size_t(c / 2)];
        if (c % 2 == 0) median = 0.5 * (median + *std::max_element(a.begin(), a.begin() + c / 2));
        for (Eigen::Index j = 0; j < c; ++j)
            if (median > 0 && s.absmax[j] / median > opt.outlierThreshold) s.outlierChannels.push_back(int32_t(j));
    }

    if (opt.hessian) s.hessian = hessianOf(m_values);
    return s;
}

} // namespace ql::detail
