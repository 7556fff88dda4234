#include "quantlens/methods/pbllm.h"

#include "methods/gptqengine.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ql {

Expected<PbllmResult> pbllmQuantize(Eigen::Ref<const RowMatrix> w, const Eigen::MatrixXd& hessian,
                                    const PbllmOptions& opt)
{
    using detail::RowMat;
    if (!(opt.salientFraction >= 0 && opt.salientFraction <= 1))
        return makeError("salient fraction " + std::to_string(opt.salientFraction) +
                         "; expected a share in [0, 1] (0.1 is usual)");
    if (opt.blockSize < 1)
        return makeError("PB-LLM block size " + std::to_string(opt.blockSize) +
                         "; expected at least 1 column (128 is usual)");
    if (opt.salientBits < 2 || opt.salientBits > 8)
        return makeError("salient bits " + std::to_string(opt.salientBits) + "; expected 2 to 8");
    auto salientId = intFormatId(opt.salientBits, false);
    if (!salientId) return salientId.error();
    auto binT = QuantizedTensor::create(w.rows(), w.cols(), FormatSpec{"binary", Granularity::PerGroup, opt.blockSize});
    if (!binT) return binT.error();
    auto salT = QuantizedTensor::create(w.rows(), w.cols(),
                                        FormatSpec{*salientId, Granularity::PerGroup, opt.blockSize});
    if (!salT) return salT.error();
    const Eigen::Index rows = w.rows(), cols = w.cols(), block = opt.blockSize;
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index c = 0; c < cols; ++c)
            if (!std::isfinite(w(r, c)))
                return makeError("weight element (" + std::to_string(r) + ", " + std::to_string(c) + ") is " +
                                 std::to_string(w(r, c)) + "; expected finite weights");
    auto ph = detail::prepareHessian(hessian, cols, opt.damp, false);
    if (!ph) return ph.error();

    RowMat<float> wp = w;
    for (Eigen::Index j = 0; j < cols; ++j)
        if (ph->dead[size_t(j)]) wp.col(j).setZero();
    const RowMat<float> u = ph->factor<float>();
    const WeightFormat& fb = binT->format();
    const WeightFormat& fs = salT->format();
    const int groups = binT->groups();
    const GroupParams bin0 = defaultParams(fb), sal0 = defaultParams(fs);
    Eigen::MatrixXf binScale = Eigen::MatrixXf::Constant(rows, groups, bin0.scale);
    Eigen::MatrixXf binZero = Eigen::MatrixXf::Constant(rows, groups, bin0.zero);
    Eigen::MatrixXf salScale = Eigen::MatrixXf::Constant(rows, groups, sal0.scale);
    Eigen::MatrixXf salZero = Eigen::MatrixXf::Constant(rows, groups, sal0.zero);
    std::vector<uint8_t> mask(size_t(rows * cols), 0), codes(size_t(rows * cols), 0);
    std::string failure;
    auto fail = [&](const std::string& what) {
#pragma omp critical(ql_pbllm_failure)
        if (failure.empty()) failure = what;
    };

    // Entering a block: choose its salient set from the current (compensated) weights, as the
    // reference's adaptive mask does, then the parameters of both parts per row.
    std::vector<float> score;
    std::vector<int64_t> order;
    auto begin = [&](Eigen::Index i1, Eigen::Index i2) {
        const Eigen::Index count = i2 - i1, n = rows * count;
        const int k = int(i1 / block);
        const int64_t nSalient = std::llround(opt.salientFraction * double(n));
        score.resize(size_t(n));
        for (Eigen::Index r = 0; r < rows; ++r)
            for (Eigen::Index c = 0; c < count; ++c) {
                const float v = wp(r, i1 + c), d = u(i1 + c, i1 + c);
                const float s = opt.criterion == PbllmCriterion::Magnitude ? std::abs(v) : v * v / (d * d);
                if (!std::isfinite(s)) {
                    fail("non-finite weight in columns " + std::to_string(i1) + ".." + std::to_string(i2 - 1) +
                         " during compensation; the Hessian is ill-conditioned, increase the dampening");
                    return;
                }
                score[size_t(r * count + c)] = s;
            }
        order.resize(size_t(n));
        std::iota(order.begin(), order.end(), int64_t(0));
        // Highest score first, ties by position, so the set does not depend on the library's sort.
        auto before = [&](int64_t a, int64_t b) {
            return score[size_t(a)] > score[size_t(b)] || (score[size_t(a)] == score[size_t(b)] && a < b);
        };
        if (nSalient > 0 && nSalient < n)
            std::nth_element(order.begin(), order.begin() + nSalient, order.end(), before);
        for (int64_t t = 0; t < nSalient; ++t) {
            const int64_t a = order[size_t(t)];
            mask[size_t((a / count) * cols + i1 + a % count)] = 1;
        }
#pragma omp parallel for schedule(static) if (rows * count >= detail::kParallelWork / 16)
        for (Eigen::Index r = 0; r < rows; ++r) {
            std::vector<float> sal, bin;
            for (Eigen::Index c = i1; c < i2; ++c) (mask[size_t(r * cols + c)] ? sal : bin).push_back(wp(r, c));
            if (!bin.empty()) {
                auto p = computeParams(fb, Eigen::Map<const Eigen::VectorXf>(bin.data(), Eigen::Index(bin.size())));
                if (!p)
                    fail("row " + std::to_string(r) + ", block " + std::to_string(k) + ": " + p.message());
                else {
                    binScale(r, k) = p->scale;
                    binZero(r, k) = p->zero;
                }
            }
            if (!sal.empty()) {
                auto p = computeParams(fs, Eigen::Map<const Eigen::VectorXf>(sal.data(), Eigen::Index(sal.size())));
                if (!p)
                    fail("row " + std::to_string(r) + ", block " + std::to_string(k) + ": " + p.message());
                else {
                    salScale(r, k) = p->scale;
                    salZero(r, k) = p->zero;
                }
            }
        }
    };
    auto step = [&](Eigen::Index r, Eigen::Index p, Eigen::Index, const detail::BlockView<float>& view) -> float {
        const int k = int(p / block);
        const bool isSalient = mask[size_t(r * cols + p)];
        const WeightFormat& f = isSalient ? fs : fb;
        const GroupParams prm = isSalient ? GroupParams{salScale(r, k), salZero(r, k)}
                                          : GroupParams{binScale(r, k), binZero(r, k)};
        const uint32_t code = quantizeValue(f, prm, view.w(r, p));
        codes[size_t(r * cols + p)] = uint8_t(code);
        return dequantizeCode(f, prm, code);
    };
    RowMat<float> q;
    std::vector<double> rowLoss;
    detail::gptqLoop<float>(wp, u, opt.blockSize, begin, step, q, rowLoss);
    if (!failure.empty()) return makeError(failure);
    const double loss = std::accumulate(rowLoss.begin(), rowLoss.end(), 0.0);
    if (!std::isfinite(loss) || !q.allFinite())
        return makeError(
            "PB-LLM produced non-finite values; the Hessian is ill-conditioned, increase the dampening (now " +
            std::to_string(opt.damp) + ")");

    for (Eigen::Index r = 0; r < rows; ++r)
        for (int k = 0; k < groups; ++k) {
            QL_TRY(binT->setParams(r, k, GroupParams{binScale(r, k), binZero(r, k)}));
            QL_TRY(salT->setParams(r, k, GroupParams{salScale(r, k), salZero(r, k)}));
        }
    bool codesOk = true;
