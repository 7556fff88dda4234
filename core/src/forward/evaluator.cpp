#include "quantlens/forward/evaluator.h"
#include "quantlens/base/threadscope.h"

#include "quantlens/forward/forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ql {

const char* protocolName(PplProtocol p)
{
    return p == PplProtocol::LlamaCpp ? "llamacpp" : "paper";
}

Expected<std::vector<EvalWindow>> makeWindows(const std::vector<int32_t>& tokens, int bos, const EvalOptions& opt)
{
    if (opt.ctx < 2) return makeError("context length must be at least 2, got " + std::to_string(opt.ctx));
    if (opt.chunks == 0) return makeError("--chunks must be positive (or -1 for all)");
    std::vector<int32_t> stream;
    const bool llama = opt.protocol == PplProtocol::LlamaCpp;
    // llama.cpp tokenizes the whole text with BOS first, then overwrites each window's first token with BOS.
    if (llama && bos >= 0) stream.push_back(bos);
    stream.insert(stream.end(), tokens.begin(), tokens.end());
    const size_t ctx = static_cast<size_t>(opt.ctx);
    size_t n = stream.size() / ctx;
    if (n == 0)
        return makeError("the evaluation text has " + std::to_string(tokens.size()) +
                         " tokens, fewer than one window of " + std::to_string(opt.ctx));
    if (opt.chunks > 0) n = std::min(n, static_cast<size_t>(opt.chunks));
    std::vector<EvalWindow> windows(n);
    for (size_t i = 0; i < n; ++i) {
        windows[i].tokens.assign(stream.begin() + i * ctx, stream.begin() + (i + 1) * ctx);
        if (llama && bos >= 0) windows[i].tokens[0] = bos;
        windows[i].firstScored = llama ? opt.ctx / 2 : 0;
    }
    return windows;
}

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

int batchSize(const EvalOptions& opt, int hidden, int vocab, int scored, bool keepLogits, size_t windows)
{
    const double perWindow = double(opt.ctx) * hidden * 4.0 + (keepLogits ? double(scored) * vocab * 4.0 : 0.0);
    const int b = static_cast<int>(std::max(1.0, double(opt.maxBatchBytes) / perWindow));
    return std::min<int>(b, static_cast<int>(windows));
}

// Σ x and Σ x·y of floats, in double. Sixteen running sums the compiler keeps in vector
// registers: Eigen's cast-and-sum converts element by element, four times slower, and a
// vocabulary-sized column is summed twice per scored token.
double sumAsDouble(const float* x, Eigen::Index n)
{
    double a[16] = {};
    Eigen::Index i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) a[j] += double(x[i + j]);
    for (int j = 0; i < n; ++i, ++j) a[j] += double(x[i]);
    double s = 0;
    for (double v : a) s += v;
    return s;
}

double dotAsDouble(const float* x, const float* y, Eigen::Index n)
{
    double a[16] = {};
    Eigen::Index i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) a[j] += double(x[i + j]) * double(y[i + j]);
    for (int j = 0; i < n; ++i, ++j) a[j] += double(x[i]) * double(y[i]);
    double s = 0;
    for (double v : a) s += v;
    return s;
}

// log Σ exp(z) of a column, the exponentials in float and the sum in double; *argmax the first
// largest entry. The exponentials go to a float array first: with a cast in the same expression
// Eigen falls back to scalar expf, several times slower. The array is kept per thread: a
// vocabulary-sized allocation per column costs page faults.
double logSumExp(const Eigen::Ref<const Eigen::VectorXf>& z, Eigen::Index* argmax)
{
    const float mx = z.maxCoeff(); // vectorised, unlike maxCoeff(&index)
    *argmax = std::find(z.data(), z.data() + z.size(), mx) - z.data();
    thread_local Eigen::ArrayXf e;
    e = (z.array() - mx).exp();
    return double(mx) + std::log(sumAsDouble(e.data(), e.size()));
}

// −log softmax(z)[next token] at each scored position of a window whose logits start at `first`.
Eigen::VectorXd nextTokenNll(const Eigen::MatrixXf& logits, const std::vector<int32_t>& w, int first)
{
    const Eigen::Index n = std::min<Eigen::Index>(logits.cols(), Eigen::Index(w.size()) - first - 1);
    Eigen::VectorXd nll(std::max<Eigen::Index>(n, 0));
#pragma omp parallel for schedule(static)
    for (Eigen::Index c = 0; c < n; ++c) {
        Eigen::Index top;
        nll(c) = logSumExp(logits.col(c), &top) - double(logits(w[size_t(first + c + 1)], c));
    }
    return nll;
}

} // namespace

