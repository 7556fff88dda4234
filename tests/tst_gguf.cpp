// GGUF: the block codecs against an independent decoder written here from the published block
// layouts (REFERENCE.md, ggml-common.h), the file writer against the reader and against a byte
// parser written here, truncated and corrupt files, and a shared model exported and read back.
#include "testpaths.h"

#include "quantlens/export/ggmltype.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/export/ggufimport.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/export/ggufwriter.h"
#include "quantlens/model/safetensors.h"
#include "quantlens/export/ggmlmapping.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/quant/actquant.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/quantizedmodel.h"
#include "quantlens/text/tokenizer.h"

#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace {

// IEEE half to float, from the bit layout (1 sign, 5 exponent, 10 mantissa bits).
float refHalf(const uint8_t* p)
{
    const uint16_t h = uint16_t(p[0] | (p[1] << 8));
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
    return float(s ? -v : v);
}

// Decodes one row from the published layouts; independent of QuantLens's decoder.
std::vector<float> refDecode(ql::GgmlType t, const std::vector<uint8_t>& in, size_t n)
{
    std::vector<float> y(n);
    const uint8_t* p = in.data();
    switch (t) {
    case ql::GgmlType::F32: std::memcpy(y.data(), p, n * 4); break;
    case ql::GgmlType::F16:
        for (size_t j = 0; j < n; ++j) y[j] = refHalf(p + 2 * j);
        break;
    case ql::GgmlType::BF16:
        for (size_t j = 0; j < n; ++j) {
            uint32_t u = uint32_t(p[2 * j]) << 16 | uint32_t(p[2 * j + 1]) << 24;
            std::memcpy(&y[j], &u, 4);
        }
        break;
    case ql::GgmlType::Q8_0: // {f16 d; int8 qs[32]}
        for (size_t b = 0; b < n / 32; ++b)
            for (size_t j = 0; j < 32; ++j) y[32 * b + j] = refHalf(p + 34 * b) * float(int8_t(p[34 * b + 2 + j]));
        break;
    case ql::GgmlType::Q4_0:   // {f16 d; u8 qs[16]}: low nibble element j, high nibble element j+16
    case ql::GgmlType::Q4_1:   // {f16 d; f16 m; u8 qs[16]}
    case ql::GgmlType::Q5_0:   // {f16 d; u8 qh[4]; u8 qs[16]}: bit j of qh is element j's fifth bit
    case ql::GgmlType::Q5_1: { // {f16 d; f16 m; u8 qh[4]; u8 qs[16]}
        const bool affine = t == ql::GgmlType::Q4_1 || t == ql::GgmlType::Q5_1;
        const bool five = t == ql::GgmlType::Q5_0 || t == ql::GgmlType::Q5_1;
        const size_t bytes = 2 + (affine ? 2 : 0) + (five ? 4 : 0) + 16;
        for (size_t b = 0; b < n / 32; ++b) {
            const uint8_t* blk = p + bytes * b;
            const float d = refHalf(blk), m = affine ? refHalf(blk + 2) : 0.f;
            const uint8_t* qh = blk + (affine ? 4 : 2);
            const uint8_t* qs = qh + (five ? 4 : 0);
            const uint32_t high = five ? uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 |
                                             uint32_t(qh[3]) << 24
                                       : 0;
            for (size_t j = 0; j < 32; ++j) {
                int q = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
                if (five) q |= int((high >> j) & 1) << 4;
                const int offset = affine ? 0 : (five ? 16 : 8);
                y[32 * b + j] = affine ? d * float(q) + m : d * float(q - offset);
            }
        }
        break;
    }
    default: break; // the K types have their own independent decoder (tst_ggmlkquants)
    }
    return y;
}

std::vector<float> fixtureRow(size_t n, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.f, 0.02f);
    std::vector<float> x(n);
    for (auto& v : x) v = g(rng);
    x[5] = 0.4f;                                          // an outlier in the first block
    x[40] = -0.3f;                                        // a negative one in the second
    for (size_t j = 64; j < 96 && j < n; ++j) x[j] = 0.f; // an all-zero block
    return x;
}

} // namespace

