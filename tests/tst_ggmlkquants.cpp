// GGUF K-quants (q2_k … q6_k) and the importance-weighted (imatrix) encoders: the bytes against
// what llama.cpp writes for the same rows, the decoder against one written here from ggml's
// published block layouts (ggml-common.h, dequantize_row_q*_K), the error each type reaches, what
// an importance vector buys, degenerate rows and refused row lengths.
#include "quantlens/export/ggmltype.h"

#include <QTest>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

// The decoders below round each product before the next addition, as ggml's dequantizers do
// (and as QuantLens's are built): no fused multiply-add, whatever -march offers.
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

constexpr int kRow = 1024; // four super-blocks

// IEEE half to float, from the bit layout (1 sign, 5 exponent, 10 mantissa bits).
float halfAt(const uint8_t* p)
{
    const uint16_t h = uint16_t(p[0] | (p[1] << 8));
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    const double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
    return float(s ? -v : v);
}

// The 6-bit scale and min of sub-block j in Q4_K/Q5_K's 12 scale bytes: j < 4 in the low six bits
// of bytes j and j+4; j >= 4 in the nibbles of byte j+4, top two bits in bytes j-4 and j.
void scaleMinK4(const uint8_t* s, int j, int& scale, int& min)
{
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Decodes super-blocks from the published layouts, one loop nest per type in the order of
// ggml's dequantize_row_q*_K; independent of QuantLens's decoder.
std::vector<float> layoutDecode(ql::GgmlType t, const std::vector<uint8_t>& in, int n)
{
    std::vector<float> out(static_cast<size_t>(n));
    float* y = out.data();
    const int bytes = ql::ggmlTypeInfo(t)->blockBytes;
    for (int b = 0; b < n / 256; ++b) {
        const uint8_t* blk = in.data() + size_t(bytes) * size_t(b);
        switch (t) {
        case ql::GgmlType::Q2_K: { // {u8 scales[16] (scale | min << 4); u8 qs[64]; f16 d; f16 dmin}
            const uint8_t* sc = blk;
            const float d = halfAt(blk + 80), dmin = halfAt(blk + 82);
            for (int half = 0; half < 2; ++half)
                for (int shift = 0; shift < 8; shift += 2)
                    for (int part = 0; part < 2; ++part) {
                        const uint8_t s = *sc++;
                        const float dl = d * float(s & 15), ml = dmin * float(s >> 4);
                        const uint8_t* q = blk + 16 + 32 * half + 16 * part;
                        for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l] >> shift) & 3) - ml;
                    }
            break;
        }
        case ql::GgmlType::Q3_K: { // {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}
            const uint8_t* s = blk + 96;
            int scale[16];
            for (int j = 0; j < 16; ++j)
                scale[j] = (((j < 8 ? s[j] : s[j - 8] >> 4) & 15) | (((s[8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) -
                           32;
            const float d = halfAt(blk + 108);
            int is = 0;
            uint8_t bit = 1;
            for (int half = 0; half < 2; ++half)
                for (int shift = 0; shift < 8; shift += 2, bit = uint8_t(bit << 1))
                    for (int part = 0; part < 2; ++part) {
                        const float dl = d * float(scale[is++]);
                        const uint8_t* q = blk + 32 + 32 * half + 16 * part;
                        const uint8_t* hm = blk + 16 * part;
                        for (int l = 0; l < 16; ++l) *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & bit) ? 0 : 4));
                    }
            break;
        }
        case ql::GgmlType::Q4_K:   // {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}
        case ql::GgmlType::Q5_K: { // {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
            const bool five = t == ql::GgmlType::Q5_K;
            const float d = halfAt(blk), dmin = halfAt(blk + 2);
            const uint8_t* qh = blk + 16;
            const uint8_t* q = blk + (five ? 48 : 16);
            for (int c = 0; c < 4; ++c, q += 32) {
                int s1, m1, s2, m2;
                scaleMinK4(blk + 4, 2 * c, s1, m1);
                scaleMinK4(blk + 4, 2 * c + 1, s2, m2);
                const float d1 = d * float(s1), dm1 = dmin * float(m1), d2 = d * float(s2), dm2 = dmin * float(m2);
                for (int l = 0; l < 32; ++l)
                    *y++ = d1 * float((q[l] & 15) + (five && ((qh[l] >> (2 * c)) & 1) ? 16 : 0)) - dm1;
                for (int l = 0; l < 32; ++l)
                    *y++ = d2 * float((q[l] >> 4) + (five && ((qh[l] >> (2 * c + 1)) & 1) ? 16 : 0)) - dm2;
            }
            break;
        }
        case ql::GgmlType::Q6_K: { // {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
            const float d = halfAt(blk + 208);
            for (int half = 0; half < 2; ++half) {
                const uint8_t* ql = blk + 64 * half;
                const uint8_t* qh = blk + 128 + 32 * half;
                const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192) + 8 * half;
                for (int l = 0; l < 32; ++l) {
                    const int is = l / 16;
                    const int q1 = ((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * float(sc[is]) * float(q1);
                    y[l + 32] = d * float(sc[is + 2]) * float(q2);
                    y[l + 64] = d * float(sc[is + 4]) * float(q3);
                    y[l + 96] = d * float(sc[is + 6]) * float(q4);
                }
                y += 128;
            }
            break;
        }
        default: break;
        }
    }
    return out;
}

} // namespace

