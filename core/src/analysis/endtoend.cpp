#include "quantlens/analysis/endtoend.h"

#include "quantlens/forward/forward.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ql {

// A named namespace: EndToEndSensitivity::Impl holds one, and a member's type from an anonymous
// namespace would give Impl internal linkage in a unity batch.
namespace endtoend {

// The model's weights with at most one linear replaced.
class ReplacingSource final : public WeightSource {
public:
    explicit ReplacingSource(const WeightSource& base) : m_base(base) {}

    void replace(int block, LinearKind kind, const RowMatrix* weight)
    {
        m_block = block;
        m_kind = kind;
        m_weight = weight;
    }
    Expected<void> block(int i, BlockWeights& out) const override
    {
        QL_TRY(m_base.block(i, out));
        if (i == m_block && m_weight) {
            out.storage[static_cast<int>(m_kind)] = *m_weight;
            out.useStorage(m_kind);
        }
        return {};
    }
    Expected<void> embed(std::span<const int32_t> ids, Eigen::MatrixXf& out) const override
    {
        return m_base.embed(ids, out);
    }
    Expected<Eigen::VectorXf> finalNorm() const override { return m_base.finalNorm(); }
    Expected<RowMatrix> lmHead() const override { return m_base.lmHead(); }
    Expected<std::optional<ConstRowMap>> lmHeadView() const override { return m_base.lmHeadView(); }

private:
    const WeightSource& m_base;
    int m_block = -1;
    LinearKind m_kind = LinearKind::Q;
    const RowMatrix* m_weight = nullptr;
};

} // namespace endtoend

namespace {

// Column-wise log-sum-exp of logits (vocab × tokens), accumulated in double.
Eigen::VectorXd logSumExp(const Eigen::MatrixXf& logits)
{
    Eigen::VectorXd lse(logits.cols());
#pragma omp parallel for schedule(static)
    for (Eigen::Index t = 0; t < logits.cols(); ++t) {
        const float m = logits.col(t).maxCoeff();
        lse[t] = double(m) + std::log((logits.col(t).array() - m).exp().cast<double>().sum());
    }
    return lse;
}

} // namespace

struct EndToEndSensitivity::Impl {
    Impl(const Model& m, const WeightSource& context) : model(m), source(context), engine(m.config(), source)
    {
        engine.setCacheLmHead(true);
    }

    const Model& model;
    endtoend::ReplacingSource source;
    ForwardEngine engine;
    ForwardOptions options;
    std::vector<std::vector<Eigen::MatrixXf>> inputs; ///< [block][window]: the float input of each block
    std::vector<Eigen::MatrixXf> logProbs;            ///< [window]: float log-probabilities, vocab × tokens
    int64_t tokens = 0;
    double contextKl = 0;
};

EndToEndSensitivity::EndToEndSensitivity(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
EndToEndSensitivity::~EndToEndSensitivity() = default;
EndToEndSensitivity::EndToEndSensitivity(EndToEndSensitivity&&) noexcept = default;

int64_t EndToEndSensitivity::tokens() const
{
    return m_impl->tokens;
}

namespace {

// Σ over a window's tokens of KL(P‖Q) from P's log-probabilities and Q's logits (vocab × tokens).
double windowKl(const Eigen::MatrixXf& logProbs, const Eigen::MatrixXf& logits)
{
    const Eigen::VectorXd lse = logSumExp(logits);
    double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (Eigen::Index t = 0; t < logits.cols(); ++t) {
        // KL(P‖Q) = Σ p (log p - log q), log q = logit - logsumexp.
        const auto p = logProbs.col(t).array().cast<double>();
        const auto q = logits.col(t).array().cast<double>() - lse[t];
        sum += std::max(0.0, (p.exp() * (p - q)).sum());
    }
    return sum;
}

} // namespace

Expected<EndToEndSensitivity> EndToEndSensitivity::prepare(const Model& model,
                                                           const std::vector<std::vector<int32_t>>& windows,
                                                           int threads, Feedback* fb, const WeightSource* context)
{
    if (windows.empty()) return makeError("end-to-end sensitivity needs at least one held-out window");
    auto impl = std::make_unique<Impl>(model, context ? *context : static_cast<const WeightSource&>(model));
    Impl& d = *impl;
    d.options.threads = threads;
    const int layers = model.config().layers;
    d.inputs.assign(size_t(layers), std::vector<Eigen::MatrixXf>(windows.size()));
    d.logProbs.resize(windows.size());
    auto keepInputs = [&d](const Activation& a) {
        const std::string& n = a.name;
        if (a.layer >= 0 && n.size() > 6 && n.compare(n.size() - 6, 6, ".input") == 0)
            d.inputs[size_t(a.layer)][size_t(a.sequence)] = a.x;
    };
    // The float reference; its block inputs are the restarts' unless a context gives its own.
    ForwardEngine reference(model.config(), model);
    if (!context) reference.setObserver(keepInputs);
    QL_TRY(reference.run(
        windows,
        [&d](int s, const Eigen::MatrixXf& logits) -> Expected<void> {
            const Eigen::VectorXd lse = logSumExp(logits);
            Eigen::MatrixXf& lp = d.logProbs[size_t(s)];
            lp.resize(logits.rows(), logits.cols());
            for (Eigen::Index t = 0; t < logits.cols(); ++t)
                lp.col(t) = (logits.col(t).array().cast<double>() - lse[t]).cast<float>();
            d.tokens += logits.cols();
            return {};
        },
        d.options, fb));
    if (context) {
        double klSum = 0;
        d.engine.setObserver(keepInputs);
        QL_TRY(d.engine.run(
            windows,
            [&d, &klSum](int s, const Eigen::MatrixXf& logits) -> Expected<void> {
                klSum += windowKl(d.logProbs[size_t(s)], logits);
                return {};
            },
            d.options, fb));
        d.engine.setObserver(nullptr);
        d.contextKl = klSum / double(d.tokens);
    }
    return EndToEndSensitivity(std::move(impl));
}

double EndToEndSensitivity::contextKl() const
{
    return m_impl->contextKl;
}

Expected<double> EndToEndSensitivity::klWithLinear(int block, LinearKind kind, const RowMatrix& weight, Feedback* fb)
{
    Impl& d = *m_impl;
    if (block < 0 || block >= int(d.inputs.size()))
        return makeError("end-to-end sensitivity: no block " + std::to_string(block));
    std::vector<Eigen::MatrixXf> states = d.inputs[size_t(block)];
    d.source.replace(block, kind, &weight);
    double klSum = 0;
    auto run = d.engine.runFrom(
        block, states,
        [&](int s, const Eigen::MatrixXf& logits) -> Expected<void> {
            klSum += windowKl(d.logProbs[size_t(s)], logits);
            return {};
        },
        d.options, fb);
    d.source.replace(-1, kind, nullptr);
    if (!run) return run.error();
    return klSum / double(d.tokens);
}

namespace {

std::vector<double> averageRanks(const std::vector<double>& v)
{
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> rank(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        const double r = 0.5 * double(i + j) + 1.0; // ties share the mean of their 1-based ranks
        for (size_t k = i; k <= j; ++k) rank[order[k]] = r;
        i = j + 1;
    }
    return rank;
}

} // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b)
{
    if (a.size() != b.size() || a.size() < 2) return NAN;
    const std::vector<double> ra = averageRanks(a), rb = averageRanks(b);
    const double n = double(a.size());
    const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n,
                 mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < ra.size(); ++i) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}

} // namespace ql