class TestGguf : public QObject {
    Q_OBJECT

private slots:
    void codecs_data()
    {
        QTest::addColumn<QString>("type");
        QTest::addColumn<double>("steps"); // error bound in units of the block's step d
        for (const char* t : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"}) {
            // Rounding is half a step; an element opposite the block's extreme may clip by one step
            // (the symmetric grids have one more level below zero than above); fp16 scales add a little.
            // Codes are chosen with the unrounded scale: up to 127 (q8_0) or 31 (q5_1) levels times
            // fp16's 2^-11 relative error of d, plus m's rounding for the affine types.
            double steps = 0.52;
            if (std::strcmp(t, "q4_0") == 0 || std::strcmp(t, "q5_0") == 0) steps = 1.02;
            if (std::strcmp(t, "q8_0") == 0) steps = 0.57;
            if (std::strcmp(t, "q4_1") == 0 || std::strcmp(t, "q5_1") == 0) steps = 0.55;
            QTest::newRow(t) << QString::fromLatin1(t) << steps;
        }
    }
    void codecs()
    {
        QFETCH(QString, type);
        QFETCH(double, steps);
        auto t = ql::parseGgmlType(type.toStdString());
        QVERIFY(t);
        const size_t n = 256;
        const std::vector<float> x = fixtureRow(n, 7);
        std::vector<uint8_t> bytes(static_cast<size_t>(ql::ggmlRowBytes(*t, int64_t(n))));
        QVERIFY(ql::encodeGgmlRow(*t, x, bytes));
        std::vector<float> ours(n);
        QVERIFY(ql::decodeGgmlRow(*t, bytes, ours));
        const std::vector<float> ref = refDecode(*t, bytes, n);
        for (size_t j = 0; j < n; ++j) QCOMPARE(ours[j], ref[j]); // same bits, both decoders
        const int block = ql::ggmlTypeInfo(*t)->blockSize;
        for (size_t b = 0; b < n / size_t(block); ++b) {
            float lo = 0, hi = 0, amax = 0;
            for (int j = 0; j < block; ++j) {
                const float v = x[b * size_t(block) + size_t(j)];
                lo = std::min(lo, v), hi = std::max(hi, v), amax = std::max(amax, std::fabs(v));
            }
            double step; // the grid spacing of the block by the format's definition
            if (*t == ql::GgmlType::F32)
                step = 0;
            else if (*t == ql::GgmlType::F16)
                step = amax * std::ldexp(1.0, -10);
            else if (*t == ql::GgmlType::BF16)
                step = amax * std::ldexp(1.0, -7);
            else if (*t == ql::GgmlType::Q8_0)
                step = amax / 127;
            else if (*t == ql::GgmlType::Q4_0)
                step = amax / 8;
            else if (*t == ql::GgmlType::Q5_0)
                step = amax / 16;
            else
                step = (hi - lo) / (*t == ql::GgmlType::Q4_1 ? 15 : 31);
            for (int j = 0; j < block; ++j) {
                const size_t i = b * size_t(block) + size_t(j);
                const double err = std::fabs(double(ref[i]) - double(x[i]));
                if (err > steps * step + 1e-7)
                    QFAIL(qPrintable(QStringLiteral("%1 element %2: %3 decoded as %4, error %5 > %6 steps of %7")
                                         .arg(type)
                                         .arg(i)
                                         .arg(x[i])
                                         .arg(ref[i])
                                         .arg(err)
                                         .arg(steps)
                                         .arg(step)));
            }
        }
        // A row that does not fill whole blocks is refused with the reason.
        if (block > 1) {
            std::vector<uint8_t> small(64);
            auto bad = ql::encodeGgmlRow(*t, std::vector<float>(size_t(block) + 1, 1.f), small);
            QVERIFY(!bad);
            QVERIFY(bad.error().message.find("multiple of") != std::string::npos);
        }
    }

