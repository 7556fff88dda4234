#include "quantlens/methods/quarot.h"

#include <algorithm>
#include <memory>
#include <optional>

namespace ql {

namespace {

// Rows or columns handled per double-precision chunk: bounds the temporary memory for large
// embeddings (vocab × hidden) while keeping the transforms' vectors long.
constexpr Eigen::Index kChunk = 2048;

// w ← (w·diag(scale))·R, or w·Rᵀ: every row is a vector the rotation transforms.
void rotateRows(RowMatrix& w, const HadamardRotation& r, bool transposed, const Eigen::VectorXf* scale = nullptr)
{
    for (Eigen::Index r0 = 0; r0 < w.rows(); r0 += kChunk) {
        const Eigen::Index n = std::min(kChunk, w.rows() - r0);
        RowMatrixD d = w.middleRows(r0, n).cast<double>();
        if (scale) d = d * scale->cast<double>().asDiagonal();
        r.rightMultiply(d, transposed);
        w.middleRows(r0, n) = d.cast<float>();
    }
}

// w ← Rᵀ·w: every column is a vector the rotation transforms.
void rotateColumnsTransposed(RowMatrix& w, const HadamardRotation& r)
{
    for (Eigen::Index c0 = 0; c0 < w.cols(); c0 += kChunk) {
        const Eigen::Index n = std::min(kChunk, w.cols() - c0);
        Eigen::MatrixXd d = w.middleCols(c0, n).cast<double>(); // column-major: columns contiguous
        r.leftMultiply(d, true);
        w.middleCols(c0, n) = d.cast<float>();
    }
}

void rotateBiasTransposed(Eigen::VectorXf& b, const HadamardRotation& r)
{
    if (b.size() == 0) return;
    Eigen::MatrixXd d = b.cast<double>();
    r.leftMultiply(d, true);
    b = d.col(0).cast<float>();
}

// v_proj: each kv head's rows ← R_h·rows (and its bias); o_proj: each head's columns ← cols·R_hᵀ.
void rotateValueOutput(BlockWeights& b, const HadamardRotation& rh, int heads, int kvHeads, int headDim)
{
    const int v = static_cast<int>(LinearKind::V), o = static_cast<int>(LinearKind::O);
    Eigen::MatrixXd wv = b.storage[size_t(v)].cast<double>();
    for (int g = 0; g < kvHeads; ++g) rh.leftMultiply(wv.middleRows(Eigen::Index(g) * headDim, headDim));
    b.storage[size_t(v)] = wv.cast<float>();
    if (b.bias[size_t(v)].size()) {
        Eigen::MatrixXd bv = b.bias[size_t(v)].cast<double>();
        for (int g = 0; g < kvHeads; ++g) rh.leftMultiply(bv.middleRows(Eigen::Index(g) * headDim, headDim));
        b.bias[size_t(v)] = bv.col(0).cast<float>();
    }
    RowMatrixD wo = b.storage[size_t(o)].cast<double>();
    for (int h = 0; h < heads; ++h) rh.rightMultiply(wo.middleCols(Eigen::Index(h) * headDim, headDim), true);
    b.storage[size_t(o)] = wo.cast<float>();
}

} // namespace

Expected<RotationReport> hadamardRotate(FloatWeights& weights, const RotationOptions& opt, Feedback* fb)
{
    const ModelConfig& c = weights.config();
    QL_TRY(weights.validate());
    // Everything that can fail is checked before the first weight changes.
    auto q = HadamardRotation::create(c.hidden, opt.seed);
    if (!q) return makeError("hadamard: hidden size: " + q.message());
    std::shared_ptr<const HadamardRotation> rd;
    std::optional<HadamardRotation> rh;
    RotationReport report;
    report.residual = q->construction();
    if (opt.onlineDown) {
        for (int i = 0; i < weights.layers(); ++i)
            if (weights.blockWeights(i).downInputRotation)
                return makeError("hadamard: block " + std::to_string(i) +
                                 " already has an online rotation before down_proj (the model was rotated "
                                 "before); apply again with online_down = false");
        auto r = HadamardRotation::create(c.intermediate, opt.seed ^ 0xD0D0D0D0D0D0D0D0ull);
        if (!r) return makeError("hadamard: intermediate size: " + r.message());
        rd = std::make_shared<const HadamardRotation>(std::move(*r));
        report.down = rd->construction();
    }
    if (opt.rotateOv) {
        auto r = HadamardRotation::create(c.headDim, opt.seed ^ 0x4EAD4EAD4EAD4EADull);
        if (!r) return makeError("hadamard: head dimension: " + r.message());
        rh = std::move(*r);
        report.head = rh->construction();
    }

    for (int i = 0; i < weights.layers(); ++i) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        BlockWeights& b = weights.blockWeights(i);
        auto& st = b.storage;
        auto at = [](LinearKind k) { return size_t(k); };
        for (LinearKind k : {LinearKind::Q, LinearKind::K, LinearKind::V})
            rotateRows(st[at(k)], *q, false, &b.attnNorm);
        b.attnNorm.setOnes();
        if (rh) rotateValueOutput(b, *rh, c.heads, c.kvHeads, c.headDim);
        rotateColumnsTransposed(st[at(LinearKind::O)], *q);
        rotateBiasTransposed(b.bias[at(LinearKind::O)], *q);
        for (LinearKind k : {LinearKind::Gate, LinearKind::Up}) rotateRows(st[at(k)], *q, false, &b.mlpNorm);
        b.mlpNorm.setOnes();
        rotateColumnsTransposed(st[at(LinearKind::Down)], *q);
        rotateBiasTransposed(b.bias[at(LinearKind::Down)], *q);
        if (rd) {
            rotateRows(st[at(LinearKind::Down)], *rd, true); // W·R_dᵀ
            b.downInputRotation = rd;
        }
        if (fb) fb->progress(double(i + 1) / (weights.layers() + 1));
    }

