// bf16 products (RuntimeNumerics::bf16Products): the packed product against a float64 loop over
// the bf16-rounded operands, thread-count independence, and the forward pass with the setting.

#include "fixturemodel.h"
#include "quantlens/forward/bf16gemm.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensors.h"

#include <QTemporaryDir>
#include <QtTest>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

namespace {

double bf16Value(float v)
{
    const uint32_t b = uint32_t(ql::floatToBf16(v)) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

} // namespace

class TestBf16Gemm : public QObject {
    Q_OBJECT

private slots:
    void init()
    {
        if (!ql::bf16::supported()) QSKIP("this CPU lacks AVX512-BF16");
    }

    void roundsToNearestEven()
    {
        QCOMPARE(ql::floatToBf16(1.0f), uint16_t(0x3f80));
        QCOMPARE(ql::floatToBf16(1.0f + 0x1p-8f), uint16_t(0x3f80));     // tie, to even
        QCOMPARE(ql::floatToBf16(1.0f + 3 * 0x1p-8f), uint16_t(0x3f82)); // tie, to even (up)
        QCOMPARE(ql::floatToBf16(1.0f + 0x1p-8f + 0x1p-20f), uint16_t(0x3f81));
        QCOMPARE(ql::floatToBf16(-2.0f), uint16_t(0xc000));
        QCOMPARE(ql::floatToBf16(3.4e38f), uint16_t(0x7f80)); // rounds past the largest bf16
        QVERIFY(std::isnan(bf16Value(std::nanf(""))));
    }

    // Shapes off every block size (48 rows, 8 tokens, even features), against a float64 sum of
    // the rounded operands; the fp32 accumulation of up to 301 products stays within 1e-5 of
    // Σ|w·x|. Every thread count gives the same bits.
    void productMatchesFloat64()
    {
        std::mt19937 rng(7);
        std::normal_distribution<float> nd(0.f, 1.f);
        for (const auto [rows, cols, tokens] : {std::tuple{100, 77, 13}, {48, 64, 8}, {5, 301, 1}, {97, 2, 17}}) {
            ql::RowMatrix w(rows, cols);
            Eigen::MatrixXf x(cols, tokens);
            for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = nd(rng);
            for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng) * 3.f;
            ql::bf16::PackedWeights pw;
            pw.pack(w.data(), rows, cols);
            ql::bf16::PackedInput px;
            px.pack(x);
            Eigen::MatrixXf out;
            ql::bf16::multiply(pw, px, out);
            QCOMPARE(out.rows(), Eigen::Index(rows));
            QCOMPARE(out.cols(), Eigen::Index(tokens));
            double worst = 0, moved = 0;
            for (int r = 0; r < rows; ++r)
                for (int t = 0; t < tokens; ++t) {
                    double sum = 0, mag = 0, exact = 0;
                    for (int k = 0; k < cols; ++k) {
                        sum += bf16Value(w(r, k)) * bf16Value(x(k, t));
                        mag += std::abs(bf16Value(w(r, k)) * bf16Value(x(k, t)));
                        exact += double(w(r, k)) * x(k, t);
                    }
                    worst = std::max(worst, std::abs(out(r, t) - sum) / mag);
                    moved = std::max(moved, std::abs(exact - sum) / mag);
                }
            QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
            QVERIFY2(moved > 1e-5, "the operands were not rounded to bf16"); // the test can tell
            const int threads = omp_get_max_threads();
            omp_set_num_threads(1);
            Eigen::MatrixXf one;
            ql::bf16::multiply(pw, px, one);
            omp_set_num_threads(threads);
            QVERIFY(one == out);
        }
    }

    // The forward pass with bf16 products: logits near the fp32 ones (bf16 keeps 8 bits of
    // mantissa) but not equal, and the same for one and two threads.
    void forwardWithBf16Products()
    {
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        std::vector<int32_t> ids(40);
        for (int i = 0; i < 40; ++i) ids[size_t(i)] = (i * 11 + 1) % s.vocab;
        ql::ForwardEngine engine(m->config(), *m);
        auto logits = [&](bool bf16, int threads) {
            Eigen::MatrixXf out;
            ql::ForwardOptions fo;
            fo.runtime.bf16Products = bf16;
            fo.threads = threads;
            const auto r = engine.run(
                {ids},
                [&](int, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                    out = l;
                    return {};
                },
                fo);
            return r.ok() ? out : Eigen::MatrixXf();
        };
        const Eigen::MatrixXf f32 = logits(false, 2), b16 = logits(true, 2), b16one = logits(true, 1);
        QVERIFY(f32.size() > 0 && b16.size() == f32.size());
        const double rel = (b16 - f32).norm() / f32.norm();
        QVERIFY2(rel > 1e-5 && rel < 3e-2, qPrintable(QString::number(rel)));
        QVERIFY(b16one == b16);
    }
};

QTEST_GUILESS_MAIN(TestBf16Gemm)
#include "tst_bf16gemm.moc"