#if defined(__clang__)
#pragma float_control(pop)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace {

// Rows of roughly normal values (the sum of twelve uniforms, σ = 1/8) with four outliers of 5–8 σ.
// Only exact or correctly rounded single operations: the same floats on every compiler and libm.
std::vector<float> fixtureRow(uint32_t seed)
{
    std::mt19937 g(seed);
    std::vector<float> x(kRow);
    for (float& v : x) {
        float s = 0.f;
        for (int k = 0; k < 12; ++k) s += float(g() >> 8) * 0x1p-24f;
        v = (s - 6.f) * 0.125f;
    }
    x[37] = 0.625f;
    x[300] = -0.875f;
    x[777] = 1.f;
    x[1000] = -0.75f;
    return x;
}

// An importance vector (imatrix row) 64 times larger on two columns of every 16, jittered.
std::vector<float> fixtureImportance()
{
    std::mt19937 g(99);
    std::vector<float> w(kRow);
    for (int i = 0; i < kRow; ++i) w[size_t(i)] = (i % 16 < 2 ? 64.f : 1.f) * (0.5f + float(g() >> 8) * 0x1p-24f);
    return w;
}

std::vector<uint8_t> encode(ql::GgmlType t, const std::vector<float>& x, const std::vector<float>& importance = {})
{
    std::vector<uint8_t> bytes(size_t(ql::ggmlRowBytes(t, int64_t(x.size()))));
    const auto r = ql::encodeGgmlRow(t, x, bytes, importance);
    if (!r) qFatal("encode failed: %s", r.error().message.c_str());
    return bytes;
}

std::vector<float> decode(ql::GgmlType t, const std::vector<uint8_t>& bytes, size_t n)
{
    std::vector<float> y(n);
    const auto r = ql::decodeGgmlRow(t, bytes, y);
    if (!r) qFatal("decode failed: %s", r.error().message.c_str());
    return y;
}

// Σ w·(x − y)² (w empty: 1) and Σ x² over one row, accumulated in double.
void addErrors(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& w, double& err,
               double& energy)
{
    for (size_t i = 0; i < x.size(); ++i) {
        const double e = double(x[i]) - double(y[i]);
        err += (w.empty() ? 1.0 : double(w[i])) * e * e;
        energy += double(x[i]) * double(x[i]);
    }
}

uint64_t fnv1a(uint64_t h, const std::vector<uint8_t>& bytes)
{
    for (uint8_t c : bytes) h = (h ^ c) * 1099511628211ull;
    return h;
}

const ql::GgmlType kKTypes[] = {ql::GgmlType::Q2_K, ql::GgmlType::Q3_K, ql::GgmlType::Q4_K, ql::GgmlType::Q5_K,
                                ql::GgmlType::Q6_K};

} // namespace

class TestGgmlKQuants : public QObject {
    Q_OBJECT

private slots:
    void typeTable()
    {
        const struct {
            const char* name;
            uint32_t id;
            int bytes;
        } expected[] = {{"Q2_K", 10, 84}, {"q3_k", 11, 110}, {"Q4_K", 12, 144}, {"q5_K", 13, 176}, {"q6_k", 14, 210}};
        for (const auto& e : expected) {
            const auto t = ql::parseGgmlType(e.name);
            QVERIFY2(t, e.name);
            QCOMPARE(uint32_t(*t), e.id);
            QCOMPARE(ql::ggmlTypeInfo(*t)->blockSize, 256);
            QCOMPARE(ql::ggmlTypeInfo(*t)->blockBytes, e.bytes);
            QCOMPARE(ql::ggmlRowBytes(*t, 512), int64_t(2 * e.bytes));
        }
    }

