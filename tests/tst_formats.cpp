// Weight-format table, float and NF4 element codecs and group parameters, checked against the
// recomputations of formatref.h (OCP MX v1.0 encodings, QLoRA's NF4 construction, GPTQ quant.py,
// PB-LLM, TWN) and hand-worked examples.
#include "formatref.h"
#include "quantlens/quant/formats.h"
#include "quantlens/quant/groupparams.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace qlref;

class TestFormats : public QObject {
    Q_OBJECT

private slots:
    void table()
    {
        QCOMPARE(ql::formatIds(), kIds);
        for (const std::string& id : kIds) {
            auto f = ql::findFormat(id);
            QVERIFY2(f.ok(), f.message().c_str());
            QCOMPARE(std::string((*f)->id), id);
            QCOMPARE(int((*f)->bits), idBits(id));
            if (isInt(id))
                QCOMPARE((*f)->kind, id.ends_with("_sym") ? ql::FormatKind::IntSym : ql::FormatKind::IntAsym);
            if (isFp(id)) {
                const FpRef r = fpRef(id);
                QCOMPARE((*f)->kind, ql::FormatKind::Float);
                QCOMPARE(int((*f)->expBits), r.e);
                QCOMPARE(int((*f)->manBits), r.m);
                QCOMPARE(int((*f)->expBias), r.bias);
                QCOMPARE(double(ql::floatMaxFinite(**f)), r.max);
            }
        }
        QCOMPARE(ql::intFormatId(3, true).value(), std::string("int3_sym"));
        QCOMPARE(ql::intFormatId(8, false).value(), std::string("int8_asym"));
        for (int bad : {-1, 0, 1, 9, 16}) {
            auto id = ql::intFormatId(bad, false);
            QVERIFY(!id.ok());
            QVERIFY2(id.message().find("2 to 8") != std::string::npos, id.message().c_str());
        }
        auto unknown = ql::findFormat("int4");
        QVERIFY(!unknown.ok());
        QVERIFY2(unknown.message().find("'int4'") != std::string::npos &&
                     unknown.message().find("nf4") != std::string::npos,
                 unknown.message().c_str());
    }

    void floatElements_data()
    {
        QTest::addColumn<QString>("format");
        for (const char* id : {"fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"}) QTest::newRow(id) << id;
    }
    void floatElements()
    {
        QFETCH(QString, format);
        const std::string id = format.toStdString();
        const ql::WeightFormat& f = *ql::findFormat(id).value();
        const FpRef ref = fpRef(id);
        const auto table = ql::elementTable(f);
        double maxSeen = 0, minPositive = INFINITY;
        int nonFinite = 0;
        for (uint32_t c = 0; c < (1u << f.bits); ++c) {
            const double expect = fpValue(ref, c);
            const float got = ql::floatElementValue(f, c);
            QCOMPARE(ql::isValidCode(f, c), std::isfinite(expect));
            if (std::isnan(expect)) {
                QVERIFY2(std::isnan(got) && std::isnan(table[c]), qPrintable(QString::number(c)));
            } else {
                QVERIFY2(double(got) == expect && double(table[c]) == expect,
                         qPrintable(QString("code %1: %2 vs %3").arg(c).arg(got).arg(expect)));
                QCOMPARE(ql::dequantizeCode(f, {2.f, 0.f}, c), float(2 * expect));
            }
            if (!std::isfinite(expect))
                ++nonFinite;
            else if (expect > 0) {
                maxSeen = std::max(maxSeen, expect);
                minPositive = std::min(minPositive, expect);
            }
        }
        QCOMPARE(maxSeen, ref.max);
        QCOMPARE(minPositive, std::ldexp(1.0, 1 - ref.bias - ref.m)); // smallest subnormal
        QCOMPARE(nonFinite, id == "fp8_e4m3" ? 2 : id == "fp8_e5m2" ? 8 : 0);
        QVERIFY(!ql::isValidCode(f, 1u << f.bits));
    }