    // The head reads RMSNorm_final(h) = γ_f ⊙ h/rms(h): fold γ_f, then rotate like any reader.
    Eigen::VectorXf& gf = weights.finalNormWeight();
    const bool keepTied = weights.lmHeadTied() && (gf.array() == 1.0f).all();
    if (!keepTied) {
        RowMatrix& head = weights.lmHeadWeight(); // unties from the (still unrotated) embedding
        rotateRows(head, *q, false, &gf);
    }
    rotateRows(weights.embedding(), *q, false);
    gf.setOnes();
    if (fb) fb->progress(1.0);
    return report;
}

std::string HadamardRotationTransform::description() const
{
    return "Hadamard rotation (QuaRot): fold the RMSNorm weights, rotate the residual stream with a random Hadamard "
           "matrix, optionally each attention head's values and, online, the input of down_proj";
}

std::vector<ParamSpec> HadamardRotationTransform::parameters() const
{
    using T = ParamSpec::Type;
    return {
        {.name = "seed",
         .type = T::Int,
         .defaultValue = int64_t(0),
         .max = 4294967295.0,
         .help = "Seed of the random signs (and of random factors for sizes without a Hadamard matrix)"},
        {.name = "online_down",
         .type = T::Bool,
         .defaultValue = true,
         .help = "Rotate the input of down_proj online with a Hadamard matrix (QuaRot's online Hadamard)"},
        {.name = "rotate_ov",
         .type = T::Bool,
         .defaultValue = true,
         .help =
             "Rotate each attention head's values (v_proj outputs, o_proj inputs) with a Hadamard of order head_dim"},
    };
}

Expected<void> HadamardRotationTransform::apply(FloatWeights& weights, const TransformContext& ctx,
                                                const ParamMap& params) const
{
    auto p = completeParams(parameters(), params, id());
    if (!p) return p.error();
    RotationOptions o;
    o.seed = static_cast<uint64_t>(paramInt(*p, "seed"));
    o.onlineDown = paramBool(*p, "online_down");
    o.rotateOv = paramBool(*p, "rotate_ov");
    auto r = hadamardRotate(weights, o, ctx.feedback);
    if (!r) return r.error();
    if (ctx.feedback) {
        std::string m = "hadamard: residual " + r->residual;
        if (!r->head.empty()) m += "; heads " + r->head;
        if (!r->down.empty()) m += "; down_proj input " + r->down;
        ctx.feedback->message(m);
    }
    return {};
}

} // namespace ql