    // FNV-1a hashes of the bytes llama.cpp wrote for the three fixture rows (concatenated): its
    // quantize_q*(rows, n, NULL), i.e. the reference quantizers, and quantize_q*(rows, n,
    // importance), the imatrix path. Computed once with the libggml-base.so of node-llama-cpp
    // 3.22.1's prebuilt CPU binary (the one tests/llamacpp uses); equal hashes mean every byte agrees.
    void bytesMatchLlamaCpp_data()
    {
        QTest::addColumn<QString>("type");
        QTest::addColumn<quint64>("plain");
        QTest::addColumn<quint64>("weighted");
        const struct {
            const char* name;
            quint64 plain, weighted;
        } golden[] = {
            {"q2_k", 0x35aa6f3a85f322b7ull, 0xe9aa34e746d39aefull},
            {"q3_k", 0x28c8fecb55652e24ull, 0x0a04a0f8442d4d49ull},
            {"q4_k", 0x3c555f65850a4314ull, 0x53d5522e56534ef4ull},
            {"q5_k", 0x4143a7683aae01e7ull, 0xccf0a99d4c27cbadull},
            {"q6_k", 0x34fb2aa9e4027cd9ull, 0x14d811a80d0143ebull},
            {"q4_0", 0xc27bac96f4428a2aull, 0x15d4a41031a95802ull},
            {"q4_1", 0x4bde9ad946a5221cull, 0xbfdd37d7a1a1cdcdull},
            {"q5_0", 0x751d41e9e9b35cc8ull, 0x1e912649031bdf6aull},
            {"q5_1", 0xaa2015d9175dc20full, 0x42ec7db6513550dfull},
        };
        for (const auto& g : golden) QTest::newRow(g.name) << QString::fromLatin1(g.name) << g.plain << g.weighted;
    }
    void bytesMatchLlamaCpp()
    {
        QFETCH(QString, type);
        QFETCH(quint64, plain);
        QFETCH(quint64, weighted);
        const auto t = ql::parseGgmlType(type.toStdString());
        QVERIFY(t);
        const std::vector<float> importance = fixtureImportance();
        uint64_t hp = 1469598103934665603ull, hw = hp;
        for (uint32_t seed : {1u, 2u, 3u}) {
            const std::vector<float> x = fixtureRow(seed);
            hp = fnv1a(hp, encode(*t, x));
            hw = fnv1a(hw, encode(*t, x, importance));
        }
        QCOMPARE(quint64(hp), plain);
        QCOMPARE(quint64(hw), weighted);
    }

    // QuantLens's decoder gives the same bits as the layout decoder written here, for blocks from
    // both encoder paths.
    void decoderFollowsTheLayout()
    {
        const std::vector<float> importance = fixtureImportance();
        for (ql::GgmlType t : kKTypes)
            for (uint32_t seed : {1u, 2u, 3u})
                for (bool weighted : {false, true}) {
                    const std::vector<uint8_t> bytes = encode(t, fixtureRow(seed),
                                                              weighted ? importance : std::vector<float>{});
                    const std::vector<float> ours = decode(t, bytes, kRow), theirs = layoutDecode(t, bytes, kRow);
                    for (int i = 0; i < kRow; ++i)
                        if (std::bit_cast<uint32_t>(ours[size_t(i)]) != std::bit_cast<uint32_t>(theirs[size_t(i)]))
                            QFAIL(qPrintable(QStringLiteral("%1 (seed %2, importance %3) element %4: %5 against %6")
                                                 .arg(QString::fromLatin1(ql::ggmlTypeInfo(t)->name))
                                                 .arg(seed)
                                                 .arg(weighted)
                                                 .arg(i)
                                                 .arg(double(ours[size_t(i)]), 0, 'g', 9)
                                                 .arg(double(theirs[size_t(i)]), 0, 'g', 9)));
                }
    }