double evaluationFlops(const ModelConfig& config, const EvalOptions& opt, int64_t windows)
{
    // Logits are computed from the first scored position to the window's end (makeWindows).
    const int logits = opt.protocol == PplProtocol::LlamaCpp ? opt.ctx - opt.ctx / 2 : opt.ctx;
    return double(windows) * ForwardEngine::flops(config, opt.ctx, logits);
}

Expected<PplResult> evaluatePerplexity(const ModelConfig& config, const WeightSource& weights,
                                       const std::vector<int32_t>& tokens, int bos, const EvalOptions& opt,
                                       Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    QL_TRY(checkSequenceLength(config, opt.ctx, opt.beyondTrainedPositions, "context"));
    auto windows = makeWindows(tokens, bos, opt);
    if (!windows) return windows.error();
    const auto t0 = Clock::now();
    ForwardEngine engine(config, weights);
    engine.setCacheLmHead(true);
    const int first = (*windows)[0].firstScored;
    const int nWin = static_cast<int>(windows->size());
    const int batch = batchSize(opt, config.hidden, config.vocab, 0, false, windows->size());

    PplResult r;
    r.protocol = opt.protocol;
    r.ctx = opt.ctx;
    r.chunks = nWin;
    double sum = 0, sumSq = 0;
    for (int b0 = 0; b0 < nWin; b0 += batch) {
        const int nb = std::min(batch, nWin - b0);
        std::vector<std::vector<int32_t>> seqs;
        for (int i = 0; i < nb; ++i) seqs.push_back((*windows)[b0 + i].tokens);
        SubFeedback sub(fb, double(b0) / nWin, double(nb) / nWin);
        ForwardOptions fo;
        fo.threads = opt.threads;
        fo.logitsFrom = first;
        fo.runtime = opt.runtime;
        auto sink = [&](int s, const Eigen::MatrixXf& logits) -> Expected<void> {
            const auto& w = (*windows)[b0 + s].tokens;
            const Eigen::VectorXd nlls = nextTokenNll(logits, w, first);
            double wsum = 0;
            int64_t count = 0;
            for (const double nll : nlls) {
                wsum += nll;
                sumSq += nll * nll;
                ++count;
            }
            sum += wsum;
            r.tokensScored += count;
            r.chunkPpl.push_back(std::exp(wsum / double(count)));
            return {};
        };
        QL_TRY(engine.run(seqs, sink, fo, &sub));
        r.tokensProcessed += int64_t(nb) * opt.ctx;
        if (fb)
            fb->message("[" + std::to_string(b0 + nb) + "/" + std::to_string(nWin) + "] ppl so far " +
                        std::to_string(std::exp(sum / double(r.tokensScored))));
    }
    const double n = double(r.tokensScored);
    r.meanNll = sum / n;
    r.ppl = std::exp(r.meanNll);
    const double var = std::max(0.0, sumSq / n - r.meanNll * r.meanNll);
    r.nllStdErr = n > 1 ? std::sqrt(var / (n - 1)) : 0.0;
    r.seconds = secondsSince(t0);
    return r;
}

KlReference KlReference::fromLogits(const Eigen::MatrixXf& logits, int scored, const std::vector<int32_t>& w, int first)
{
    KlReference r;
    r.p.resize(logits.rows(), scored);
    r.pLogP.resize(scored);
    r.pSum.resize(scored);
    r.nll.resize(scored);
    r.argmax.resize(size_t(scored));
#pragma omp parallel for schedule(static)
    for (Eigen::Index c = 0; c < scored; ++c) {
        const auto z = logits.col(c);
        const double lse = logSumExp(z, &r.argmax[size_t(c)]);
        auto p = r.p.col(c);
        p = (z.array() - float(lse)).exp().matrix();
        r.pSum(c) = sumAsDouble(p.data(), p.size());
        r.pLogP(c) = dotAsDouble(p.data(), z.data(), z.size()) - lse * r.pSum(c); // Σ p·(z − lse)
        r.nll(c) = lse - double(z(w[size_t(first + c + 1)]));
    }
    return r;
}