    void halfConversionMatchesTheBitLayout()
    {
        for (float v : {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1e-5f, 5.96e-8f, 3.14159f, 1e-9f}) {
            const uint16_t h = ql::floatToHalf(v);
            const uint8_t b[2] = {uint8_t(h & 0xff), uint8_t(h >> 8)};
            QCOMPARE(ql::halfToFloat(h), refHalf(b));
            QVERIFY(std::fabs(refHalf(b) - v) <= std::fabs(v) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25));
        }
    }

    void writerAndReaderAgree()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("t.gguf")).toStdString();
        ql::GgufWriter w;
        w.set("general.architecture", std::string("llama"));
        w.set("a.u32", uint32_t(7));
        w.set("a.i32", int32_t(-3));
        w.set("a.f32", 0.25f);
        w.set("a.bool", true);
        w.set("a.strings", std::vector<std::string>{"x", "", "▁the"});
        w.set("a.reals", std::vector<float>{1.5f, -2.f});
        w.set("a.ints", std::vector<int32_t>{1, 2, 6});
        const std::vector<float> row = fixtureRow(64, 3);
        for (const char* t : {"f32", "q8_0", "q4_1"}) {
            const ql::GgmlType type = *ql::parseGgmlType(t);
            w.addTensor(
                {std::string("w.") + t, {64, 2}, type, [row, type](std::span<uint8_t> out) -> ql::Expected<void> {
                     const int64_t rb = ql::ggmlRowBytes(type, 64);
                     for (int r = 0; r < 2; ++r)
                         QL_TRY(ql::encodeGgmlRow(type, row, out.subspan(size_t(r * rb), size_t(rb))));
                     return {};
                 }});
        }
        QVERIFY(w.write(path));
        auto g = ql::GgufFile::open(path);
        QVERIFY2(g, g ? "" : g.error().message.c_str());
        QCOMPARE(g->version(), 3u);
        QCOMPARE(std::get<std::string>(*g->value("general.architecture")), std::string("llama"));
        QCOMPARE(std::get<uint64_t>(*g->value("a.u32")), uint64_t(7));
        QCOMPARE(std::get<int32_t>(*g->value("a.i32")), -3);
        QCOMPARE(std::get<float>(*g->value("a.f32")), 0.25f);
        QCOMPARE(std::get<bool>(*g->value("a.bool")), true);
        QCOMPARE(std::get<std::vector<std::string>>(*g->value("a.strings")),
                 (std::vector<std::string>{"x", "", "▁the"}));
        QCOMPARE(std::get<std::vector<float>>(*g->value("a.reals")), (std::vector<float>{1.5f, -2.f}));
        QCOMPARE(std::get<std::vector<int32_t>>(*g->value("a.ints")), (std::vector<int32_t>{1, 2, 6}));
        QCOMPARE(std::get<uint64_t>(*g->value("general.alignment")), uint64_t(32));
        QCOMPARE(g->tensors().size(), size_t(3));

        // The layout by hand: header, then every tensor's data at a 32-byte aligned offset.
        const std::string bytes = qltest::readAll(path);
        QCOMPARE(bytes.substr(0, 4), std::string("GGUF"));
        uint64_t nTensors = 0, nMeta = 0;
        std::memcpy(&nTensors, bytes.data() + 8, 8);
        std::memcpy(&nMeta, bytes.data() + 16, 8);
        QCOMPARE(nTensors, uint64_t(3));
        QCOMPARE(nMeta, uint64_t(9)); // eight keys set here plus general.alignment
        for (const auto& t : g->tensors()) {
            QCOMPARE(t.offset % 32, uint64_t(0));
            const std::vector<uint8_t> raw(bytes.begin() + std::ptrdiff_t(t.offset),
                                           bytes.begin() + std::ptrdiff_t(t.offset + t.bytes));
            auto dec = g->readFloat(t.name);
            QVERIFY(dec);
            const std::vector<float> ref = refDecode(t.type, raw, 128);
            QCOMPARE(*dec, ref);
        }
    }

    void corruptFilesAreRefused()
    {
        QTemporaryDir dir;
        const std::string good = dir.filePath(QStringLiteral("g.gguf")).toStdString();
        ql::GgufWriter w;
        w.set("general.name", std::string("x"));
        w.addTensor({"t", {32, 4}, ql::GgmlType::Q8_0, [](std::span<uint8_t> out) -> ql::Expected<void> {
                         std::fill(out.begin(), out.end(), uint8_t(0));
                         return {};
                     }});
        QVERIFY(w.write(good));
        const std::string bytes = qltest::readAll(good);
        // Every truncation fails with a message naming the file, never reading out of bounds.
        // The last cut ends inside the tensor data (the file ends with alignment padding).
        const auto opened = ql::GgufFile::open(good);
        QVERIFY(opened);
        const auto* t = opened->tensor("t");
        for (size_t cut :
             {size_t(0), size_t(3), size_t(10), size_t(30), size_t(60), size_t(t->offset + t->bytes - 1)}) {
            const std::string p = dir.filePath(QStringLiteral("cut.gguf")).toStdString();
            std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(cut));
            auto g = ql::GgufFile::open(p);
            QVERIFY2(!g, qPrintable(QStringLiteral("cut at %1 accepted").arg(cut)));
            QVERIFY(g.error().message.find(p) != std::string::npos);
        }
        std::string bad = bytes;
        bad[0] = 'X';
        const std::string p = dir.filePath(QStringLiteral("bad.gguf")).toStdString();
        std::ofstream(p, std::ios::binary).write(bad.data(), std::streamsize(bad.size()));
        auto g = ql::GgufFile::open(p);
        QVERIFY(!g);
        QVERIFY(g.error().message.find("not a GGUF file") != std::string::npos);
        // A huge string length is refused before any allocation.
        bad = bytes;
        const uint64_t huge = ~uint64_t(0) >> 1;
        std::memcpy(bad.data() + 24, &huge, 8);
        std::ofstream(p, std::ios::binary | std::ios::trunc).write(bad.data(), std::streamsize(bad.size()));
        QVERIFY(!ql::GgufFile::open(p));
    }

    void failedWriteLeavesNothing()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("x.gguf")).toStdString();
        ql::GgufWriter w;
        w.addTensor({"t", {32}, ql::GgmlType::F32, [](std::span<uint8_t>) -> ql::Expected<void> {
                         return ql::makeError("source gone");
                     }});
        auto r = w.write(path);
        QVERIFY(!r);
        QVERIFY(r.error().message.find("t: source gone") != std::string::npos);
        QVERIFY(QDir(dir.path()).entryList(QDir::Files).isEmpty()); // neither the file nor the temporary
        QVERIFY(!w.write("/nonexistent-folder/x.gguf"));
    }

    void runCodesAreWrittenUnchanged()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        // A run: RTN codes of int4_sym g32 for Q and O, int4_asym g32 for K, int8_sym g32 for V,
        // int3_asym g32 (no ggml type holds it) for gate, and act-order groups for up.
        ql::QuantizedModel run(*model);
        std::map<std::string, std::shared_ptr<const ql::LayerResult>> results;
        for (const auto& l : model->linearLayers()) {
            ql::FormatSpec f{"int4_sym", ql::Granularity::PerGroup, 32};
            if (l.kind == ql::LinearKind::K) f.format = "int4_asym";
            if (l.kind == ql::LinearKind::V) f.format = "int8_sym";
            if (l.kind == ql::LinearKind::Gate) f.format = "int3_asym";
            const ql::RowMatrix w = *model->tensorAsFloat(l.name + ".weight");
            std::vector<int32_t> gidx;
            if (l.kind == ql::LinearKind::Up)
                for (Eigen::Index j = 0; j < w.cols(); ++j) gidx.push_back(int32_t((w.cols() - 1 - j) / 32));
            auto q = ql::quantize(w, f, gidx);
            QVERIFY2(q, q ? "" : q.error().message.c_str());
            auto r = std::make_shared<ql::LayerResult>();
            r->dequantized = q->dequantize();
            r->tensor = std::move(*q);
            results[l.name] = r;
            run.setLayer({l.name, l.block, l.kind, ql::QuantSpec{}, r});
        }
        QTemporaryDir out;
        const std::string path = out.filePath(QStringLiteral("run.gguf")).toStdString();
        ql::GgufExportOptions opt;
        opt.type = ql::GgmlType::Q8_0;
        auto rep = ql::exportGguf(*model, run, **tok, opt, path);
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        const ql::ModelConfig& c = model->config();
        for (int b = 0; b < c.layers; ++b) {
            for (ql::LinearKind k : {ql::LinearKind::Q, ql::LinearKind::K, ql::LinearKind::V, ql::LinearKind::O}) {
                const std::string name = ql::ggufLinearName(b, k);
                const ql::QuantizedTensor& qt = *results[ql::Model::linearName(b, k)]->tensor;
                const auto* info = g->tensor(name);
                QVERIFY(info);
                const ql::GgmlType want = k == ql::LinearKind::K   ? ql::GgmlType::Q4_1
                                          : k == ql::LinearKind::V ? ql::GgmlType::Q8_0
                                                                   : ql::GgmlType::Q4_0;
                QCOMPARE(uint32_t(info->type), uint32_t(want));
                const auto raw = g->readRaw(*info);
                QVERIFY(raw);
                const std::vector<float> dec = refDecode(info->type, *raw, size_t(info->elements()));
                // Every value is the run's code on the ggml grid with fp16 parameters; Q and K rows
                // are in llama.cpp's rotary order.
                const int heads = k == ql::LinearKind::Q ? c.heads : k == ql::LinearKind::K ? c.kvHeads : 0;
                const std::vector<Eigen::Index> order = heads ? ql::rotaryRowOrder(qt.rows(), heads)
                                                              : std::vector<Eigen::Index>{};
                for (Eigen::Index r = 0; r < qt.rows(); ++r) {
                    const Eigen::Index src = order.empty() ? r : order[size_t(r)];
                    for (Eigen::Index j = 0; j < qt.cols(); ++j) {
                        const ql::GroupParams p = qt.params(src, int(j / 32));
                        const float d = ql::halfToFloat(ql::floatToHalf(p.scale));
                        const float code = float(qt.code(src, j));
                        const float expect = k == ql::LinearKind::K
                                                 ? d * code + ql::halfToFloat(ql::floatToHalf(-p.scale * p.zero))
                                                 : d * (code - p.zero);
                        if (dec[size_t(r * qt.cols() + j)] != expect)
                            QFAIL(qPrintable(QStringLiteral("%1 (%2, %3): %4, expected %5")
                                                 .arg(QString::fromStdString(name))
                                                 .arg(r)
                                                 .arg(j)
                                                 .arg(dec[size_t(r * qt.cols() + j)])
                                                 .arg(expect)));
                    }
                }
            }
        }
        // The layers no ggml type holds are encoded from their dequantized weights, each with its reason.
        int kept = 0;
        for (const auto& e : rep->tensors) {
            if (e.runCodes) ++kept;
            if (e.name.find("ffn_gate") != std::string::npos)
                QVERIFY2(e.note.find("int3_asym") != std::string::npos, e.note.c_str());
            if (e.name.find("ffn_up") != std::string::npos)
                QVERIFY2(e.note.find("act-order") != std::string::npos, e.note.c_str());
            if (e.name.find("ffn_down") != std::string::npos)
                QVERIFY2(e.note.find("multiple of 32") != std::string::npos, e.note.c_str());
        }
        QCOMPARE(kept, 4 * c.layers);
    }

    void sharedModelExportsAndReadsBack()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        QTemporaryDir out;
        const std::string path = out.filePath(QStringLiteral("m.gguf")).toStdString();
        ql::GgufExportOptions opt;
        opt.type = ql::GgmlType::F32;
        auto r = ql::exportGguf(*model, *model, **tok, opt, path);
        QVERIFY2(r, r ? "" : r.error().message.c_str());
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        const ql::ModelConfig& c = model->config();
        QCOMPARE(std::get<uint64_t>(*g->value("llama.block_count")), uint64_t(c.layers));
        QCOMPARE(std::get<std::string>(*g->value("tokenizer.ggml.model")), std::string("llama"));
        QCOMPARE(int(std::get<std::vector<std::string>>(*g->value("tokenizer.ggml.tokens")).size()),
                 (*tok)->vocabSize());
        // 9 tensors per block, embeddings, final norm, and an output unless tied.
        QCOMPARE(int(g->tensors().size()), 9 * c.layers + 2 + (c.tieEmbeddings ? 0 : 1));
        // Q of block 0: row h·d + 2j + i of the file is HF row h·d + i·d/2 + j.
        const ql::RowMatrix q = *model->tensorAsFloat(ql::Model::linearName(0, ql::LinearKind::Q) + ".weight");
        auto fq = g->readFloat("blk.0.attn_q.weight");
        QVERIFY(fq);
        const int d = c.headDim;
        for (int h = 0; h < c.heads; ++h)
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < d / 2; ++j)
                    for (int col = 0; col < c.hidden; ++col)
                        QCOMPARE((*fq)[size_t((h * d + 2 * j + i) * c.hidden + col)], q(h * d + i * d / 2 + j, col));
        // V is not permuted; down keeps its [hidden, intermediate] rows.
        const ql::RowMatrix down = *model->tensorAsFloat(ql::Model::linearName(1, ql::LinearKind::Down) + ".weight");
        auto fd = g->readFloat("blk.1.ffn_down.weight");
        QVERIFY(fd);
        QCOMPARE(g->tensor("blk.1.ffn_down.weight")->dims,
                 (std::vector<uint64_t>{uint64_t(c.intermediate), uint64_t(c.hidden)}));
        QVERIFY(std::equal(fd->begin(), fd->end(), down.data()));

        // Q4_0 where rows allow; rows that are not a multiple of 32 fall back to f16 and say so.
        opt.type = ql::GgmlType::Q4_0;
        auto r4 = ql::exportGguf(*model, *model, **tok, opt, path);
        QVERIFY(r4);
        const auto g4 = ql::GgufFile::open(path);
        QVERIFY(g4);
        for (const auto& e : r4->tensors) {
            const auto* t = g4->tensor(e.name);
            QVERIFY(t);
            QCOMPARE(uint32_t(t->type), uint32_t(e.written));
            if (e.written != e.asked) QVERIFY(!e.note.empty());
        }
    }

    // A GGUF read back: the f32 export is the model exactly (weights, configuration, token ids of
    // the whole WikiText-2 test text); a run's GGUF evaluates as the run within 1e-4.
    void ggufReadsBackAsTheModelAndTheRun()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        const QString data = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")) || !QFileInfo::exists(data))
            QSKIP(qPrintable(QStringLiteral("shared model or data missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        QTemporaryDir out;
        const std::string f32 = out.filePath(QStringLiteral("f32.gguf")).toStdString();
        ql::GgufExportOptions opt;
        opt.type = ql::GgmlType::F32;
        QVERIFY(ql::exportGguf(*model, *model, **tok, opt, f32));
        auto back = ql::OpenedModel::open(f32);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        QVERIFY(back->gguf);
        QCOMPARE(back->model.dir(), f32);
        const ql::ModelConfig &a = model->config(), &b = back->model.config();
        QCOMPARE(b.hidden, a.hidden);
        QCOMPARE(b.intermediate, a.intermediate);
        QCOMPARE(b.layers, a.layers);
        QCOMPARE(b.heads, a.heads);
        QCOMPARE(b.kvHeads, a.kvHeads);
        QCOMPARE(b.headDim, a.headDim);
        QCOMPARE(b.vocab, a.vocab);
        QCOMPARE(b.maxPositions, a.maxPositions);
        QCOMPARE(b.rmsEps, a.rmsEps);
        QCOMPARE(b.ropeTheta, a.ropeTheta);
        QCOMPARE(b.tieEmbeddings, a.tieEmbeddings);
        for (const auto& [name, info] : model->tensors()) {
            auto x = model->tensorAsFloat(name);
            auto y = back->model.tensorAsFloat(name);
            QVERIFY2(y, name.c_str());
            QVERIFY2(*x == *y, name.c_str());
        }
        QCOMPARE(back->model.tensors().size(), model->tensors().size());
        std::ifstream in(data.toStdString(), std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        QVERIFY(back->tokenizer);
        const auto ids = (*tok)->encode(text);
        QVERIFY(back->tokenizer->encode(text) == ids);
        QCOMPARE(back->tokenizer->bosId(), (*tok)->bosId());
        QCOMPARE(back->tokenizer->eosId(), (*tok)->eosId());
        QCOMPARE(back->tokenizer->addsBos(), (*tok)->addsBos());
        QCOMPARE(back->tokenizer->vocabSize(), (*tok)->vocabSize());

        // A W4 g32 RTN run; the layers a ggml type cannot hold go out as f32 (their dequantized
        // weights exactly), so the only difference left is the fp16 rounding of the scales.
        ql::QuantizedModel run(*model);
        for (const auto& l : model->linearLayers()) {
            auto q = ql::quantize(*model->tensorAsFloat(l.name + ".weight"),
                                  ql::FormatSpec{"int4_sym", ql::Granularity::PerGroup, 32});
            QVERIFY2(q, q ? "" : q.error().message.c_str());
            auto r = std::make_shared<ql::LayerResult>();
            r->dequantized = q->dequantize();
            r->tensor = std::move(*q);
            run.setLayer({l.name, l.block, l.kind, ql::QuantSpec{}, r});
        }
        const std::string q4 = out.filePath(QStringLiteral("q4.gguf")).toStdString();
        QVERIFY(ql::exportGguf(*model, run, **tok, opt, q4));
        auto qback = ql::OpenedModel::open(q4);
        QVERIFY2(qback, qback ? "" : qback.error().message.c_str());
        ql::EvalOptions eo;
        eo.ctx = 128;
        eo.chunks = 8;
        const std::vector<int32_t> head(ids.begin(), ids.begin() + 4096);
        auto pr = ql::evaluatePerplexity(a, run, head, (*tok)->bosId(), eo);
        auto pg = ql::evaluatePerplexity(b, qback->model, head, (*tok)->bosId(), eo);
        QVERIFY(pr && pg);
        qInfo("run ppl %.6f, its GGUF %.6f", pr->ppl, pg->ppl);
        QVERIFY2(std::fabs(pg->ppl / pr->ppl - 1) < 1e-4, qPrintable(QString::number(pg->ppl / pr->ppl - 1)));
    }

    // A transform that unties the lm_head (a norm folded into it) gets its own output.weight.
    void untiedHeadIsWritten()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        QVERIFY(model->config().tieEmbeddings);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw);
        fw->lmHeadWeight() *= 0.5f; // unties it
        QTemporaryDir out;
        const std::string path = out.filePath(QStringLiteral("untied.gguf")).toStdString();
        ql::GgufExportOptions opt;
        opt.type = ql::GgmlType::F32;
        QVERIFY(ql::exportGguf(*model, *fw, **tok, opt, path));
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        auto head = g->readFloat("output.weight");
        QVERIFY(head);
        const ql::RowMatrix& expect = fw->lmHeadWeight();
        QVERIFY(std::equal(head->begin(), head->end(), expect.data()));
        auto emb = g->readFloat("token_embd.weight");
        QVERIFY(emb);
        QVERIFY(std::equal(emb->begin(), emb->end(), fw->embedding().data()));
        // Tied weights still write no output.weight.
        QVERIFY(ql::exportGguf(*model, *model, **tok, opt, path));
        QVERIFY(!ql::GgufFile::open(path)->tensor("output.weight"));
    }

    // A q4_1 product as llama.cpp takes it (q8_1 input: y = Σ_b d_w·fp16(d)·Σ q_w·q + m_w·fp16(d·Σq)),
    // computed here from the block bytes, against the runtime simulation: decoded weights times
    // the q8_0-rounded input plus the block minimums times q8_1Correction.
    void q8_1ProductMatchesLlamaCppFormula()
    {
        std::mt19937 rng(11);
        std::normal_distribution<float> g(0.f, 1.f);
        const int cols = 128, rows = 6, tokens = 5, blocks = cols / 32;
        ql::RowMatrix w(rows, cols);
        for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.05f * g(rng) + 0.01f;
        Eigen::MatrixXf x(cols, tokens);
        for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng) * (i % 37 == 0 ? 8.f : 1.f);
        std::vector<uint8_t> bytes(size_t(rows) * blocks * 20);
        Eigen::MatrixXf deq(rows, cols);
        ql::RowMatrix mins(rows, blocks);
        for (int r = 0; r < rows; ++r) {
            std::span<uint8_t> row(bytes.data() + size_t(r) * blocks * 20, size_t(blocks) * 20);
            QVERIFY(ql::encodeGgmlRow(ql::GgmlType::Q4_1, std::span<const float>(w.row(r).data(), cols), row));
            std::vector<float> y(cols);
            QVERIFY(ql::decodeGgmlRow(ql::GgmlType::Q4_1, row, y));
            for (int j = 0; j < cols; ++j) deq(r, j) = y[size_t(j)];
            for (int b = 0; b < blocks; ++b) mins(r, b) = refHalf(row.data() + 20 * b + 2);
        }
        ql::ActQuantSpec q8;
        q8.grid = ql::ActGrid::Q8_0;
        Eigen::MatrixXf xq, corr;
        ql::fakeQuantizeActivations(x, q8, xq);
        ql::q8_1Correction(x, corr);
        const Eigen::MatrixXf sim = deq * xq + mins * corr;
        auto h16 = [](float v) {
            const uint16_t h = ql::floatToHalf(v);
            const uint8_t b[2] = {uint8_t(h & 0xff), uint8_t(h >> 8)};
            return refHalf(b);
        };
        double worst = 0, plainWorst = 0;
        const Eigen::MatrixXf plain = deq * xq;
        for (int t = 0; t < tokens; ++t)
            for (int r = 0; r < rows; ++r) {
                double y = 0;
                for (int b = 0; b < blocks; ++b) {
                    const uint8_t* blk = bytes.data() + (size_t(r) * blocks + b) * 20;
                    float amax = 0;
                    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x(32 * b + j, t)));
                    const float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
                    int sumq = 0;
                    double dot = 0;
                    for (int j = 0; j < 32; ++j) {
                        const int q = int(std::nearbyint(x(32 * b + j, t) * id));
                        const int qw = j < 16 ? (blk[4 + j] & 15) : (blk[4 + j - 16] >> 4);
                        sumq += q;
                        dot += double(qw) * q;
                    }
                    y += double(refHalf(blk)) * h16(d) * dot + double(refHalf(blk + 2)) * h16(d * float(sumq));
                }
                worst = std::max(worst, std::abs(sim(r, t) - y) / (std::abs(y) + 1e-3));
                plainWorst = std::max(plainWorst, std::abs(plain(r, t) - y) / (std::abs(y) + 1e-3));
            }
        qInfo("q4_1 product: simulation %.2e, without the q8_1 term %.2e (max relative)", worst, plainWorst);
        QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
        QVERIFY(plainWorst > 10 * worst); // the term matters, so the check can fail
    }

    void ggufErrorsNameTheFile()
    {
        QTemporaryDir out;
        const std::string path = out.filePath(QStringLiteral("bad.gguf")).toStdString();
        {
            std::ofstream f(path, std::ios::binary);
            f << "GGUF\x03";
        }
        auto m = ql::OpenedModel::open(path);
        QVERIFY(!m);
        QVERIFY2(m.error().message.find(path) != std::string::npos, m.error().message.c_str());
        // A file with metadata but not the llama architecture.
        ql::GgufWriter w;
        w.set("general.architecture", std::string("gpt2"));
        QVERIFY(w.write(path));
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        auto c = ql::ggufConfigJson(*g);
        QVERIFY(!c);
        QVERIFY2(c.error().message.find("gpt2") != std::string::npos, c.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestGguf)
#include "tst_gguf.moc"