    // Relative RMS error ||x − x̂|| / ||x|| over the three fixture rows, without importance.
    // Measured (bit-exact with llama.cpp, so these are its numbers too): q2_k 0.3175, q3_k 0.1683,
    // q4_k 0.0793, q5_k 0.0400, q6_k 0.0210. The bounds leave about 15% for a changed fixture;
    // fewer bits must cost more error, type by type.
    void errorPerType()
    {
        const double bound[] = {0.36, 0.19, 0.09, 0.046, 0.024};
        double previous = 1.0;
        for (int k = 0; k < 5; ++k) {
            const ql::GgmlType t = kKTypes[k];
            double err = 0, energy = 0;
            for (uint32_t seed : {1u, 2u, 3u}) {
                const std::vector<float> x = fixtureRow(seed);
                addErrors(x, decode(t, encode(t, x), kRow), {}, err, energy);
            }
            const double rel = std::sqrt(err / energy);
            const QString name = QString::fromLatin1(ql::ggmlTypeInfo(t)->name);
            QVERIFY2(rel < bound[k],
                     qPrintable(QStringLiteral("%1: relative RMS error %2 >= %3").arg(name).arg(rel).arg(bound[k])));
            QVERIFY2(
                rel < previous,
                qPrintable(
                    QStringLiteral("%1: error %2 not below the previous type's %3").arg(name).arg(rel).arg(previous)));
            previous = rel;
        }
    }

    // The importance-weighted error Σ w·(x − x̂)² is lower when the encoder is given w. Measured
    // ratios (with / without): q2_k 0.28, q3_k 0.44, q4_k 0.48, q5_k 0.58, q6_k 0.57; the legacy
    // types' imatrix paths must gain too.
    void importanceLowersItsError()
    {
        const std::vector<float> importance = fixtureImportance();
        for (const char* name : {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_0", "q4_1", "q5_0", "q5_1"}) {
            const ql::GgmlType t = *ql::parseGgmlType(name);
            double plain = 0, weighted = 0, energy = 0;
            for (uint32_t seed : {1u, 2u, 3u}) {
                const std::vector<float> x = fixtureRow(seed);
                addErrors(x, decode(t, encode(t, x), kRow), importance, plain, energy);
                addErrors(x, decode(t, encode(t, x, importance), kRow), importance, weighted, energy);
            }
            const double limit = ql::ggmlTypeInfo(t)->blockSize == 256 ? 0.75 : 1.0;
            QVERIFY2(weighted < limit * plain,
                     qPrintable(QStringLiteral("%1: weighted error %2 with importance, %3 without")
                                    .arg(QString::fromLatin1(name))
                                    .arg(weighted)
                                    .arg(plain)));
        }
    }

    // A zero row decodes to zeros; constant rows come back within 0.2% (their scales are fp16);
    // tiny constants (below fp16's range once divided into steps) and an all-zero importance
    // vector give zeros, never NaN or infinity.
    void degenerateRows()
    {
        const size_t n = 512;
        for (ql::GgmlType t : kKTypes) {
            const QString name = QString::fromLatin1(ql::ggmlTypeInfo(t)->name);
            for (float c : {0.f, 0.37f, -2.5f, 1000.f, 1e-3f, -1e-6f, 1e-30f})
                for (int mode = 0; mode < 3; ++mode) { // no importance, ones, zeros
                    const std::vector<float> x(n, c);
                    const std::vector<float> importance = mode == 0 ? std::vector<float>{}
                                                                    : std::vector<float>(n, mode == 1 ? 1.f : 0.f);
                    const std::vector<float> y = decode(t, encode(t, x, importance), n);
                    for (float v : y) {
                        QVERIFY2(std::isfinite(v),
                                 qPrintable(QStringLiteral("%1: %2 decoded as %3").arg(name).arg(c).arg(v)));
                        if (c == 0.f || mode == 2)
                            QCOMPARE(v, 0.f);
                        else if (std::fabs(c) >= 0.1f)
                            QVERIFY2(
                                std::fabs(v - c) <= 2e-3f * std::fabs(c),
                                qPrintable(QStringLiteral("%1: constant %2 decoded as %3").arg(name).arg(c).arg(v)));
                    }
                }
        }
    }

    // K-types need whole super-blocks; the importance vector must match the row.
    void refusesRowsNotOfWholeSuperBlocks()
    {
        for (ql::GgmlType t : kKTypes)
            for (size_t n : {size_t(32), size_t(255), size_t(384), size_t(1000)}) {
                std::vector<uint8_t> out(4096);
                const auto r = ql::encodeGgmlRow(t, std::vector<float>(n, 1.f), out);
                QVERIFY(!r);
                QVERIFY(r.error().message.find("multiple of 256") != std::string::npos);
            }
        std::vector<uint8_t> out(size_t(ql::ggmlRowBytes(ql::GgmlType::Q4_K, 256)));
        const auto r = ql::encodeGgmlRow(ql::GgmlType::Q4_K, std::vector<float>(256, 1.f), out,
                                         std::vector<float>(128, 1.f));
        QVERIFY(!r);
        QVERIFY(r.error().message.find("importance") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestGgmlKQuants)
#include "tst_ggmlkquants.moc"