void KlAccumulator::add(const KlReference& ref, const Eigen::MatrixXf& logits, const std::vector<int32_t>& w, int first)
{
    const Eigen::Index n = ref.p.cols();
    Eigen::VectorXd kl(n), nll(n);
    std::vector<char> same(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
    for (Eigen::Index c = 0; c < n; ++c) {
        const auto z = logits.col(c);
        Eigen::Index top;
        const double lse = logSumExp(z, &top);
        const double pz = dotAsDouble(ref.p.col(c).data(), z.data(), z.size());
        kl(c) = ref.pLogP(c) - pz + lse * ref.pSum(c);
        nll(c) = lse - double(z(w[size_t(first + c + 1)]));
        same[size_t(c)] = top == ref.argmax[size_t(c)];
    }
    for (Eigen::Index c = 0; c < n; ++c) { // in order: the sums do not depend on the threads
        klSum += kl(c);
        maxKl = std::max(maxKl, kl(c));
        agree += same[size_t(c)];
        nllRef += ref.nll(c);
        nllModel += nll(c);
    }
    tokens += n;
}

KlResult KlAccumulator::result() const
{
    KlResult r;
    const double n = double(tokens);
    r.tokensScored = tokens;
    r.maxKl = maxKl;
    r.meanKl = klSum / n;
    r.top1Agreement = double(agree) / n;
    r.pplRef = std::exp(nllRef / n);
    r.pplModel = std::exp(nllModel / n);
    return r;
}

Expected<KlResult> evaluateKl(const ModelConfig& refConfig, const WeightSource& reference, const ModelConfig& config,
                              const WeightSource& model, const std::vector<int32_t>& tokens, int bos,
                              const EvalOptions& opt, Feedback* fb)
{
    const ThreadScope threadScope(opt.threads);
    if (refConfig.vocab != config.vocab)
        return makeError("KL needs the same vocabulary: reference has " + std::to_string(refConfig.vocab) +
                         " tokens, model has " + std::to_string(config.vocab));
    QL_TRY(checkSequenceLength(config, opt.ctx, opt.beyondTrainedPositions, "context"));
    QL_TRY(checkSequenceLength(refConfig, opt.ctx, opt.beyondTrainedPositions, "context"));
    auto windows = makeWindows(tokens, bos, opt);
    if (!windows) return windows.error();
    const auto t0 = Clock::now();
    ForwardEngine refEngine(refConfig, reference), engine(config, model);
    refEngine.setCacheLmHead(true);
    engine.setCacheLmHead(true);
    const int first = (*windows)[0].firstScored;
    const int scored = opt.ctx - 1 - first;
    const int nWin = static_cast<int>(windows->size());
    const int batch = batchSize(opt, std::max(config.hidden, refConfig.hidden), config.vocab, scored, true,
                                windows->size());

    KlAccumulator acc;
    std::vector<KlReference> refs(batch);
    ForwardOptions fo;
    fo.threads = opt.threads;
    fo.logitsFrom = first;
    ForwardOptions modelFo = fo;
    modelFo.runtime = opt.runtime;
    for (int b0 = 0; b0 < nWin; b0 += batch) {
        const int nb = std::min(batch, nWin - b0);
        std::vector<std::vector<int32_t>> seqs;
        for (int i = 0; i < nb; ++i) seqs.push_back((*windows)[b0 + i].tokens);
        SubFeedback subRef(fb, double(b0) / nWin, 0.5 * nb / nWin);
        QL_TRY(refEngine.run(
            seqs,
            [&](int s, const Eigen::MatrixXf& l) -> Expected<void> {
                refs[size_t(s)] = KlReference::fromLogits(l, scored, (*windows)[b0 + s].tokens, first);
                return {};
            },
            fo, &subRef));
        SubFeedback sub(fb, (b0 + 0.5 * nb) / nWin, 0.5 * nb / nWin);
        QL_TRY(engine.run(
            seqs,
            [&](int s, const Eigen::MatrixXf& l) -> Expected<void> {
                acc.add(refs[size_t(s)], l, (*windows)[b0 + s].tokens, first);
                return {};
            },
            modelFo, &sub));
    }
    KlResult r = acc.result();
    r.chunks = nWin;
    r.seconds = secondsSince(t0);
    return r;
}

} // namespace ql
