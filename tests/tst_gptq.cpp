// GPTQ and PB-LLM: the blocked implementation against the column-by-column algorithm of
// gptqref.h for every ordering, grouping and block size, with group parameters read as the
// published loop reads them (from the weights at the start of the lazy block) and block-size
// invariantly; GPTQ against RTN on the objective they
// share; PB-LLM's salient set, binarized values, compensation and bit count; errors.
//
// Tolerances: with doublePrecision the library and the reference differ only by double rounding
// (max |ΔQ| / max |W| <= 1e-5 asked; 0 observed, ~1e-7 with the MSE search where a scale may
// differ by one float ulp). The float32 path (the reference's precision) is compared row by
// row: a row agrees to 1e-5, or it took a different rounding decision on a value within float
// error of a code boundary, after which GPTQ's compensation legitimately diverges; at most 1 row
// in 16 may do so. Other tolerances are stated where they are used.
#include "gptqref.h"
#include "quantlens/methods/gptq.h"
#include "quantlens/methods/pbllm.h"

#include <QtTest>

#include <chrono>
#include <cmath>
#include <set>

using gptqref::MatD;
using gptqref::RowF;
using ql::Granularity;

namespace {

MatD deadInputs(MatD x, int dead)
{
    for (int k = 0; k < dead; ++k) x.row((37 * k + 5) % x.rows()).setZero();
    return x;
}

RowF fixtureDownProj()
{
    for (const auto& t : qlfix::makeWeights(qlfix::ModelSpec{}))
        if (t.name == "model.layers.0.mlp.down_proj.weight")
            return Eigen::Map<const RowF>(t.data.data(), t.shape[0], t.shape[1]);
    return {};
}

double maxAbs(const MatD& m)
{
    return m.cwiseAbs().maxCoeff();
}

} // namespace