#pragma omp parallel for schedule(static) reduction(&& : codesOk) if (rows * cols >= detail::kParallelWork / 4)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index c = 0; c < cols; ++c) {
            const size_t at = size_t(r * cols + c);
            codesOk = (mask[at] ? salT->setCode(r, c, codes[at]) : binT->setCode(r, c, codes[at])).ok() && codesOk;
        }
    if (!codesOk) return makeError("internal error: PB-LLM produced a code the format does not have");

    const int64_t total = int64_t(rows) * int64_t(cols);
    const int64_t nSalient = std::count(mask.begin(), mask.end(), uint8_t(1));
    // Per (row, block): fp16 μ and α, fp16 scale and a zero at the code width for the salient part.
    const double paramBits = double(rows) * groups * (16.0 + 16.0 + 16.0 + opt.salientBits);
    PbllmResult out{GptqResult{std::move(*binT), RowMatrix(q), loss, ph->deadCount},
                    std::move(*salT),
                    std::move(mask),
                    nSalient,
                    0.0,
                    0.0};
    out.bitsPerWeight = (double(nSalient) * opt.salientBits + double(total - nSalient) + paramBits) / double(total);
    out.storedBitsPerWeight = (double(total) + double(nSalient) * (opt.salientBits + 4) + paramBits) / double(total);
    return out;
}

} // namespace ql