    void floatKnownValues()
    {
        // Hand-decoded patterns from the OCP MX v1.0 tables.
        const struct {
            const char* id;
            uint32_t code;
            float value;
        } known[] = {
            {"fp8_e4m3", 0x38, 1.f},       {"fp8_e4m3", 0x7e, 448.f},        {"fp8_e4m3", 0xfe, -448.f},
            {"fp8_e4m3", 0x08, 0.015625f}, {"fp8_e4m3", 0x07, 0.013671875f}, {"fp8_e5m2", 0x3c, 1.f},
            {"fp8_e5m2", 0x7b, 57344.f},   {"fp8_e5m2", 0x7c, INFINITY},     {"fp8_e5m2", 0x04, 0.00006103515625f},
            {"fp6_e3m2", 0x0c, 1.f},       {"fp6_e3m2", 0x1f, 28.f},         {"fp6_e3m2", 0x01, 0.0625f},
            {"fp6_e2m3", 0x08, 1.f},       {"fp6_e2m3", 0x1f, 7.5f},         {"fp6_e2m3", 0x01, 0.125f},
            {"fp4_e2m1", 0x2, 1.f},        {"fp4_e2m1", 0x7, 6.f},           {"fp4_e2m1", 0xf, -6.f}};
        for (const auto& k : known)
            QVERIFY2(ql::floatElementValue(*ql::findFormat(k.id).value(), k.code) == k.value, k.id);
        const ql::WeightFormat& e2m1 = *ql::findFormat("fp4_e2m1").value();
        const float grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
        for (uint32_t c = 0; c < 8; ++c) {
            QCOMPARE(ql::floatElementValue(e2m1, c), grid[c]);
            QCOMPARE(ql::floatElementValue(e2m1, c | 8u), grid[c] == 0 ? -0.f : -grid[c]);
        }
    }

