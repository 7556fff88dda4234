// Importance matrices: QuantLens's GGUF imatrix files read back, llama.cpp's legacy binary
// layout read from bytes written here, the matrix from calibration statistics against a naive
// computation, its use in the GGUF encoder, and the sensitivity it gives against naive sums and
// against the full-Hessian proxy.
#include "testpaths.h"

#include "quantlens/analysis/analysis.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/analysis/endtoend.h"
#include "quantlens/export/imatrixsensitivity.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/text/calibration.h"
#include "quantlens/export/ggmltype.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/export/imatrix.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <QTemporaryDir>
#include <QTest>

#include <cstring>
#include <fstream>
#include <random>

class TestImatrix : public QObject {
    Q_OBJECT

private slots:
    void ggufFilesRoundTrip()
    {
        ql::ImportanceMatrix m;
        m.entries["blk.0.attn_q.weight"] = {{4.f, 9.f, 0.5f}, 2.f};
        m.entries["blk.0.ffn_down.weight"] = {{1.f, 1.f}, 0.f};
        m.datasets = {"calibration.txt"};
        m.chunkCount = 7;
        m.chunkSize = 512;
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("m.imatrix.gguf")).toStdString();
        QVERIFY(ql::writeImatrix(m, path));
        // The layout llama.cpp's loader expects: F32 <name>.in_sum2 {n, 1} and <name>.counts {1, 1}.
        auto g = ql::GgufFile::open(path);
        QVERIFY(g);
        QCOMPARE(std::get<std::string>(*g->value("general.type")), std::string("imatrix"));
        const auto* sums = g->tensor("blk.0.attn_q.weight.in_sum2");
        QVERIFY(sums);
        QCOMPARE(sums->dims, (std::vector<uint64_t>{3, 1}));
        QCOMPARE(uint32_t(sums->type), uint32_t(ql::GgmlType::F32));
        QCOMPARE(g->tensor("blk.0.attn_q.weight.counts")->dims, (std::vector<uint64_t>{1, 1}));
        auto back = ql::readImatrix(path);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        QCOMPARE(back->entries.size(), size_t(2));
        QCOMPARE(back->chunkCount, 7u);
        QCOMPARE(back->chunkSize, 512u);
        QCOMPARE(back->datasets, m.datasets);
        QCOMPARE(back->importance("blk.0.attn_q.weight"), (std::vector<float>{2.f, 4.5f, 0.25f}));
        // A count of 0 reads as importance 1, as llama-quantize does.
        QCOMPARE(back->importance("blk.0.ffn_down.weight"), (std::vector<float>{1.f, 1.f}));
        QVERIFY(back->importance("blk.9.attn_q.weight").empty());
    }

    void legacyFilesAreRead()
    {
        // llama.cpp's older layout: int32 entries; per entry int32 name length, name, int32 calls,
        // int32 n, n floats (means times calls); then int32 chunks and a dataset name.
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("old.dat")).toStdString();
        {
            std::ofstream f(path, std::ios::binary);
            auto i32 = [&](int32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
            i32(1);
            const std::string name = "blk.1.ffn_up.weight";
            i32(int32_t(name.size()));
            f.write(name.data(), std::streamsize(name.size()));
            i32(4);
            i32(2);
            const float v[2] = {8.f, 2.f};
            f.write(reinterpret_cast<const char*>(v), 8);
            i32(10);
            i32(4);
            f.write("wiki", 4);
        }
        auto m = ql::readImatrix(path);
        QVERIFY2(m, m ? "" : m.error().message.c_str());
        QCOMPARE(m->importance("blk.1.ffn_up.weight"), (std::vector<float>{2.f, 0.5f}));
        QCOMPARE(m->chunkCount, 10u);
        QCOMPARE(m->datasets, std::vector<std::string>{"wiki"});
        // Truncated: the error names the file.
        std::ofstream(path, std::ios::binary | std::ios::trunc) << "\x01\x00\x00\x00\x05";
        auto bad = ql::readImatrix(path);
        QVERIFY(!bad);
        QVERIFY2(bad.error().message.find(path) != std::string::npos, bad.error().message.c_str());
    }

    void analysisGivesSumsOfSquares()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        // Statistics of made-up values per site: Σx² over tokens must come back per channel.
        std::mt19937 rng(3);
        std::normal_distribution<float> g(0.5f, 2.f);
        ql::AnalysisResult a;
        std::map<std::string, std::vector<double>> expect;
        for (const auto& l : model->linearLayers()) {
            if (expect.count(l.site)) continue;
            const int n = 50;
            std::vector<std::vector<float>> x(size_t(n), std::vector<float>(size_t(l.inFeatures)));
            for (auto& row : x)
                for (auto& v : row) v = g(rng);
            ql::SiteStats s;
            s.name = l.site;
            s.nTokens = n;
            s.mean.resize(l.inFeatures);
            s.var.resize(l.inFeatures);
            std::vector<double> sq(size_t(l.inFeatures));
            for (Eigen::Index j = 0; j < l.inFeatures; ++j) {
                double sum = 0, sum2 = 0;
                for (const auto& row : x) {
                    sum += row[size_t(j)];
                    sum2 += double(row[size_t(j)]) * row[size_t(j)];
                }
                s.mean[j] = float(sum / n);
                s.var[j] = float(sum2 / n - (sum / n) * (sum / n));
                sq[size_t(j)] = sum2;
            }
            expect[l.site] = sq;
            a.sites.push_back(s);
        }
        auto m = ql::importanceFromAnalysis(a, *model);
        QVERIFY2(m, m ? "" : m.error().message.c_str());
        QCOMPARE(m->entries.size(), model->linearLayers().size());
        for (const auto& l : model->linearLayers()) {
            const auto& e = m->entries.at(ql::ggufLinearName(l.block, l.kind));
            QCOMPARE(e.count, 50.f);
            for (size_t j = 0; j < e.sumSquares.size(); ++j)
                QVERIFY(std::abs(e.sumSquares[j] / expect[l.site][j] - 1) < 1e-5);
        }
        a.sites.pop_back();
        QVERIFY(!ql::importanceFromAnalysis(a, *model));
    }

    // With a matrix, each directly encoded weight is exactly encodeGgmlRow with its importance.
    void exportUsesTheImportance()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        auto m = std::make_shared<ql::ImportanceMatrix>();
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> u(0.01f, 10.f);
        for (const auto& l : model->linearLayers()) {
            ql::ImportanceMatrix::Entry e;
            e.count = 1;
            for (Eigen::Index j = 0; j < l.inFeatures; ++j) e.sumSquares.push_back(u(rng));
            m->entries[ql::ggufLinearName(l.block, l.kind)] = e;
        }
        QTemporaryDir out;
        const std::string plain = out.filePath(QStringLiteral("plain.gguf")).toStdString();
        const std::string weighted = out.filePath(QStringLiteral("weighted.gguf")).toStdString();
        ql::GgufExportOptions opt;
        opt.type = ql::GgmlType::Q4_0;
        QVERIFY(ql::exportGguf(*model, *model, **tok, opt, plain));
        opt.importance = m;
        QVERIFY(ql::exportGguf(*model, *model, **tok, opt, weighted));
        auto gp = ql::GgufFile::open(plain);
        auto gw = ql::GgufFile::open(weighted);
        QVERIFY(gp && gw);
        QVERIFY(gw->value("quantize.imatrix.entries_count"));
        const std::string name = "blk.2.ffn_gate.weight"; // not permuted
        const auto w = *model->tensorAsFloat(ql::Model::linearName(2, ql::LinearKind::Gate) + ".weight");
        const auto imp = m->importance(name);
        std::vector<uint8_t> expect(size_t(ql::ggmlRowBytes(ql::GgmlType::Q4_0, w.cols())) * size_t(w.rows()));
        const size_t rowBytes = expect.size() / size_t(w.rows());
        for (Eigen::Index r = 0; r < w.rows(); ++r)
            QVERIFY(ql::encodeGgmlRow(ql::GgmlType::Q4_0, std::span<const float>(w.row(r).data(), size_t(w.cols())),
                                      std::span<uint8_t>(expect.data() + size_t(r) * rowBytes, rowBytes), imp));
        QVERIFY(*gw->readRaw(*gw->tensor(name)) == expect);
        QVERIFY(*gp->readRaw(*gp->tensor(name)) != expect);
    }

    // The diagonal proxy is Σ ΔW_ij² h_j / n: a naive triple loop, and the full-Hessian formula
    // given H = diag(h), agree with it.
    void diagonalSensitivityIsTheDiagonalProxy()
    {
        std::mt19937 rng(11);
        std::normal_distribution<float> g(0.f, 1.f);
        std::uniform_real_distribution<float> u(0.001f, 50.f);
        ql::RowMatrix w(12, 96);
        for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = g(rng);
        std::vector<float> h(96);
        for (float& v : h) v = u(rng);
        const double n = 37;
        const std::vector<int> bits{2, 3, 4, 8};
        const ql::LayerSensitivity s = ql::diagonalSensitivity("l", w, h, n, bits, 32);
        ql::SiteStats site;
        site.nTokens = int64_t(n);
        Eigen::MatrixXf hm = Eigen::MatrixXf::Zero(96, 96);
        for (int j = 0; j < 96; ++j) hm(j, j) = h[size_t(j)];
        std::vector<ql::SensitivityOption> options;
        for (int b : bits) options.push_back({"rtn", b, 32});
        const auto measured = ql::measureLayerOptions("l", w, Eigen::VectorXf(), site, hm, options);
        QVERIFY2(measured.ok(), measured.message().c_str());
        const ql::LayerSensitivity& full = *measured;
        for (size_t b = 0; b < bits.size(); ++b) {
            const ql::RowMatrix q = ql::rtnFakeQuant(w, bits[b], 32);
            double err = 0, sig = 0;
            for (Eigen::Index i = 0; i < w.rows(); ++i)
                for (Eigen::Index j = 0; j < w.cols(); ++j) {
                    const double d = double(q(i, j)) - w(i, j);
                    err += d * d * h[size_t(j)];
                    sig += double(w(i, j)) * w(i, j) * h[size_t(j)];
                }
            QVERIFY(std::abs(s.proxy[b] / (err / n) - 1) < 1e-9);
            QVERIFY(std::abs(s.relMse[b] / (err / sig) - 1) < 1e-9);
            QVERIFY(std::abs(s.proxy[b] / full.proxy[b] - 1) < 1e-5); // float GEMMs in the full formula
            QVERIFY(std::abs(s.sqnrDb[b] - full.sqnrDb[b]) < 1e-4);
        }
    }

    // On a real model, the matrix made from its calibration statistics ranks layers nearly as the
    // full Hessian does (the off-diagonal terms are what the diagonal misses), and a matrix of
    // another model is refused, naming the entry.
    void imatrixSensitivityOnStories260k()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        const QString data = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")) || !QFileInfo::exists(data))
            QSKIP(qPrintable(QStringLiteral("shared model or text missing under %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok);
        auto text = ql::readCalibrationText(data.toStdString());
        QVERIFY(text);
        auto calib = ql::makeCalibrationSet(*text, **tok, {16, 256, ql::Sampling::Contiguous, 0, 0});
        QVERIFY2(calib, calib ? "" : calib.error().message.c_str());
        ql::AnalyzeOptions opt;
        auto a = ql::analyze(*model, *calib, opt);
        QVERIFY2(a, a ? "" : a.error().message.c_str());
        auto m = ql::importanceFromAnalysis(*a, *model);
        QVERIFY(m);
        auto d = ql::analyzeImatrix(*model, *m, "sha", opt);
        QVERIFY2(d, d ? "" : d.error().message.c_str());
        QCOMPARE(d->sensitivity.size(), a->sensitivity.size());
        QCOMPARE(d->meta.sampling, std::string("imatrix"));
        QCOMPARE(d->meta.samples, 16);
        QCOMPARE(d->weights.size(), a->weights.size());
        for (size_t b = 0; b < opt.bits.size(); ++b) {
            std::vector<double> diag, full;
            for (size_t i = 0; i < a->sensitivity.size(); ++i) {
                QCOMPARE(d->sensitivity[i].name, a->sensitivity[i].name);
                diag.push_back(d->sensitivity[i].relMse[b]);
                full.push_back(a->sensitivity[i].relMse[b]);
            }
            const double rho = ql::spearman(diag, full);
            qInfo("%d bits: Spearman(diagonal rel. MSE, full-Hessian rel. MSE) over %zu layers = %.3f", opt.bits[b],
                  diag.size(), rho);
            QVERIFY(rho > 0.8);
        }
        m->entries.erase(ql::ggufLinearName(1, ql::LinearKind::Down));
        auto missing = ql::analyzeImatrix(*model, *m, "sha", opt);
        QVERIFY(!missing);
        QVERIFY2(missing.error().message.find("blk.1.ffn_down.weight") != std::string::npos,
                 missing.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestImatrix)
#include "tst_imatrix.moc"
