#pragma once
// A straightforward float64 LLaMA forward (loops only, one token at a time, full causal
// softmax) over the fixture generator's own weight values: the independent reference the
// forward-pass and evaluator tests compare against.
#include "fixturemodel.h"
#include "quantlens/model/safetensors.h"

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace qltest {

using Vec = std::vector<double>;

/// The inputs of the linears of every block, per token: "layers.<i>.attn_in|o_in|mlp_in|down_in"
/// -> [token][channel].
using SiteInputs = std::map<std::string, std::vector<Vec>>;

// Straightforward float64 LLaMA forward: loops only, one token at a time, full causal softmax.
// `window` > 0 limits attention to the last `window` positions; a non-null `sites` receives the
// input of every linear (attn_in, o_in, mlp_in, down_in of each block, one Vec per token).
inline std::vector<Vec> naiveLogits(const qlfix::ModelSpec& s, const std::vector<qlfix::Tensor>& tensors,
                                    const std::vector<int32_t>& ids, int window = 0, SiteInputs* sites = nullptr)
{
    auto record = [&](int layer, const char* site, const Vec& in) {
        if (sites) (*sites)["layers." + std::to_string(layer) + "." + site].push_back(in);
    };
    std::map<std::string, const qlfix::Tensor*> W;
    for (const auto& t : tensors) W[t.name] = &t;
    auto val = [&](const std::string& n, size_t i) -> double {
        const auto& t = *W.at(n);
        float v = t.data[i];
        if (t.dtype == "BF16") { // the stored value is the bf16-rounded one
            uint32_t b = uint32_t(ql::floatToBf16(v)) << 16;
            std::memcpy(&v, &b, 4);
        }
        return v;
    };
    auto matvec = [&](const std::string& n, const Vec& x, int out) {
        Vec y(out, 0.0);
        const size_t in = x.size();
        for (int o = 0; o < out; ++o)
            for (size_t i = 0; i < in; ++i) y[o] += val(n + ".weight", o * in + i) * x[i];
        if (W.count(n + ".bias"))
            for (int o = 0; o < out; ++o) y[o] += val(n + ".bias", o);
        return y;
    };
    auto norm = [&](const Vec& x, const std::string& n) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double r = 1.0 / std::sqrt(ss / x.size() + s.rmsEps);
        Vec y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = val(n, i) * x[i] * r;
        return y;
    };
    const int T = int(ids.size()), H = s.hidden, hd = s.hidden / s.heads, half = hd / 2;
    auto rope = [&](Vec& v, int heads, int pos) {
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < half; ++i) {
                const double f = std::pow(s.ropeTheta, -2.0 * i / hd) * pos;
                const double a = v[h * hd + i], b = v[h * hd + i + half];
                v[h * hd + i] = a * std::cos(f) - b * std::sin(f);
                v[h * hd + i + half] = b * std::cos(f) + a * std::sin(f);
            }
    };
    std::vector<Vec> x(T, Vec(H));
    for (int t = 0; t < T; ++t)
        for (int i = 0; i < H; ++i) x[t][i] = val("model.embed_tokens.weight", size_t(ids[t]) * H + i);
    for (int L = 0; L < s.layers; ++L) {
        const std::string p = "model.layers." + std::to_string(L) + ".";
        std::vector<Vec> q(T), k(T), v(T);
        for (int t = 0; t < T; ++t) {
            const Vec h = norm(x[t], p + "input_layernorm.weight");
            record(L, "attn_in", h);
            q[t] = matvec(p + "self_attn.q_proj", h, s.heads * hd);
            k[t] = matvec(p + "self_attn.k_proj", h, s.kvHeads * hd);
            v[t] = matvec(p + "self_attn.v_proj", h, s.kvHeads * hd);
            rope(q[t], s.heads, t);
            rope(k[t], s.kvHeads, t);
        }
        for (int t = 0; t < T; ++t) {
            Vec attn(s.heads * hd, 0.0);
            for (int h = 0; h < s.heads; ++h) {
                const int kh = h / (s.heads / s.kvHeads);
                const int lo = window > 0 ? std::max(0, t - window + 1) : 0;
                Vec sc(t + 1, -1e300);
                double mx = -1e300;
                for (int u = lo; u <= t; ++u) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[u][kh * hd + i];
                    sc[u] = d / std::sqrt(double(hd));
                    mx = std::max(mx, sc[u]);
                }
                double sum = 0;
                for (int u = lo; u <= t; ++u) sum += std::exp(sc[u] - mx);
                for (int u = lo; u <= t; ++u)
                    for (int i = 0; i < hd; ++i) attn[h * hd + i] += std::exp(sc[u] - mx) / sum * v[u][kh * hd + i];
            }
            record(L, "o_in", attn);
            const Vec o = matvec(p + "self_attn.o_proj", attn, H);
            for (int i = 0; i < H; ++i) x[t][i] += o[i];
            const Vec h2 = norm(x[t], p + "post_attention_layernorm.weight");
            record(L, "mlp_in", h2);
            const Vec g = matvec(p + "mlp.gate_proj", h2, s.intermediate);
            const Vec u = matvec(p + "mlp.up_proj", h2, s.intermediate);
            Vec a(s.intermediate);
            for (int i = 0; i < s.intermediate; ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
            record(L, "down_in", a);
            const Vec d = matvec(p + "mlp.down_proj", a, H);
            for (int i = 0; i < H; ++i) x[t][i] += d[i];
        }
    }
    const std::string head = s.tieEmbeddings ? "model.embed_tokens" : "lm_head";
    std::vector<Vec> logits(T);
    for (int t = 0; t < T; ++t) logits[t] = matvec(head, norm(x[t], "model.norm.weight"), s.vocab);
    return logits;
}

} // namespace qltest
