// QuantizedTensor and round-to-nearest quantization: every format x shape x granularity against
// the recomputations of formatref.h, code packing against a bit-by-bit packer, act-order group
// indices, GPTQ-style column-wise quantization and the errors on bad input.
#include "formatref.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/quantizedtensor.h"

#include <QSysInfo>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace qlref;
using ql::Granularity;

class TestQuantizedTensor : public QObject {
    Q_OBJECT

private slots:
    void roundTrip_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("granularity");
        QTest::addColumn<int>("group");
        const struct {
            int rows, cols;
            Granularity g;
            int group;
        } shapes[] = {{7, 172, Granularity::PerGroup, 128}, {3, 11, Granularity::PerGroup, 4},
                      {1, 1, Granularity::PerGroup, 128},   {6, 300, Granularity::PerGroup, 32},
                      {4, 64, Granularity::PerGroup, 64},   {5, 33, Granularity::PerChannel, 0},
                      {4, 9, Granularity::PerTensor, 0}};
        const char* gname[] = {"tensor", "channel", "g"};
        for (const std::string& id : kIds)
            for (const auto& s : shapes)
                QTest::newRow(qPrintable(QString("%1 %2x%3 %4%5")
                                             .arg(QString::fromStdString(id))
                                             .arg(s.rows)
                                             .arg(s.cols)
                                             .arg(gname[int(s.g)])
                                             .arg(s.g == Granularity::PerGroup ? QString::number(s.group) : QString())))
                    << QString::fromStdString(id) << s.rows << s.cols << int(s.g) << s.group;
    }
    void roundTrip()
    {
        QFETCH(QString, format);
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, granularity);
        QFETCH(int, group);
        const std::string id = format.toStdString();
        const Granularity gran = Granularity(granularity);
        const Eigen::MatrixXf w = makeWeight(rows, cols, unsigned(rows * 1000 + cols));
        const auto qt = ql::quantize(w, ql::FormatSpec{id, gran, group});
        QVERIFY2(qt.ok(), qt.message().c_str());
        const ql::WeightFormat& f = qt->format();
        const int groups = gran == Granularity::PerGroup ? (cols + group - 1) / group : 1;
        QCOMPARE(qt->groups(), groups);
        QCOMPARE(qt->scales().rows(), Eigen::Index(rows));
        QCOMPARE(qt->zeros().cols(), Eigen::Index(groups));
        QCOMPARE(qt->wordsPerRow(), Eigen::Index((cols * idBits(id) + 31) / 32));
        for (int j = 0; j < cols; ++j)
            QCOMPARE(qt->groupIndex()[size_t(j)], gran == Granularity::PerGroup ? j / group : 0);

        // Per-format tolerance: every format whose parameters are float formulas is exact; binary
        // and ternary statistics are double sums rounded once, compared relative to |μ| + α.
        const bool exact = id != "binary" && id != "ternary";
        const double tol = exact ? 0.0 : 1e-6;
        const Eigen::MatrixXf deq = qt->dequantize();
        std::vector<float> all(w.data(), w.data() + w.size());
        for (int r = 0; r < rows; ++r)
            for (int g = 0; g < groups; ++g) {
                std::vector<int> members;
                std::vector<float> values;
                for (int j = 0; j < cols; ++j)
                    if (gran != Granularity::PerGroup || j / group == g) {
                        members.push_back(j);
                        values.push_back(w(r, j));
                    }
                const RefParams p = refParams(id, gran == Granularity::PerTensor ? all : values);
                const double mag = std::abs(p.scale) + std::abs(p.zero);
                const QString where = QStringLiteral(" row %1 group %2").arg(r).arg(g);
                QVERIFY2(std::abs(qt->scales()(r, g) - p.scale) <= tol * mag &&
                             std::abs(qt->zeros()(r, g) - p.zero) <= tol * mag,
                         qPrintable(QString("params (%1, %2) vs (%3, %4)")
                                        .arg(qt->scales()(r, g))
                                        .arg(qt->zeros()(r, g))
                                        .arg(p.scale)
                                        .arg(p.zero) +
                                    where));
                for (int j : members) {
                    const uint32_t q = qt->code(r, j), expect = refCode(id, p, w(r, j));
                    QVERIFY2(q == expect, qPrintable(QString("code %1, expected %2").arg(q).arg(expect) + at(r, j)));
                    QVERIFY2(q < (1u << idBits(id)) && refValidCode(id, q) && ql::isValidCode(f, q),
                             qPrintable(at(r, j)));
                    const double ref = refValue(id, p, q);
                    const bool same = exact ? deq(r, j) == float(ref) : std::abs(deq(r, j) - ref) <= tol * mag + 1e-12;
                    QVERIFY2(same,
                             qPrintable(
                                 QString("dequantized %1, expected %2").arg(deq(r, j), 0, 'g', 9).arg(ref, 0, 'g', 9) +
                                 at(r, j)));
                    QCOMPARE(deq(r, j), ql::dequantizeCode(f, qt->params(r, g), q));
                    // Error bounds: half a step for integers (every element, the range covers the
                    // group); half the local grid spacing for floats.
                    const double err = std::abs(double(w(r, j)) - double(deq(r, j)));
                    if (isInt(id)) {
                        const double bound = p.scale / 2 +
                                             1e-6 * (std::abs(w(r, j)) + p.scale * ((1 << idBits(id)) - 1));
                        QVERIFY2(err <= bound, qPrintable(QString("error %1 > %2").arg(err).arg(bound) + at(r, j)));
                    } else if (isFp(id)) {
                        const FpRef fr = fpRef(id);
                        const double x = std::abs(double(w(r, j))) / p.scale;
                        const int e = std::max(x > 0 ? std::ilogb(x) : 0, 1 - fr.bias);
                        const double bound = p.scale * std::ldexp(1.0, e - fr.m - 1) * (1 + 1e-6) +
                                             1e-6 * std::abs(w(r, j));
                        QVERIFY2(err <= bound, qPrintable(QString("error %1 > %2").arg(err).arg(bound) + at(r, j)));
                    }
                }
            }
    }

    void packing_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("cols");
        for (const char* id :
             {"binary", "int2_asym", "ternary", "int3_sym", "nf4", "int5_asym", "fp6_e2m3", "int7_sym", "fp8_e4m3"})
            for (int cols : {1, 5, 11, 31, 32, 33, 172})
                QTest::newRow(qPrintable(QString("%1 cols %2").arg(id).arg(cols))) << QString(id) << cols;
    }
    void packing()
    {
        QFETCH(QString, format);
        QFETCH(int, cols);
        const std::string id = format.toStdString();
        const int rows = 3, bits = idBits(id);
        auto made = ql::QuantizedTensor::create(rows, cols, ql::FormatSpec{id, Granularity::PerChannel, 0});
        QVERIFY2(made.ok(), made.message().c_str());
        ql::QuantizedTensor& t = *made;
        std::mt19937 rng(unsigned(cols * 31 + bits));
        auto draw = [&] {
            uint32_t q;
            do q = rng() & ((1u << bits) - 1);
            while (!refValidCode(id, q));
            return q;
        };
        std::vector<std::vector<uint32_t>> codes(rows, std::vector<uint32_t>(size_t(cols)));
        for (int pass = 0; pass < 2; ++pass) // the second pass overwrites: old bits must be cleared
            for (int r = 0; r < rows; ++r)
                for (int c = 0; c < cols; ++c) {
                    codes[size_t(r)][size_t(c)] = draw();
                    QVERIFY(t.setCode(r, c, codes[size_t(r)][size_t(c)]).ok());
                }
        for (int r = 0; r < rows; ++r) {
            Eigen::VectorXf v = makeWeight(1, 8, unsigned(r)).row(0).transpose();
            QVERIFY(t.setParams(r, 0, ql::computeParams(t.format(), v).value()).ok());
        }
        QCOMPARE(t.wordsPerRow(), Eigen::Index((cols * bits + 31) / 32));
        QCOMPARE(t.packedCodes(), packNaive(codes, bits));
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c) QCOMPARE(t.code(r, c), codes[size_t(r)][size_t(c)]);
        if (QSysInfo::ByteOrder == QSysInfo::LittleEndian) { // the documented byte-stream view
            std::vector<uint8_t> bytes(t.packedCodes().size() * 4);
            std::memcpy(bytes.data(), t.packedCodes().data(), bytes.size());
            const size_t rowBytes = size_t(t.wordsPerRow()) * 4;
            for (int r = 0; r < rows; ++r)
                for (int c = 0; c < cols; ++c) {
                    uint32_t q = 0;
                    for (int i = 0; i < bits; ++i) {
                        const size_t k = size_t(c * bits + i);
                        q |= uint32_t((bytes[size_t(r) * rowBytes + k / 8] >> (k % 8)) & 1u) << i;
                    }
                    QCOMPARE(q, codes[size_t(r)][size_t(c)]);
                }
        }
        auto back = ql::QuantizedTensor::fromParts(rows, cols, t.spec(), t.packedCodes(), t.scales(), t.zeros(),
                                                   t.groupIndex());
        QVERIFY2(back.ok(), back.message().c_str());
        QCOMPARE(back->packedCodes(), t.packedCodes());
        const Eigen::MatrixXf deq = t.dequantize();
        QVERIFY(back->dequantize() == deq);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c)
                QCOMPARE(deq(r, c), ql::dequantizeCode(t.format(), t.params(r, 0), codes[size_t(r)][size_t(c)]));

        // Corrupt parts are refused: a short buffer, set padding bits, a code the format never emits.
        std::vector<uint32_t> words = t.packedCodes();
        QVERIFY(!ql::QuantizedTensor::fromParts(rows, cols, t.spec(),
                                                std::vector<uint32_t>(words.begin(), words.end() - 1), t.scales(),
                                                t.zeros(), t.groupIndex())
                     .ok());
        if ((cols * bits) % 32) {
            words[size_t(t.wordsPerRow()) - 1] |= 0x80000000u;
            auto r = ql::QuantizedTensor::fromParts(rows, cols, t.spec(), words, t.scales(), t.zeros(), t.groupIndex());
            QVERIFY2(!r.ok() && r.message().find("padding") != std::string::npos, r.message().c_str());
        }
        if (id == "ternary" || id == "fp8_e4m3") {
            words = t.packedCodes();
            words[0] |= (1u << bits) - 1; // code 3 / 0xff (NaN) in column 0
            QVERIFY(!ql::QuantizedTensor::fromParts(rows, cols, t.spec(), words, t.scales(), t.zeros(), t.groupIndex())
                         .ok());
        }
    }

    void groupIndex_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("cols");
        for (const char* id : {"int4_asym", "int3_sym", "fp4_e2m1", "nf4", "binary", "ternary"})
            for (int cols : {40, 45})
                QTest::newRow(qPrintable(QString("%1 cols %2").arg(id).arg(cols))) << QString(id) << cols;
    }
    void groupIndex()
    {
        // Act-order: column perm[i] belongs to group i / g. Quantizing with that g_idx must equal
        // quantizing the column-permuted weight with contiguous groups, column for column.
        QFETCH(QString, format);
        QFETCH(int, cols);
        const std::string id = format.toStdString();
        const int rows = 6, g = 8;
        const Eigen::MatrixXf w = makeWeight(rows, cols, 11);
        std::vector<int> perm(static_cast<size_t>(cols));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), std::mt19937(5));
        std::vector<int32_t> gIdx(static_cast<size_t>(cols));
        Eigen::MatrixXf wp(rows, cols);
        for (int i = 0; i < cols; ++i) {
            gIdx[size_t(perm[size_t(i)])] = i / g;
            wp.col(i) = w.col(perm[size_t(i)]);
        }
        const ql::FormatSpec spec{id, Granularity::PerGroup, g};
        const auto act = ql::quantize(w, spec, gIdx);
        const auto ref = ql::quantize(wp, spec);
        QVERIFY2(act.ok() && ref.ok(), (act.message() + ref.message()).c_str());
        QCOMPARE(act->groupIndex(), gIdx);
        const bool exact = id != "binary" && id != "ternary"; // double sums in another order
        const Eigen::MatrixXf da = act->dequantize(), dr = ref->dequantize();
        QVERIFY(exact ? act->scales() == ref->scales() : act->scales().isApprox(ref->scales(), 1e-6f));
        for (int r = 0; r < rows; ++r)
            for (int i = 0; i < cols; ++i) {
                const int j = perm[size_t(i)];
                QVERIFY2(act->code(r, j) == ref->code(r, i), qPrintable(at(r, j)));
                QVERIFY2(exact ? da(r, j) == dr(r, i) : std::abs(da(r, j) - dr(r, i)) <= 1e-6f, qPrintable(at(r, j)));
            }
        // The contiguous assignment really is different here: the index is used.
        const auto plain = ql::quantize(w, spec);
        QVERIFY(plain->scales() != act->scales());
    }

    void columnwise_data()
    {
        QTest::addColumn<QString>("format");
        for (const char* id : {"int4_asym", "int3_sym", "int8_sym", "fp8_e4m3", "fp6_e3m2", "nf4", "binary", "ternary"})
            QTest::newRow(id) << QString(id);
    }
    void columnwise()
    {
        // GPTQ's use: parameters per (row, group) first, then one column at a time.
        QFETCH(QString, format);
        const std::string id = format.toStdString();
        const int rows = 5, cols = 20, g = 8;
        const Eigen::MatrixXf w = makeWeight(rows, cols, 17);
        const ql::FormatSpec spec{id, Granularity::PerGroup, g};
        auto made = ql::QuantizedTensor::create(rows, cols, spec);
        QVERIFY2(made.ok(), made.message().c_str());
        ql::QuantizedTensor& t = *made;
        for (int r = 0; r < rows; ++r)
            for (int k = 0; k < t.groups(); ++k) {
                const int len = std::min(g, cols - k * g);
                auto p = ql::computeParams(t.format(), w.row(r).segment(k * g, len).transpose());
                QVERIFY2(p.ok() && t.setParams(r, k, *p).ok(), p.message().c_str());
            }
        const auto whole = ql::quantize(w, spec);
        QVERIFY2(whole.ok(), whole.message().c_str());
        const Eigen::MatrixXf expect = whole->dequantize();
        std::mt19937 rng(2);
        std::normal_distribution<float> noise(0.f, 0.005f);
        for (int j = 0; j < cols; ++j) {
            auto col = t.quantizeColumn(j, w.col(j));
            QVERIFY2(col.ok(), col.message().c_str());
            QVERIFY2(*col == expect.col(j), qPrintable(QString("column %1").arg(j)));
            for (int r = 0; r < rows; ++r) QCOMPARE(t.code(r, j), whole->code(r, j));
            // An updated column (as GPTQ's error feedback makes) against the per-value codec.
            Eigen::VectorXf upd = w.col(j);
            for (int r = 0; r < rows; ++r) upd[r] += noise(rng);
            const int k = t.groupIndex()[size_t(j)];
            auto free = ql::quantizeColumn(t.format(), upd, t.scales().col(k), t.zeros().col(k));
            QVERIFY2(free.ok(), free.message().c_str());
            for (int r = 0; r < rows; ++r) {
                const RefParams p{t.scales()(r, k), t.zeros()(r, k)};
                QCOMPARE(free->codes[size_t(r)], refCode(id, p, upd[r]));
                QCOMPARE(free->values[r], ql::dequantizeCode(t.format(), t.params(r, k), free->codes[size_t(r)]));
            }
        }
        QCOMPARE(t.packedCodes(), whole->packedCodes());
        QVERIFY(!ql::quantizeColumn(t.format(), w.col(0), t.scales().col(0).head(2), t.zeros().col(0)).ok());
        QVERIFY(!t.quantizeColumn(cols, w.col(0)).ok());
        QVERIFY(!t.quantizeColumn(0, w.col(0).head(3)).ok());
    }

    void badInput()
    {
        const Eigen::MatrixXf w = makeWeight(4, 10, 1);
        auto error = [](const auto& e, const char* words) {
            return !e.ok() && e.message().find(words) != std::string::npos;
        };
        QVERIFY(error(ql::quantize(w, {"int4", Granularity::PerGroup, 4}), "unknown weight format 'int4'"));
        QVERIFY(error(ql::quantize(w, {"int4_sym", Granularity::PerGroup, 0}), "group size 0"));
        QVERIFY(error(ql::quantize(w, {"int4_sym", Granularity::PerGroup, -3}), "group size -3"));
        QVERIFY(ql::quantize(w, {"int4_sym", Granularity::PerChannel, 0}).ok()); // group size unused
        QVERIFY(error(ql::quantize(Eigen::MatrixXf(0, 5), {"nf4", Granularity::PerChannel, 0}), "0 x 5"));
        for (float bad : {NAN, INFINITY}) {
            Eigen::MatrixXf v = w;
            v(1, 2) = bad;
            QVERIFY(error(ql::quantize(v, {"int4_asym", Granularity::PerGroup, 4}), "(1, 2)"));
        }
        const ql::FormatSpec spec{"int4_asym", Granularity::PerGroup, 4}; // 3 groups
        QVERIFY(error(ql::quantize(w, spec, std::vector<int32_t>(9, 0)), "one per input column"));
        std::vector<int32_t> gIdx(10, 0);
        gIdx[4] = 3;
        QVERIFY(error(ql::quantize(w, spec, gIdx), "column 4 is in group 3"));
        gIdx[4] = -1;
        QVERIFY(error(ql::quantize(w, spec, gIdx), "column 4"));
        QVERIFY(error(ql::quantize(w, {"nf4", Granularity::PerTensor, 0}, std::vector<int32_t>(10, 1)), "[0, 1)"));

        auto t = ql::QuantizedTensor::create(2, 3, {"int4_sym", Granularity::PerGroup, 2}).value();
        QVERIFY(error(t.setCode(0, 0, 16), "not a int4_sym code"));
        QVERIFY(error(t.setCode(2, 0, 1), "outside"));
        QVERIFY(error(t.setCode(0, -1, 1), "outside"));
        QVERIFY(error(t.setParams(0, 0, {0.f, 8.f}), "positive scale"));
        QVERIFY(error(t.setParams(0, 0, {1.f, 7.f}), "2^(bits-1)"));
        QVERIFY(error(t.setParams(0, 2, {1.f, 8.f}), "group < 2"));
        QVERIFY(error(t.setParams(0, 0, {NAN, 8.f}), "finite"));
        QVERIFY(error(t.setGroupIndex({0, 1}), "one per input column"));
        auto tern = ql::QuantizedTensor::create(1, 4, {"ternary", Granularity::PerChannel, 0}).value();
        QVERIFY(error(tern.setCode(0, 1, 3), "at most 2"));
        auto fp8 = ql::QuantizedTensor::create(1, 4, {"fp8_e4m3", Granularity::PerChannel, 0}).value();
        QVERIFY(error(fp8.setCode(0, 1, 0x7f), "NaN"));
        QVERIFY(fp8.setCode(0, 1, 0x7e).ok());
        // Per tensor: one parameter pair, whichever row sets it.
        auto pt = ql::QuantizedTensor::create(3, 2, {"int8_asym", Granularity::PerTensor, 0}).value();
        QVERIFY(pt.setParams(1, 0, {0.5f, 3.f}).ok());
        QVERIFY(pt.scales() == Eigen::MatrixXf::Constant(3, 1, 0.5f));
        Eigen::MatrixXf mixed = pt.scales();
        mixed(2, 0) = 0.25f;
        QVERIFY(
            error(ql::QuantizedTensor::fromParts(3, 2, pt.spec(), pt.packedCodes(), mixed, pt.zeros(), pt.groupIndex()),
                  "per-tensor"));
        QVERIFY(error(ql::QuantizedTensor::fromParts(3, 2, pt.spec(), pt.packedCodes(), Eigen::MatrixXf::Ones(3, 2),
                                                     pt.zeros(), pt.groupIndex()),
                      "rows x groups"));
    }
};

QTEST_GUILESS_MAIN(TestQuantizedTensor)
#include "tst_quantizedtensor.moc"