class TestGptq : public QObject {
    Q_OBJECT

private slots:
    void matchesColumnByColumn_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("sym");
        QTest::addColumn<int>("group"); // > 0 group, 0 per channel, -1 per tensor
        QTest::addColumn<bool>("act");
        QTest::addColumn<bool>("stat");
        QTest::addColumn<bool>("mse");
        QTest::addColumn<int>("block");
        QTest::addColumn<int>("dead");
        QTest::addColumn<bool>("fixture");
        QTest::addColumn<bool>("invariant"); // group parameters from the updated weights, not the block start
        QTest::newRow("int4 asym g32 48x172")
            << 48 << 172 << 4 << false << 32 << false << false << false << 128 << 0 << false << false;
        QTest::newRow("int4 asym g32 48x172 invariant")
            << 48 << 172 << 4 << false << 32 << false << false << false << 128 << 0 << false << true;
        QTest::newRow("int3 sym g64 64x256 b40")
            << 64 << 256 << 3 << true << 64 << false << false << false << 40 << 0 << false << false;
        QTest::newRow("int3 sym g64 64x256 b40 invariant")
            << 64 << 256 << 3 << true << 64 << false << false << false << 40 << 0 << false << true;
        QTest::newRow("int2 g128 partial 48x172 b40")
            << 48 << 172 << 2 << false << 128 << false << false << false << 40 << 0 << false << false;
        QTest::newRow("int2 g128 partial 48x172 b40 invariant")
            << 48 << 172 << 2 << false << 128 << false << false << false << 40 << 0 << false << true;
        QTest::newRow("int4 per-channel 64x256 b40")
            << 64 << 256 << 4 << false << 0 << false << false << false << 40 << 0 << false << false;
        QTest::newRow("int4 per-channel 64x256 b40 invariant")
            << 64 << 256 << 4 << false << 0 << false << false << false << 40 << 0 << false << true;
        QTest::newRow("int4 per-tensor 48x172")
            << 48 << 172 << 4 << false << -1 << false << false << false << 128 << 0 << false << false;
        QTest::newRow("int4 per-tensor 48x172 invariant")
            << 48 << 172 << 4 << false << -1 << false << false << false << 128 << 0 << false << true;
        QTest::newRow("int4 g32 act 64x256 b40")
            << 64 << 256 << 4 << false << 32 << true << false << false << 40 << 0 << false << false;
        QTest::newRow("int4 g32 act 64x256 b40 invariant")
            << 64 << 256 << 4 << false << 32 << true << false << false << 40 << 0 << false << true;
        QTest::newRow("int4 g32 act static 64x256 b40")
            << 64 << 256 << 4 << false << 32 << true << true << false << 40 << 0 << false << false;
        QTest::newRow("int4 g32 act static 64x256 b40 invariant")
            << 64 << 256 << 4 << false << 32 << true << true << false << 40 << 0 << false << true;
        QTest::newRow("int3 g64 act partial 48x172")
            << 48 << 172 << 3 << false << 64 << true << false << false << 128 << 0 << false << false;
        QTest::newRow("int3 g64 act partial 48x172 invariant")
            << 48 << 172 << 3 << false << 64 << true << false << false << 128 << 0 << false << true;
        QTest::newRow("int3 sym g64 act static 48x172 b40")
            << 48 << 172 << 3 << true << 64 << true << true << false << 40 << 0 << false << false;
        QTest::newRow("int3 sym g64 act static 48x172 b40 invariant")
            << 48 << 172 << 3 << true << 64 << true << true << false << 40 << 0 << false << true;
        QTest::newRow("int4 g32 static no-act 48x172 b40")
            << 48 << 172 << 4 << false << 32 << false << true << false << 40 << 0 << false << false;
        QTest::newRow("int4 g32 static no-act 48x172 b40 invariant")
            << 48 << 172 << 4 << false << 32 << false << true << false << 40 << 0 << false << true;
        QTest::newRow("int4 g32 dead 48x172 b40")
            << 48 << 172 << 4 << false << 32 << false << false << false << 40 << 2 << false << false;
        QTest::newRow("int4 g32 dead 48x172 b40 invariant")
            << 48 << 172 << 4 << false << 32 << false << false << false << 40 << 2 << false << true;
        QTest::newRow("int4 g32 dead act 48x172 b40")
            << 48 << 172 << 4 << false << 32 << true << false << false << 40 << 2 << false << false;
        QTest::newRow("int4 g32 dead act 48x172 b40 invariant")
            << 48 << 172 << 4 << false << 32 << true << false << false << 40 << 2 << false << true;
        QTest::newRow("int4 g128 mse 48x172 b40")
            << 48 << 172 << 4 << false << 128 << false << false << true << 40 << 0 << false << false;
        QTest::newRow("int4 g128 mse 48x172 b40 invariant")
            << 48 << 172 << 4 << false << 128 << false << false << true << 40 << 0 << false << true;
        QTest::newRow("int3 per-channel act mse 48x172")
            << 48 << 172 << 3 << false << 0 << true << false << true << 128 << 0 << false << false;
        QTest::newRow("int3 per-channel act mse 48x172 invariant")
            << 48 << 172 << 3 << false << 0 << true << false << true << 128 << 0 << false << true;
        QTest::newRow("int4 g32 block 1")
            << 16 << 96 << 4 << false << 32 << false << false << false << 1 << 0 << false << false;
        QTest::newRow("int4 g32 block 1 invariant")
            << 16 << 96 << 4 << false << 32 << false << false << false << 1 << 0 << false << true;
        QTest::newRow("int4 g32 block > cols")
            << 16 << 96 << 4 << false << 32 << true << false << false << 512 << 0 << false << false;
        QTest::newRow("int4 g32 block > cols invariant")
            << 16 << 96 << 4 << false << 32 << true << false << false << 512 << 0 << false << true;
        QTest::newRow("fixture down_proj int4 g32 act b40")
            << 64 << 172 << 4 << false << 32 << true << false << false << 40 << 0 << true << false;
        QTest::newRow("fixture down_proj int4 g32 act b40 invariant")
            << 64 << 172 << 4 << false << 32 << true << false << false << 40 << 0 << true << true;
    }
    void matchesColumnByColumn()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, bits);
        QFETCH(bool, sym);
        QFETCH(int, group);
        QFETCH(bool, act);
        QFETCH(bool, stat);
        QFETCH(bool, mse);
        QFETCH(int, block);
        QFETCH(int, dead);
        QFETCH(bool, fixture);
        QFETCH(bool, invariant);
        const RowF w = fixture ? fixtureDownProj() : gptqref::randomWeight(rows, cols, uint64_t(rows * 7919 + cols));
        QCOMPARE(w.rows(), Eigen::Index(rows));
        const MatD x = deadInputs(gptqref::correlatedInputs(cols, 3 * cols, uint64_t(cols + bits)), dead);
        const MatD h = x * x.transpose();

        gptqref::Config c;
        c.rule = {bits, sym};
        c.group = group;
        c.actOrder = act;
        c.staticGroups = stat;
        c.mse = mse;
        c.blockSize = invariant ? 0 : block;
        const gptqref::Result ref = gptqref::naiveGptq(w, h, c);

        const ql::FormatSpec spec{"int" + std::to_string(bits) + (sym ? "_sym" : "_asym"),
                                  group > 0    ? Granularity::PerGroup
                                  : group == 0 ? Granularity::PerChannel
                                               : Granularity::PerTensor,
                                  group > 0 ? group : 128};
        ql::GptqOptions opt;
        opt.blockSize = block;
        opt.actOrder = act;
        opt.staticGroups = stat;
        opt.mseClip = mse;
        opt.blockInvariantGroups = invariant;
        opt.doublePrecision = true;
        const auto dbl = ql::gptqQuantize(w, h, spec, opt);
        QVERIFY2(dbl.ok(), dbl.message().c_str());
        opt.doublePrecision = false;
        const auto flt = ql::gptqQuantize(w, h, spec, opt);
        QVERIFY2(flt.ok(), flt.message().c_str());

        const double wmax = maxAbs(w.cast<double>());
        const double relDouble = maxAbs(dbl->dequantized.cast<double>() - ref.q) / wmax;
        QVERIFY2(relDouble <= 1e-5, qPrintable(QString("double path: max |dQ| / max |W| = %1").arg(relDouble)));
        QCOMPARE(dbl->deadColumns, dead);

        int diverged = 0;
        double relFloat = 0;
        for (int r = 0; r < rows; ++r) {
            const double d = (flt->dequantized.row(r).cast<double>() - ref.q.row(r)).cwiseAbs().maxCoeff() / wmax;
            if (d > 1e-5)
                ++diverged;
            else
                relFloat = std::max(relFloat, d);
        }
        QVERIFY2(diverged <= rows / 16,
                 qPrintable(QString("float path: %1 of %2 rows diverged").arg(diverged).arg(rows)));
        qInfo("double path max rel %.3g; float path max rel %.3g on agreeing rows, %d/%d rows diverged", relDouble,
              relFloat, diverged, rows);

        // The loss is ½ Σ err², which the quadratic objective makes ½ ΔW (H + λI) ΔWᵀ exactly
        // (with dead columns zeroed and their H_jj = 1). Against the reference 1e-6: with the
        // MSE search a scale may differ by one float ulp (the library's compiler may fuse the
        // clip multiply into an FMA), which moves the loss by ~1e-8 relative.
        QVERIFY2(std::abs(dbl->loss - ref.loss) <= 1e-6 * ref.loss,
                 qPrintable(QString("loss %1 vs reference %2").arg(dbl->loss).arg(ref.loss)));
        RowF w0 = w;
        MatD h0 = h;
        for (int j = 0; j < cols; ++j)
            if (h(j, j) == 0) {
                w0.col(j).setZero();
                h0(j, j) = 1;
            }
        h0.diagonal().array() += ref.lambda;
        auto quadratic = [&](const RowF& q) {
            const MatD dw = w0.cast<double>() - q.cast<double>();
            return 0.5 * (dw * h0 * dw.transpose()).trace();
        };
        const double quadD = quadratic(dbl->dequantized), quadF = quadratic(flt->dequantized);
        QVERIFY2(std::abs(dbl->loss - quadD) <= 1e-8 * quadD,
                 qPrintable(QString("loss %1 vs %2").arg(dbl->loss).arg(quadD)));
        QVERIFY2(std::abs(flt->loss - quadF) <= 1e-3 * quadF,
                 qPrintable(QString("float loss %1 vs %2").arg(flt->loss).arg(quadF)));

        // The tensor holds exactly the dequantized weight, with GPTQ's g_idx.
        for (const auto* res : {&*dbl, &*flt}) {
            QCOMPARE(res->tensor.rows(), Eigen::Index(rows));
            QVERIFY((res->tensor.dequantize().array() == res->dequantized.array()).all());
        }
        std::vector<int> invperm(static_cast<size_t>(cols));
        for (int p = 0; p < cols; ++p) invperm[size_t(ref.perm[size_t(p)])] = p;
        for (int j = 0; j < cols; ++j) {
            const int expect = group <= 0 ? 0 : (act && !stat) ? invperm[size_t(j)] / group : j / group;
            QCOMPARE(dbl->tensor.groupIndex()[size_t(j)], expect);
        }
    }

    void groupParametersFollowTheBlockStart()
    {
        // Groups of 32 inside blocks of 128: the published loop's group parameters ignore the
        // block's earlier updates, so its codes differ from the block-invariant ones; with blocks
        // of 32 every group starts a block and the two agree exactly.
        const RowF w = gptqref::randomWeight(48, 256, 11);
        const MatD x = gptqref::correlatedInputs(256, 768, 5);
        const MatD h = x * x.transpose();
        const ql::FormatSpec spec{"int4_asym", Granularity::PerGroup, 32};
        auto quantize = [&](int block, bool invariant) {
            ql::GptqOptions opt;
            opt.blockSize = block;
            opt.blockInvariantGroups = invariant;
            opt.doublePrecision = true;
            auto r = ql::gptqQuantize(w, h, spec, opt);
            return r ? RowF(r->dequantized) : RowF();
        };
        const RowF ref128 = quantize(128, false), inv128 = quantize(128, true), ref32 = quantize(32, false),
                   inv32 = quantize(32, true);
        QVERIFY(ref128.size() > 0 && inv128.size() > 0 && ref32.size() > 0 && inv32.size() > 0);
        QVERIFY((ref32.array() == inv32.array()).all());
        // Invariant: the block size changes only the order of double additions.
        QVERIFY((inv128 - inv32).cwiseAbs().maxCoeff() <= 1e-5f * w.cwiseAbs().maxCoeff());
        const Eigen::Index differ = (ref128.array() != inv128.array()).count();
        qInfo("published group parameters change %lld of %lld dequantized weights at blocks of 128", (long long)differ,
              (long long)ref128.size());
        QVERIFY(differ > ref128.size() / 100);
    }

    void beatsRtn_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("act");
        QTest::newRow("int4 g128") << "int4_asym" << 128 << false;
        QTest::newRow("int4 g32 act") << "int4_asym" << 32 << true;
        QTest::newRow("int3 g128") << "int3_asym" << 128 << false;
        QTest::newRow("int3 sym g64 act") << "int3_sym" << 64 << true;
        QTest::newRow("fp4 g32") << "fp4_e2m1" << 32 << false;
        QTest::newRow("nf4 g64 act") << "nf4" << 64 << true;
    }
    void beatsRtn()
    {
        QFETCH(QString, format);
        QFETCH(int, group);
        QFETCH(bool, act);
        const RowF w = gptqref::randomWeight(96, 256, 11);
        const MatD x = gptqref::correlatedInputs(256, 1024, 12);
        const ql::FormatSpec spec{format.toStdString(), Granularity::PerGroup, group};
        ql::GptqOptions opt;
        opt.actOrder = act;
        const auto g = ql::gptqQuantize(w, x * x.transpose(), spec, opt);
        QVERIFY2(g.ok(), g.message().c_str());
        const auto rtn = ql::quantize(w, spec);
        QVERIFY2(rtn.ok(), rtn.message().c_str());
        const double eG = gptqref::outputError(w.cast<double>() - g->dequantized.cast<double>(), x);
        const double eR = gptqref::outputError(w.cast<double>() - rtn->dequantize().cast<double>(), x);
        qInfo("||dW X||^2: GPTQ %.4g, RTN %.4g, ratio %.3f", eG, eR, eG / eR);
        QVERIFY2(eG < 0.8 * eR, qPrintable(QString("GPTQ %1 vs RTN %2").arg(eG).arg(eR)));
    }

    void pbllmSalientSet_data()
    {
        QTest::addColumn<double>("fraction");
        QTest::addColumn<int>("block");
        QTest::addColumn<bool>("hessian");
        QTest::newRow("5% b40 magnitude") << 0.05 << 40 << false;
        QTest::newRow("10% b128 magnitude") << 0.1 << 128 << false;
        QTest::newRow("30% b64 hessian") << 0.3 << 64 << true;
    }
    void pbllmSalientSet()
    {
        QFETCH(double, fraction);
        QFETCH(int, block);
        QFETCH(bool, hessian);
        const int rows = 48, cols = 172;
        const RowF w = gptqref::randomWeight(rows, cols, 21);
        const MatD x = gptqref::correlatedInputs(cols, 512, 22);
        const MatD h = x * x.transpose();
        ql::PbllmOptions opt;
        opt.salientFraction = fraction;
        opt.blockSize = block;
        opt.criterion = hessian ? ql::PbllmCriterion::Hessian : ql::PbllmCriterion::Magnitude;
        const auto res = ql::pbllmQuantize(w, h, opt);
        QVERIFY2(res.ok(), res.message().c_str());
        QCOMPARE(res->salientMask.size(), size_t(rows * cols));

        // Count per block: the salient share of every block is round(fraction · its weights).
        int64_t total = 0;
        for (int c0 = 0; c0 < cols; c0 += block) {
            const int len = std::min(block, cols - c0);
            int64_t n = 0;
            for (int r = 0; r < rows; ++r)
                for (int c = c0; c < c0 + len; ++c) n += res->salientMask[size_t(r * cols + c)];
            QCOMPARE(n, int64_t(std::llround(fraction * rows * len)));
            total += n;
        }
        QCOMPARE(res->salientCount, total);

        // The first block is entered with the original weights, so its salient set is the top
        // of the criterion on w itself (U from the explicit inverse, as the reference).
        MatD hd = h;
        hd.diagonal().array() += 0.01 * h.diagonal().mean();
        const MatD u = MatD(hd.inverse()).llt().matrixU();
        auto score = [&](int r, int c) { return hessian ? std::pow(w(r, c) / u(c, c), 2) : std::abs(double(w(r, c))); };
        double minSalient = INFINITY, maxOther = 0;
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < std::min(block, cols); ++c) {
                if (res->salientMask[size_t(r * cols + c)])
                    minSalient = std::min(minSalient, score(r, c));
                else
                    maxOther = std::max(maxOther, score(r, c));
            }
        QVERIFY2(minSalient >= maxOther * (1 - 1e-6),
                 qPrintable(QString("salient min %1 < other max %2").arg(minSalient).arg(maxOther)));
    }

    void pbllmBinarizedValues()
    {
        // A diagonal H leaves nothing to compensate across columns, so every block sees the
        // original weights: the mask is the top |w| of each block and μ, α its statistics.
        const int rows = 32, cols = 100, block = 40;
        const RowF w = gptqref::randomWeight(rows, cols, 31);
        MatD h = MatD::Zero(cols, cols);
        for (int j = 0; j < cols; ++j) h(j, j) = 1.0 + j % 5;
        ql::PbllmOptions opt;
        opt.blockSize = block;
        const auto res = ql::pbllmQuantize(w, h, opt);
        QVERIFY2(res.ok(), res.message().c_str());
        const Eigen::MatrixXf bin = res->tensor.dequantize(), sal = res->salient.dequantize();
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k * block < cols; ++k) {
                const int c0 = k * block, len = std::min(block, cols - c0);
                std::set<float> values;
                double sum = 0, minSalient = INFINITY, maxOther = 0;
                std::vector<double> others;
                for (int c = c0; c < c0 + len; ++c) {
                    const bool s = res->salientMask[size_t(r * cols + c)];
                    QVERIFY(res->dequantized(r, c) == (s ? sal(r, c) : bin(r, c))); // exact composition
                    if (s)
                        minSalient = std::min(minSalient, double(std::abs(w(r, c))));
                    else {
                        values.insert(res->dequantized(r, c));
                        others.push_back(w(r, c));
                        sum += w(r, c);
                        maxOther = std::max(maxOther, double(std::abs(w(r, c))));
                    }
                }
                QVERIFY(values.size() <= 2);
                const ql::GroupParams p = res->tensor.params(r, k);
                for (float v : values) QVERIFY(v == p.zero + p.scale || v == p.zero - p.scale);
                if (others.empty()) continue;
                const double mu = sum / double(others.size());
                double alpha = 0;
                for (double o : others) alpha += std::abs(o - mu);
                alpha /= double(others.size());
                QVERIFY(std::abs(p.zero - mu) <= 1e-6 * (std::abs(mu) + alpha) + 1e-9);
                QVERIFY(std::abs(p.scale - alpha) <= 1e-6 * alpha + 1e-9);
                QVERIFY(minSalient == INFINITY || minSalient >= maxOther);
            }
        // Rows of blocks take the per-block share; this layer's blocks hold rows·40 and rows·20.
        QCOMPARE(res->salientCount, int64_t(std::llround(0.1 * rows * 40)) * 2 + std::llround(0.1 * rows * 20));
    }

    void pbllmCompensation()
    {
        const int rows = 64, cols = 256;
        const RowF w = gptqref::randomWeight(rows, cols, 41);
        const MatD x = gptqref::correlatedInputs(cols, 1024, 42);
        for (bool hessian : {false, true}) {
            ql::PbllmOptions opt;
            opt.criterion = hessian ? ql::PbllmCriterion::Hessian : ql::PbllmCriterion::Magnitude;
            const auto res = ql::pbllmQuantize(w, x * x.transpose(), opt);
            QVERIFY2(res.ok(), res.message().c_str());
            // The same mask without compensation: each (row, block) binarized with μ, α of its
            // original non-salient weights and the salient ones at 8 bits over their own range.
            MatD plain(rows, cols);
            for (int r = 0; r < rows; ++r)
                for (int c0 = 0; c0 < cols; c0 += opt.blockSize) {
                    std::vector<float> sal;
                    double sum = 0, n = 0, alpha = 0;
                    for (int c = c0; c < c0 + opt.blockSize; ++c) {
                        if (res->salientMask[size_t(r * cols + c)]) {
                            sal.push_back(w(r, c));
                        } else {
                            sum += w(r, c);
                            n += 1;
                        }
                    }
                    const double mu = n ? sum / n : 0;
                    for (int c = c0; c < c0 + opt.blockSize; ++c)
                        if (!res->salientMask[size_t(r * cols + c)]) alpha += std::abs(w(r, c) - mu) / n;
                    const gptqref::Params p = gptqref::intParams(sal, {8, false});
                    for (int c = c0; c < c0 + opt.blockSize; ++c)
                        plain(r, c) = res->salientMask[size_t(r * cols + c)]
                                          ? gptqref::fakeQuant(w(r, c), p, {8, false})
                                          : (w(r, c) >= mu ? mu + alpha : mu - alpha);
                }
            const double eP = gptqref::outputError(w.cast<double>() - res->dequantized.cast<double>(), x);
            const double eN = gptqref::outputError(w.cast<double>() - plain, x);
            qInfo("%s: ||dW X||^2 with compensation %.4g, without %.4g, ratio %.3f", hessian ? "hessian" : "magnitude",
                  eP, eN, eP / eN);
            QVERIFY2(eP < 0.8 * eN, qPrintable(QString("compensated %1 vs plain %2").arg(eP).arg(eN)));
        }
    }

    void pbllmBits()
    {
        const int rows = 32, cols = 256;
        const RowF w = gptqref::randomWeight(rows, cols, 51);
        const MatD x = gptqref::correlatedInputs(cols, 512, 52);
        ql::PbllmOptions opt;
        opt.salientFraction = 0.1;
        const auto res = ql::pbllmQuantize(w, x * x.transpose(), opt);
        QVERIFY2(res.ok(), res.message().c_str());
        const double n = rows * cols, s = double(res->salientCount), params = rows * 2 * (48.0 + 8.0);
        QCOMPARE(res->bitsPerWeight, (s * 8 + (n - s) + params) / n);
        QCOMPARE(res->storedBitsPerWeight, (n + s * 12 + params) / n);
        QVERIFY(std::abs(res->bitsPerWeight - (0.1 * 8 + 0.9 + 56.0 / 128)) < 1e-3);
    }

    void errors()
    {
        const RowF w = gptqref::randomWeight(8, 16, 61);
        const MatD h = MatD::Identity(16, 16);
        const ql::FormatSpec spec{"int4_asym", Granularity::PerGroup, 8};
        auto expectError = [](const auto& res, const char* needle) {
            QVERIFY(!res.ok());
            QVERIFY2(res.message().find(needle) != std::string::npos, res.message().c_str());
        };
        expectError(ql::gptqQuantize(w, MatD::Identity(15, 15), spec), "expected 16 x 16");
        RowF bad = w;
        bad(3, 4) = NAN;
        expectError(ql::gptqQuantize(bad, h, spec), "weight element (3, 4)");
        MatD hbad = h;
        hbad(7, 2) = INFINITY;
        expectError(ql::gptqQuantize(w, hbad, spec), "Hessian element (7, 2)");
        MatD indefinite = h;
        indefinite(5, 5) = -4;
        ql::GptqOptions noDamp;
        noDamp.damp = 0;
        expectError(ql::gptqQuantize(w, indefinite, spec, noDamp), "increase the dampening");
        ql::GptqOptions badBlock;
        badBlock.blockSize = 0;
        expectError(ql::gptqQuantize(w, h, spec, badBlock), "block size");
        ql::GptqOptions mse;
        mse.mseClip = true;
        expectError(ql::gptqQuantize(w, h, ql::FormatSpec{"binary", Granularity::PerGroup, 8}, mse), "range to clip");
        expectError(ql::gptqQuantize(w, h, ql::FormatSpec{"int4_asym", Granularity::PerGroup, 0}), "group size");
        expectError(ql::gptqQuantize(w, h, ql::FormatSpec{"int9", Granularity::PerGroup, 8}), "int9");

        ql::PbllmOptions p;
        p.salientFraction = 1.5;
        expectError(ql::pbllmQuantize(w, h, p), "salient fraction");
        p = {};
        p.salientBits = 1;
        expectError(ql::pbllmQuantize(w, h, p), "salient bits");
        p = {};
        expectError(ql::pbllmQuantize(w, MatD::Identity(4, 4), p), "Hessian");
        p.damp = 0;
        expectError(ql::pbllmQuantize(w, indefinite, p), "increase the dampening");
    }

    void largeLayers()
    {
        // Opt-in (QL_GPTQ_LARGE=1): SmolLM-135M shapes with 4096 calibration tokens; prints times.
        if (qEnvironmentVariableIntValue("QL_GPTQ_LARGE") != 1) QSKIP("set QL_GPTQ_LARGE=1 to run");
        for (auto [rows, cols] : {std::pair{576, 1536}, std::pair{1536, 576}}) {
            const RowF w = gptqref::randomWeight(rows, cols, 71);
            const Eigen::MatrixXf xf = gptqref::correlatedInputs(cols, 4096, 72).cast<float>();
            const MatD h = (xf * xf.transpose()).cast<double>();
            const ql::FormatSpec spec{"int4_asym", Granularity::PerGroup, 128};
            const auto t0 = std::chrono::steady_clock::now();
            const auto g = ql::gptqQuantize(w, h, spec);
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            QVERIFY2(g.ok(), g.message().c_str());
            const auto rtn = ql::quantize(w, spec);
            QVERIFY(rtn.ok());
            const MatD dG = w.cast<double>() - g->dequantized.cast<double>(),
                       dR = w.cast<double>() - rtn->dequantize().cast<double>();
            const double eG = (dG * h * dG.transpose()).trace(), eR = (dR * h * dR.transpose()).trace();
            qInfo("%dx%d int4 g128: %.3f s, GPTQ/RTN output error %.3f", rows, cols, secs, eG / eR);
            QVERIFY(eG < eR);
        }
    }
};

QTEST_GUILESS_MAIN(TestGptq)
#include "tst_gptq.moc"
