#pragma once
// Calibration windows of a fixture block and their hand-over to the torch reference: what the
// block-training tests (tst_omniquant, tst_autoround) share.
#include "blockfixture.h"
#include "torchexchange.h"
#include "quantlens/grad/blockgrad.h"

#include <string>
#include <vector>

namespace qltest {

// Windows of a block: float inputs' float outputs (the targets), and inputs as quantized
// earlier blocks would give them (the float ones with a small perturbation).
struct Windows {
    std::vector<Eigen::MatrixXf> quantInputs, targets;
};

inline Windows makeWindows(const ql::ModelConfig& c, const ql::BlockWeights& w, int count, int tokens, uint32_t seed)
{
    std::mt19937 rng(seed);
    Windows out;
    ql::BlockBackward b(c);
    for (int i = 0; i < count; ++i) {
        const Eigen::MatrixXf x = randomMatrix(c.hidden, tokens, 1.f, rng);
        Eigen::MatrixXf y;
        if (!b.forward(w, x, y)) qFatal("forward failed");
        out.targets.push_back(y);
        out.quantInputs.push_back(x + Eigen::MatrixXf(randomMatrix(c.hidden, tokens, 0.05f, rng)));
    }
    return out;
}

// The reference script's names of the seven linears.
inline constexpr const char* kTorchLinearNames[ql::kLinearCount] = {"q", "k", "v", "o", "gate", "up", "down"};

// Hands the block's shape, weights and windows to the reference (the method's own settings are
// added to ex.config() by the caller).
inline void putTrainingBlock(Exchange& ex, const ql::ModelConfig& c, const ql::BlockWeights& w, const Windows& win)
{
    ex.config() = {{"heads", c.heads}, {"kv_heads", c.kvHeads}, {"head_dim", c.headDim},
                   {"eps", c.rmsEps},  {"theta", c.ropeTheta},  {"windows", win.targets.size()}};
    ex.putVector("attn_norm", w.attnNorm);
    ex.putVector("mlp_norm", w.mlpNorm);
    for (int k = 0; k < ql::kLinearCount; ++k) {
        ex.put(kTorchLinearNames[k], w[ql::LinearKind(k)]);
        if (w.bias[size_t(k)].size()) ex.putVector(std::string("b_") + kTorchLinearNames[k], w.bias[size_t(k)]);
    }
    for (size_t i = 0; i < win.targets.size(); ++i) {
        ex.put("x" + std::to_string(i), win.quantInputs[i]);
        ex.put("y" + std::to_string(i), win.targets[i]);
    }
}

} // namespace qltest
