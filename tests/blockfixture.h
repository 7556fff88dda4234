#pragma once
// A decoder block with random weights for the backward-pass tests (tst_grad, tst_omniquant).
#include "quantlens/forward/rotation.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <QtTest>

#include <random>

namespace qltest {

using ql::RowMatrix;

inline RowMatrix randomMatrix(Eigen::Index rows, Eigen::Index cols, float stddev, std::mt19937& rng)
{
    std::normal_distribution<float> d(0.f, stddev);
    RowMatrix m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = d(rng);
    return m;
}

inline ql::ModelConfig blockConfig()
{
    ql::ModelConfig c;
    c.hidden = 64;
    c.intermediate = 96;
    c.heads = 4;
    c.kvHeads = 2;
    c.headDim = 16;
    c.layers = 1;
    c.vocab = 50;
    c.rmsEps = 1e-5f;
    c.qkvBias = true;
    return c;
}

// A block with random weights, q/k/v biases, and with hooks an online rotation of down_proj's
// input and a 6-bit per-token fake quantization of gate's and up's input.
struct FixtureBlock {
    ql::BlockWeights w;
    Eigen::MatrixXf x, dy;
    RowMatrix rotation;
};

inline FixtureBlock makeBlock(const ql::ModelConfig& c, bool hooks, uint32_t seed)
{
    std::mt19937 rng(seed);
    FixtureBlock f;
    const Eigen::Index q = Eigen::Index(c.heads) * c.headDim, kv = Eigen::Index(c.kvHeads) * c.headDim;
    const Eigen::Index shapes[ql::kLinearCount][2] = {{q, c.hidden},
                                                      {kv, c.hidden},
                                                      {kv, c.hidden},
                                                      {c.hidden, q},
                                                      {c.intermediate, c.hidden},
                                                      {c.intermediate, c.hidden},
                                                      {c.hidden, c.intermediate}};
    for (int k = 0; k < ql::kLinearCount; ++k) {
        f.w.storage[size_t(k)] = randomMatrix(shapes[k][0], shapes[k][1], 0.15f, rng);
        f.w.useStorage(ql::LinearKind(k));
        if (k < 3) f.w.bias[size_t(k)] = randomMatrix(shapes[k][0], 1, 0.1f, rng).col(0);
    }
    f.w.attnNorm = Eigen::VectorXf::Ones(c.hidden) + randomMatrix(c.hidden, 1, 0.1f, rng).col(0);
    f.w.mlpNorm = Eigen::VectorXf::Ones(c.hidden) + randomMatrix(c.hidden, 1, 0.1f, rng).col(0);
    const Eigen::Index n = 20;
    f.x = randomMatrix(c.hidden, n, 1.f, rng);
    f.dy = randomMatrix(c.hidden, n, 1.f, rng);
    if (hooks) {
        auto r = ql::HadamardRotation::create(c.intermediate, 7);
        if (!r) qFatal("rotation: %s", r.error().message.c_str());
        f.w.downInputRotation = std::make_shared<const ql::HadamardRotation>(std::move(*r));
        Eigen::MatrixXf eye = Eigen::MatrixXf::Identity(c.intermediate, c.intermediate);
        f.w.downInputRotation->leftMultiply(eye);
        f.rotation = eye;
        for (ql::LinearKind k : {ql::LinearKind::Gate, ql::LinearKind::Up})
            f.w.actQuant[size_t(k)] = ql::ActQuantSpec{6, true, true};
    }
    return f;
}

} // namespace qltest