    void floatEncode_data() { floatElements_data(); }
    void floatEncode()
    {
        QFETCH(QString, format);
        const std::string id = format.toStdString();
        const ql::WeightFormat& f = *ql::findFormat(id).value();
        const FpRef ref = fpRef(id);
        std::vector<double> pos;
        for (uint32_t c = 0; c < (1u << (f.bits - 1)); ++c)
            if (std::isfinite(fpValue(ref, c))) pos.push_back(fpValue(ref, c));
        std::sort(pos.begin(), pos.end());
        std::vector<float> xs = {0.f,
                                 -0.f,
                                 1e-30f,
                                 -1e-30f,
                                 1e30f,
                                 -1e30f,
                                 INFINITY,
                                 -INFINITY,
                                 float(ref.max * 1.0001),
                                 float(-ref.max * 2)};
        for (size_t i = 0; i < pos.size(); ++i) {
            xs.push_back(float(pos[i]));
            xs.push_back(float(-pos[i]));
            if (i + 1 < pos.size()) { // exact ties and their neighbours
                const float mid = float((pos[i] + pos[i + 1]) / 2);
                for (float x : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, INFINITY)}) {
                    xs.push_back(x);
                    xs.push_back(-x);
                }
            }
        }
        std::mt19937 rng(7);
        std::uniform_real_distribution<double> u(-1.2, 1.2), le(1 - ref.bias - ref.m - 2, std::log2(ref.max) + 1);
        for (int i = 0; i < 3000; ++i) {
            xs.push_back(float(u(rng) * ref.max));
            xs.push_back(float((i & 1 ? -1 : 1) * std::exp2(le(rng))));
        }
        for (float x : xs) {
            const uint32_t got = ql::encodeFloatElement(f, x), expect = fpEncode(ref, double(x));
            QVERIFY2(
                got == expect,
                qPrintable(QString("x = %1: code %2, expected %3").arg(double(x), 0, 'g', 9).arg(got).arg(expect)));
        }
        QCOMPARE(ql::encodeFloatElement(f, NAN), 0u);
    }

    void nf4Codebook()
    {
        for (int i = 0; i < 16; ++i) QCOMPARE(ql::kNf4Codebook[size_t(i)], float(kNf4[i]));
        QCOMPARE(std::count_if(kNf4, kNf4 + 16, [](double v) { return v < 0; }), 7L);
        QCOMPARE(std::count_if(kNf4, kNf4 + 16, [](double v) { return v > 0; }), 8L);
        // QLoRA's construction (bitsandbytes create_normal_map, offset 0.9677083): 8 positive and 7
        // negative standard-normal quantiles on linspace(offset, 0.5), a zero, normalised by the max.
        auto ppf = [](double p) {
            double lo = -10, hi = 10;
            for (int i = 0; i < 200; ++i) {
                const double mid = (lo + hi) / 2;
                (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
            }
            return (lo + hi) / 2;
        };
        const double offset = 0.9677083;
        std::vector<double> v = {0};
        for (int i = 0; i < 8; ++i) v.push_back(ppf(offset + (0.5 - offset) * i / 8));
        for (int i = 0; i < 7; ++i) v.push_back(-ppf(offset + (0.5 - offset) * i / 7));
        std::sort(v.begin(), v.end());
        for (int i = 0; i < 16; ++i)
            QVERIFY2(std::abs(v[size_t(i)] / v.back() - double(ql::kNf4Codebook[size_t(i)])) < 5e-7,
                     qPrintable(QString::number(i)));
        // Encoding: nearest value; at a boundary one of the two neighbours.
        std::mt19937 rng(3);
        std::uniform_real_distribution<float> u(-1.3f, 1.3f);
        for (int i = 0; i < 5000; ++i) {
            const float x = u(rng);
            QCOMPARE(ql::encodeNf4(x), nf4Encode(double(x)));
        }
        for (uint32_t c = 0; c + 1 < 16; ++c) {
            const float mid = float((kNf4[c] + kNf4[c + 1]) / 2);
            QCOMPARE(ql::encodeNf4(std::nextafter(std::nextafter(mid, -2.f), -2.f)), c);
            QCOMPARE(ql::encodeNf4(std::nextafter(std::nextafter(mid, 2.f), 2.f)), c + 1);
            const uint32_t atMid = ql::encodeNf4(mid);
            QVERIFY(atMid == c || atMid == c + 1);
        }
        QCOMPARE(ql::encodeNf4(NAN), 7u);
    }

    void params()
    {
        auto fmt = [](const char* id) -> const ql::WeightFormat& { return *ql::findFormat(id).value(); };
        auto vec = [](std::initializer_list<float> l) {
            return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(l.begin(), Eigen::Index(l.size())));
        };
        auto check = [&](const char* id, std::initializer_list<float> values, float scale, float zero,
                         std::vector<uint32_t> codes, std::vector<float> deq, float clip = 1.f) {
            const auto p = ql::computeParams(fmt(id), vec(values), clip);
            QVERIFY2(p.ok(), p.message().c_str());
            QVERIFY2(std::abs(p->scale - scale) <= 1e-6f * std::abs(scale) && p->zero == zero,
                     qPrintable(QString("%1: scale %2 zero %3").arg(id).arg(p->scale).arg(p->zero)));
            const Eigen::VectorXf fq = ql::fakeQuantize(fmt(id), *p, vec(values));
            size_t i = 0;
            for (float x : values) {
                QCOMPARE(ql::quantizeValue(fmt(id), *p, x), codes[i]);
                QVERIFY2(std::abs(fq[Eigen::Index(i)] - deq[i]) <= 1e-6f,
                         qPrintable(QString("%1 value %2: %3").arg(id).arg(x).arg(fq[Eigen::Index(i)])));
                ++i;
            }
        };
        // Worked by hand. 0.5 / 1 is a tie: to even (0), as torch.round.
        check("int2_asym", {-1.f, 0.5f, 2.f}, 1.f, 1.f, {0, 1, 3}, {-1.f, 0.f, 2.f});
        // No negatives, symmetric: 2·absmax / 15 (the reference would clip at 1.4 here).
        check("int4_sym", {0.f, 1.f, 2.f, 3.f}, 0.4f, 8.f, {8, 10, 13, 15}, {0.f, 0.8f, 2.f, 2.8f});
        // All zero: min -1, max +1; in float 1 / (2/15) is 7.4999995, so zero is 7 (torch agrees).
        check("int4_asym", {0.f, 0.f}, 2.f / 15, 7.f, {7, 7}, {0.f, 0.f});
        check("int3_sym", {0.f}, 2.f / 7, 4.f, {4}, {0.f});
        check("int4_asym", {-2.f, 6.f}, 4.f / 15, 4.f, {0, 15}, {-16.f / 15, 44.f / 15}, 0.5f);
        check("fp4_e2m1", {-3.f, 1.5f, 0.1f}, 0.5f, 0.f, {0xf, 0x5, 0x0}, {-3.f, 1.5f, 0.f});
        check("fp8_e4m3", {0.f}, 1.f / 448, 0.f, {0}, {0.f});
        check("nf4", {-2.f, 1.f}, 2.f, 0.f, {0, 12}, {-2.f, 2 * 0.44070982933044434f});
        check("binary", {1.f, 2.f, 3.f, 6.f}, 1.5f, 3.f, {0, 0, 1, 1}, {1.5f, 1.5f, 4.5f, 4.5f});
        check("binary", {0.25f, 0.25f}, 0.f, 0.25f, {1, 1}, {0.25f, 0.25f});
        check("ternary", {-4.f, -1.f, 0.f, 1.f, 4.f}, 4.f, 1.4f, {0, 1, 1, 1, 2}, {-4.f, 0.f, 0.f, 0.f, 4.f});
        check("ternary", {0.f, 0.f}, 0.f, 0.f, {1, 1}, {0.f, 0.f});
        // Saturation and NaN never produce an invalid code.
        const ql::GroupParams p{0.1f, 3.f};
        QCOMPARE(ql::quantizeValue(fmt("int4_asym"), p, INFINITY), 15u);
        QCOMPARE(ql::quantizeValue(fmt("int4_asym"), p, -INFINITY), 0u);
        QCOMPARE(ql::quantizeValue(fmt("int4_asym"), p, NAN), 0u);
        QCOMPARE(ql::quantizeValue(fmt("ternary"), p, NAN), 1u);
        // Errors name what was expected.
        auto fails = [&](const char* id, Eigen::VectorXf v, float clip, const char* words) {
            const auto r = ql::computeParams(fmt(id), v, clip);
            QVERIFY2(!r.ok() && r.message().find(words) != std::string::npos, (id + (": " + r.message())).c_str());
        };
        fails("int4_asym", Eigen::VectorXf(), 1.f, "empty group");
        fails("int4_asym", vec({1.f, NAN}), 1.f, "finite");
        fails("nf4", vec({INFINITY}), 1.f, "finite");
        fails("int4_sym", vec({1.f}), 0.f, "(0, 1]");
        fails("int4_sym", vec({1.f}), 1.5f, "(0, 1]");
        fails("binary", vec({1.f}), 0.5f, "clip = 1");
        fails("int8_asym", vec({-3e38f, 3e38f}), 1.f, "overflows");
        for (auto [id, bad] : std::vector<std::pair<const char*, ql::GroupParams>>{{"int4_asym", {0.f, 1.f}},
                                                                                   {"int4_asym", {NAN, 1.f}},
                                                                                   {"int4_sym", {1.f, 7.f}},
                                                                                   {"fp8_e5m2", {1.f, 1.f}},
                                                                                   {"nf4", {-1.f, 0.f}},
                                                                                   {"binary", {-1.f, 0.f}},
                                                                                   {"ternary", {1.f, -0.5f}}})
            QVERIFY2(!ql::checkParams(fmt(id), bad).ok(), id);
    }
};

QTEST_GUILESS_MAIN(TestFormats)
#include "tst_formats.moc"
