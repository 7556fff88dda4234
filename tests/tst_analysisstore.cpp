// The HDF5 analysis store: every field of a synthetic analysis survives a write/read round trip
// exactly, files from before the later optional datasets still read, writes go through a
// temporary file renamed into place, bad files and foreign hashes are refused with messages
// naming them, and h5py reads the documented layout.
#include "quantlens/store/analysisstore.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using namespace ql;

namespace {

std::string hexHash(unsigned seed)
{
    std::mt19937 rng(seed);
    const char* hex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 64; ++i) s += hex[rng() % 16];
    return s;
}

// Exact element-wise equality of two sequences (Eigen vectors or std::vectors), with the first
// difference as the failure message.
template <class A, class B>
bool sameValues(const A& a, const B& b, const std::string& what, std::string* why)
{
    if (size_t(a.size()) != size_t(b.size())) {
        *why = what + ": size " + std::to_string(a.size()) + " != " + std::to_string(b.size());
        return false;
    }
    for (size_t i = 0; i < size_t(a.size()); ++i) {
        if (!(a[i] == b[i])) {
            *why = what + "[" + std::to_string(i) + "]: " + std::to_string(a[i]) + " != " + std::to_string(b[i]);
            return false;
        }
    }
    return true;
}

// QCOMPARE on float and double is fuzzy; the store must be exact.
template <class T>
std::string toText(T v)
{
    std::ostringstream os;
    os << std::setprecision(17) << v;
    return os.str();
}
#define QL_EXACT(a, b) QVERIFY2((a) == (b), (std::string(#a " != " #b ": ") + toText(a) + " vs " + toText(b)).c_str())

#define QL_SAME(a, b, what)                                                                                            \
    do {                                                                                                               \
        std::string why_;                                                                                              \
        QVERIFY2(sameValues(a, b, what, &why_), why_.c_str());                                                         \
    } while (0)

// A site with every statistic filled from rng; odd channel counts catch size mix-ups.
SiteStats makeSite(std::mt19937& rng, const std::string& name, int layer, int channels, int tokens, bool hessian)
{
    std::normal_distribution<float> nd(0.f, 3.f);
    auto vec = [&](int n) {
        Eigen::VectorXf v(n);
        for (int i = 0; i < n; ++i) v[i] = nd(rng);
        return v;
    };
    SiteStats s;
    s.name = name;
    s.layer = layer;
    s.nTokens = tokens;
    for (Eigen::VectorXf* v :
         {&s.absmax, &s.mean, &s.var, &s.kurtosis, &s.min, &s.max, &s.p01, &s.p25, &s.p75, &s.p99, &s.meanAbs})
        *v = vec(channels);
    for (int t = 0; t < tokens; ++t) s.tokenAbsmax.push_back(std::abs(nd(rng)) * 1e3f);
    const int bins = 7 + layer;
    for (int b = 0; b < bins; ++b) s.histCounts.push_back(double(rng() % 100000) + 0.25);
    for (int b = 0; b <= bins; ++b) s.histEdges.push_back(-4.f + 0.37f * float(b));
    s.energyEntropyBits = 6.123456789012345 + layer;
    s.valueEntropyBits = 3.3333333333333335;
    s.kurtosisSite = 41.00000000000001;
    s.absmaxSite = 1234.5678901234567;
    s.outlierThreshold = 17.5;
    if (channels > 100) s.outlierChannels = {3, 99, channels - 1};
    if (hessian) {
        // Not symmetric, so a transposed write or read shows; values exact in float32.
        s.hessian.resize(channels, channels);
        for (int i = 0; i < channels; ++i)
            for (int j = 0; j < channels; ++j) s.hessian(i, j) = double(float(i * 1000 + j) + 0.5f);
    }
    return s;
}

AnalysisResult makeResult()
{
    std::mt19937 rng(20240611);
    AnalysisResult r;
    r.meta.quantlensVersion = "0.3.0-test";
    r.meta.modelDir = "/models/tiny ü-模型";
    r.meta.modelSha256 = hexHash(1);
    r.meta.calibSha256 = hexHash(2);
    r.meta.samples = 8;
    r.meta.seqlen = 37;
    r.meta.sampling = "random";
    r.meta.seed = 0xFEDCBA9876543210ull; // above INT64_MAX: must stay unsigned
    // Not alphabetical (layers.0 < layers.1. < layers.10) so the original order must be stored.
    r.sites.push_back(makeSite(rng, "layers.1.mlp_in", 1, 172, 37, false));
    r.sites.push_back(makeSite(rng, "layers.0.attn_in", 0, 13, 37, true));
    r.sites.push_back(makeSite(rng, "layers.10.down_in", 10, 5, 0, false));
    for (int layer : {0, 1, 2, 10}) {
        ResidualStats res;
        res.layer = layer;
        res.absmax = Eigen::VectorXf::LinSpaced(11, 0.f, float(layer) + 0.1f);
        for (int t = 0; t < 9; ++t) res.tokenAbsmax.push_back(float(t * layer) + 0.125f);
        // Not representable in few bits, so a float64 attribute or a narrowed read would show.
        res.top3 = {4567.891f + float(layer), 123.456789f, 0.1f * float(layer) + 1e-7f};
        res.medianAbs = 0.0312345678f + float(layer);
        r.residuals.push_back(res);
    }
    r.massive = {{2, 5000000000LL, 128000, 171, 2345.75f}, {2, 3, 1, 0, -731.5f}, {10, 36, 42, 4, 100.001f}};
    WeightStats w1{"model.layers.0.self_attn.q_proj.weight",
                   Eigen::VectorXf::LinSpaced(13, 0.01f, 0.9f),
                   Eigen::VectorXf::LinSpaced(13, 0.001f, 0.1f),
                   2.718281828459045,
                   0.0123456789,
                   {},
                   {}};
    WeightStats w2{
        "lm_head.weight", Eigen::VectorXf::Constant(3, 0.5f), Eigen::VectorXf::Constant(3, 0.25f), -0.5, 0, {}, {}};
    for (int b = 0; b < 5; ++b) w1.histCounts.push_back(double(b * b) + 1e6);
    for (int b = 0; b <= 5; ++b) w1.histEdges.push_back(-0.3f + 0.1234567f * float(b));
    r.weights = {w1, w2}; // w2 keeps an empty histogram
    LayerSensitivity s1{
        "model.layers.0.self_attn.q_proj", {2, 3, 4, 8},          {1.5, 0.3, 0.07, 1e-5}, {0.1, 0.02, 0.004, 1e-7},
        {9.5, 17.25, 23.1, 48.0},          {0.9, 0.2, 0.05, 1e-6}};
    LayerSensitivity s2{"model.layers.0.mlp.down_proj", {4, 8}, {0.2, 0.001}, {0.01, 1e-4}, {20.0, 40.0}, {}};
    r.sensitivity = {s1, s2};
    return r;
}

void compareResults(const AnalysisResult& a, const AnalysisResult& b)
{
    QCOMPARE(a.meta.schemaVersion, 1);
    QCOMPARE(a.meta.quantlensVersion, b.meta.quantlensVersion);
    QCOMPARE(a.meta.modelDir, b.meta.modelDir);
    QCOMPARE(a.meta.modelSha256, b.meta.modelSha256);
    QCOMPARE(a.meta.calibSha256, b.meta.calibSha256);
    QCOMPARE(a.meta.samples, b.meta.samples);
    QCOMPARE(a.meta.seqlen, b.meta.seqlen);
    QCOMPARE(a.meta.sampling, b.meta.sampling);
    QCOMPARE(a.meta.seed, b.meta.seed);

    QCOMPARE(a.sites.size(), b.sites.size());
    for (size_t i = 0; i < a.sites.size(); ++i) {
        const SiteStats &x = a.sites[i], &y = b.sites[i];
        QCOMPARE(x.name, y.name);
        QCOMPARE(x.layer, y.layer);
        QCOMPARE(x.nTokens, y.nTokens);
        QL_SAME(x.absmax, y.absmax, x.name + " absmax");
        QL_SAME(x.mean, y.mean, x.name + " mean");
        QL_SAME(x.var, y.var, x.name + " var");
        QL_SAME(x.kurtosis, y.kurtosis, x.name + " kurtosis");
        QL_SAME(x.min, y.min, x.name + " min");
        QL_SAME(x.max, y.max, x.name + " max");
        QL_SAME(x.p01, y.p01, x.name + " p01");
        QL_SAME(x.p25, y.p25, x.name + " p25");
        QL_SAME(x.p75, y.p75, x.name + " p75");
        QL_SAME(x.p99, y.p99, x.name + " p99");
        QL_SAME(x.meanAbs, y.meanAbs, x.name + " meanAbs");
        QL_SAME(x.tokenAbsmax, y.tokenAbsmax, x.name + " tokenAbsmax");
        QL_SAME(x.histCounts, y.histCounts, x.name + " histCounts");
        QL_SAME(x.histEdges, y.histEdges, x.name + " histEdges");
        QL_SAME(x.outlierChannels, y.outlierChannels, x.name + " outlierChannels");
        QL_EXACT(x.energyEntropyBits, y.energyEntropyBits);
        QL_EXACT(x.valueEntropyBits, y.valueEntropyBits);
        QL_EXACT(x.kurtosisSite, y.kurtosisSite);
        QL_EXACT(x.absmaxSite, y.absmaxSite);
        QL_EXACT(x.outlierThreshold, y.outlierThreshold);
        QCOMPARE(x.hessian.rows(), y.hessian.rows());
        QCOMPARE(x.hessian.cols(), y.hessian.cols());
        QVERIFY2(x.hessian == y.hessian, (x.name + " hessian differs").c_str());
    }
    QCOMPARE(a.residuals.size(), b.residuals.size());
    for (size_t i = 0; i < a.residuals.size(); ++i) {
        QCOMPARE(a.residuals[i].layer, b.residuals[i].layer);
        QL_SAME(a.residuals[i].absmax, b.residuals[i].absmax, "residual absmax");
        QL_SAME(a.residuals[i].tokenAbsmax, b.residuals[i].tokenAbsmax, "residual tokenAbsmax");
        QL_SAME(a.residuals[i].top3, b.residuals[i].top3, "residual top3");
        QL_EXACT(a.residuals[i].medianAbs, b.residuals[i].medianAbs);
    }
    QCOMPARE(a.massive.size(), b.massive.size());
    for (size_t i = 0; i < a.massive.size(); ++i) {
        QCOMPARE(a.massive[i].layer, b.massive[i].layer);
        QCOMPARE(a.massive[i].token, b.massive[i].token);
        QCOMPARE(a.massive[i].tokenId, b.massive[i].tokenId);
        QCOMPARE(a.massive[i].channel, b.massive[i].channel);
        QL_EXACT(a.massive[i].value, b.massive[i].value);
    }
    QCOMPARE(a.weights.size(), b.weights.size());
    for (size_t i = 0; i < a.weights.size(); ++i) {
        QCOMPARE(a.weights[i].name, b.weights[i].name);
        QL_SAME(a.weights[i].rowAbsmax, b.weights[i].rowAbsmax, a.weights[i].name + " rowAbsmax");
        QL_SAME(a.weights[i].rowStd, b.weights[i].rowStd, a.weights[i].name + " rowStd");
        QL_EXACT(a.weights[i].kurtosis, b.weights[i].kurtosis);
        QL_EXACT(a.weights[i].fracBeyond3Sigma, b.weights[i].fracBeyond3Sigma);
        QL_SAME(a.weights[i].histCounts, b.weights[i].histCounts, a.weights[i].name + " histCounts");
        QL_SAME(a.weights[i].histEdges, b.weights[i].histEdges, a.weights[i].name + " histEdges");
    }
    QCOMPARE(a.sensitivity.size(), b.sensitivity.size());
    for (size_t i = 0; i < a.sensitivity.size(); ++i) {
        const LayerSensitivity &x = a.sensitivity[i], &y = b.sensitivity[i];
        QCOMPARE(x.name, y.name);
        QL_SAME(x.bits, y.bits, x.name + " bits");
        QL_SAME(x.proxy, y.proxy, x.name + " proxy");
        QL_SAME(x.relMse, y.relMse, x.name + " relMse");
        QL_SAME(x.sqnrDb, y.sqnrDb, x.name + " sqnrDb");
        QL_SAME(x.kl, y.kl, x.name + " kl");
    }
}

// File names in a folder, to see that no temporary file is left behind.
QStringList entries(const QString& dir)
{
    return QDir(dir).entryList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
}

} // namespace

class TestAnalysisStore : public QObject {
    Q_OBJECT

private slots:
    void roundTripKeepsEveryFieldAndOrder()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("a.h5").toStdString();
        const AnalysisResult written = makeResult();
        auto w = AnalysisStore::write(path, written);
        QVERIFY2(w.ok(), w.message().c_str());
        auto r = AnalysisStore::read(path);
        QVERIFY2(r.ok(), r.message().c_str());
        compareResults(*r, written);
        if (QTest::currentTestFailed()) return;
        // Spot checks that the comparison itself looks at the right things.
        QCOMPARE(r->sites[0].name, std::string("layers.1.mlp_in"));
        QCOMPARE(r->sites[0].absmax.size(), Eigen::Index(172));
        QL_EXACT(r->sites[1].hessian(1, 0), 1000.5);
        QL_EXACT(r->sites[1].hessian(0, 1), 1.5);
        QVERIFY(r->sites[0].hessian.size() == 0);
        QVERIFY(r->sensitivity[1].kl.empty());
        QCOMPARE(r->residuals[3].layer, 10);
        QCOMPARE(r->massive[0].token, int64_t(5000000000LL));
        QL_EXACT(r->residuals[1].top3[0], 4567.891f + 1.f);
        QL_EXACT(r->residuals[2].medianAbs, 0.0312345678f + 2.f);
        QCOMPARE(r->weights[0].histCounts.size(), size_t(5));
        QVERIFY(r->weights[1].histEdges.empty());
    }

    // A file written before the residual top3 / median_abs and the weight histograms existed:
    // made by deleting those objects from a fresh file with HDF5 itself. It must read, with the
    // new fields zero or empty and everything else intact.
    void readsFileWithoutNewerFields()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("old.h5").toStdString();
        const AnalysisResult written = makeResult();
        QVERIFY(AnalysisStore::write(path, written).ok());
        const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        QVERIFY2(file >= 0, path.c_str());
        int deleted = 0;
        for (const auto& res : written.residuals) {
            const std::string g = "/residual/" + std::to_string(res.layer);
            deleted += H5Ldelete(file, (g + "/top3").c_str(), H5P_DEFAULT) >= 0;
            deleted += H5Adelete_by_name(file, g.c_str(), "median_abs", H5P_DEFAULT) >= 0;
        }
        for (const auto& s : written.sites)
            deleted += H5Ldelete(file, ("/sites/" + s.name + "/mean_abs").c_str(), H5P_DEFAULT) >= 0;
        for (const auto& w : written.weights) {
            deleted += H5Ldelete(file, ("/weights/" + w.name + "/hist_counts").c_str(), H5P_DEFAULT) >= 0;
            deleted += H5Ldelete(file, ("/weights/" + w.name + "/hist_edges").c_str(), H5P_DEFAULT) >= 0;
        }
        QVERIFY(H5Fclose(file) >= 0);
        QCOMPARE(deleted, int(2 * written.residuals.size() + 2 * written.weights.size() + written.sites.size()));

        auto r = AnalysisStore::read(path);
        QVERIFY2(r.ok(), r.message().c_str());
        AnalysisResult expect = written; // what an old file held: the new fields at their defaults
        for (auto& res : expect.residuals) {
            res.top3 = {};
            res.medianAbs = 0;
        }
        for (auto& w : expect.weights) {
            w.histCounts.clear();
            w.histEdges.clear();
        }
        for (auto& s : expect.sites) s.meanAbs = Eigen::VectorXf();
        compareResults(*r, expect);
        if (QTest::currentTestFailed()) return;
        QCOMPARE(r->residuals[1].top3[0], 0.f); // the deletion really happened
        QVERIFY(r->weights[0].histCounts.empty());

        // A histogram whose edges do not fit its counts is refused, naming the group.
        AnalysisResult bad = makeResult();
        bad.weights[0].histEdges.pop_back();
        QVERIFY(AnalysisStore::write(path, bad).ok());
        auto b = AnalysisStore::read(path);
        QVERIFY(!b.ok());
        QVERIFY2(b.message().find("/weights/" + bad.weights[0].name +
                                  ": hist_edges has 5 values, expected one more than the 5") != std::string::npos,
                 b.message().c_str());
    }

    void readMetaReadsRootAttributes()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("a.h5").toStdString();
        AnalysisResult written = makeResult();
        QVERIFY(AnalysisStore::write(path, written).ok());
        auto m = AnalysisStore::readMeta(path);
        QVERIFY2(m.ok(), m.message().c_str());
        QCOMPARE(m->schemaVersion, 1);
        QCOMPARE(m->modelDir, written.meta.modelDir);
        QCOMPARE(m->seed, uint64_t(0xFEDCBA9876543210ull));
        QCOMPARE(m->sampling, std::string("random"));
    }

    void emptyResultRoundTrips()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("empty.h5").toStdString();
        AnalysisResult written;
        written.meta.modelSha256 = hexHash(3);
        written.meta.sampling = "contiguous";
        QVERIFY(AnalysisStore::write(path, written).ok());
        auto r = AnalysisStore::read(path);
        QVERIFY2(r.ok(), r.message().c_str());
        QVERIFY(r->massive.empty() && r->sites.empty() && r->weights.empty() && r->sensitivity.empty());
        QCOMPARE(r->meta.quantlensVersion, std::string(QL_VERSION)); // filled in when left empty
        // And a full result with only the massive list empty.
        AnalysisResult noMassive = makeResult();
        noMassive.massive.clear();
        QVERIFY(AnalysisStore::write(path, noMassive).ok());
        auto r2 = AnalysisStore::read(path);
        QVERIFY2(r2.ok(), r2.message().c_str());
        compareResults(*r2, noMassive);
    }

    void writeLeavesNoTemporaryFileAndReplaces()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("a.h5").toStdString();
        AnalysisResult first = makeResult();
        QVERIFY(AnalysisStore::write(path, first).ok());
        AnalysisResult second = makeResult();
        second.meta.samples = 99;
        second.sites.pop_back();
        QVERIFY(AnalysisStore::write(path, second).ok());
        QCOMPARE(entries(tmp.path()), QStringList{"a.h5"});
        auto r = AnalysisStore::read(path);
        QVERIFY2(r.ok(), r.message().c_str());
        compareResults(*r, second);
    }

    void writeIntoMissingFolderFails()
    {
        QTemporaryDir tmp;
        const QString dir = tmp.filePath("nope");
        auto w = AnalysisStore::write((dir + "/a.h5").toStdString(), makeResult());
        QVERIFY(!w.ok());
        QVERIFY2(w.message() == dir.toStdString() + ": folder does not exist", w.message().c_str());
        QVERIFY(!QFileInfo::exists(dir)); // not created
        QVERIFY(entries(tmp.path()).isEmpty());
    }

    void writeBelowAFileFails()
    {
        QTemporaryDir tmp;
        const QString file = tmp.filePath("plain");
        std::ofstream(file.toStdString()) << "x";
        auto w = AnalysisStore::write((file + "/a.h5").toStdString(), makeResult());
        QVERIFY(!w.ok());
        QVERIFY2(w.message().find(file.toStdString()) != std::string::npos, w.message().c_str());
        QCOMPARE(entries(tmp.path()), QStringList{"plain"});
    }

    void failedWriteKeepsOldFileAndRemovesTemporary()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("a.h5").toStdString();
        const AnalysisResult good = makeResult();
        QVERIFY(AnalysisStore::write(path, good).ok());
        // A duplicate site fails inside HDF5, after the temporary file was created.
        AnalysisResult dup = makeResult();
        dup.sites.push_back(dup.sites[1]);
        auto w = AnalysisStore::write(path, dup);
        QVERIFY(!w.ok());
        QVERIFY2(w.message().find(path) != std::string::npos, w.message().c_str());
        QVERIFY2(w.message().find("/sites/layers.0.attn_in") != std::string::npos, w.message().c_str());
        QCOMPARE(entries(tmp.path()), QStringList{"a.h5"});
        auto r = AnalysisStore::read(path);
        QVERIFY2(r.ok(), r.message().c_str());
        compareResults(*r, good);
        // A name HDF5 would split into nested groups is refused, and no file appears.
        const std::string other = tmp.filePath("b.h5").toStdString();
        AnalysisResult slash = makeResult();
        slash.weights[0].name = "model/layers.0.weight";
        auto w2 = AnalysisStore::write(other, slash);
        QVERIFY(!w2.ok());
        QVERIFY2(w2.message().find("model/layers.0.weight") != std::string::npos, w2.message().c_str());
        QCOMPARE(entries(tmp.path()), QStringList{"a.h5"});
    }

    void openForChecksHashes()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("a.h5").toStdString();
        const AnalysisResult written = makeResult();
        QVERIFY(AnalysisStore::write(path, written).ok());
        const std::string model = written.meta.modelSha256, calib = written.meta.calibSha256;

        auto ok = AnalysisStore::openFor(path, model, calib);
        QVERIFY2(ok.ok(), ok.message().c_str());
        compareResults(*ok, written);

        const std::string otherModel = hexHash(7);
        auto m = AnalysisStore::openFor(path, otherModel, calib);
        QVERIFY(!m.ok());
        const std::string mm = m.message();
        QVERIFY2(mm.rfind(path + " was made from another model", 0) == 0, mm.c_str());
        QVERIFY2(mm.find(model.substr(0, 12)) != std::string::npos, mm.c_str());
        QVERIFY2(mm.find(otherModel.substr(0, 12)) != std::string::npos, mm.c_str());
        QVERIFY2(mm.find("re-run the analysis") != std::string::npos, mm.c_str());

        const std::string otherCalib = hexHash(8);
        auto c = AnalysisStore::openFor(path, model, otherCalib);
        QVERIFY(!c.ok());
        const std::string cm = c.message();
        QVERIFY2(cm.find("another calibration set") != std::string::npos, cm.c_str());
        QVERIFY2(cm.find(calib.substr(0, 12)) != std::string::npos, cm.c_str());
        QVERIFY2(cm.find(otherCalib.substr(0, 12)) != std::string::npos, cm.c_str());
    }

    // The reuse rule, case by case: inputs first, then each measure a request can ask for.
    void coversIsTheReuseRule()
    {
        AnalysisResult r = makeResult();
        r.endToEnd = {};
        const std::string model = r.meta.modelSha256, calib = r.meta.calibSha256, heldOut = hexHash(9);
        const auto req = [&](SensitivityMode m, std::string mdl, std::string cal, std::string held) {
            return AnalysisRequest{std::move(mdl), std::move(cal), m, std::move(held)};
        };
        QVERIFY(!r.sensitivity.empty());
        QVERIFY(AnalysisStore::covers(r, req(SensitivityMode::None, model, calib, "")));
        QVERIFY(AnalysisStore::covers(r, req(SensitivityMode::Proxy, model, calib, "")));
        QCOMPARE(QString::fromStdString(AnalysisStore::missing(r, req(SensitivityMode::Full, model, calib, heldOut))),
                 QStringLiteral("it holds no end-to-end KL sensitivity"));
        for (auto& s : r.sensitivity) s.fisher.clear();
        QCOMPARE(QString::fromStdString(AnalysisStore::missing(r, req(SensitivityMode::Fisher, model, calib, ""))),
                 QStringLiteral("it holds no Fisher sensitivity"));
        for (auto& s : r.sensitivity) s.fisher.assign(s.bits.size(), 1e-3);
        QVERIFY(AnalysisStore::covers(r, req(SensitivityMode::Fisher, model, calib, "")));
        QVERIFY(AnalysisStore::missing(r, req(SensitivityMode::Proxy, hexHash(7), calib, ""))
                    .find("it was made from another model") == 0);
        QVERIFY(AnalysisStore::missing(r, req(SensitivityMode::None, model, hexHash(8), ""))
                    .find("it was made from another calibration set") == 0);

        r.endToEnd.windows = 2;
        r.endToEnd.heldOutSha256 = heldOut;
        QVERIFY(AnalysisStore::covers(r, req(SensitivityMode::Full, model, calib, heldOut)));
        const std::string other = AnalysisStore::missing(r, req(SensitivityMode::Full, model, calib, hexHash(10)));
        QVERIFY2(other.find("other held-out windows") != std::string::npos, other.c_str());

        AnalysisResult statsOnly = r;
        statsOnly.sensitivity.clear();
        QVERIFY(AnalysisStore::covers(statsOnly, req(SensitivityMode::None, model, calib, "")));
        QCOMPARE(
            QString::fromStdString(AnalysisStore::missing(statsOnly, req(SensitivityMode::Proxy, model, calib, ""))),
            QStringLiteral("it holds no per-layer sensitivity"));
    }

    void badFilesGiveClearErrors()
    {
        QTemporaryDir tmp;
        const std::string missing = tmp.filePath("missing.h5").toStdString();
        for (const auto& e : {AnalysisStore::read(missing).message(), AnalysisStore::readMeta(missing).message(),
                              AnalysisStore::openFor(missing, "a", "b").message()})
            QVERIFY2(e == missing + ": file does not exist", e.c_str());

        const std::string text = tmp.filePath("notes.h5").toStdString();
        std::ofstream(text) << "this is not HDF5\n";
        for (const auto& e : {AnalysisStore::read(text).message(), AnalysisStore::readMeta(text).message()})
            QVERIFY2(e.rfind(text + ": not an HDF5 file", 0) == 0, e.c_str());

        auto d = AnalysisStore::read(tmp.path().toStdString());
        QVERIFY2(!d.ok() && d.message().find("folder") != std::string::npos, d.message().c_str());
    }

    // A string's heap object that declares another size than its descriptor would make HDF5 copy
    // past the buffer it allocated (an AddressSanitizer report inside libhdf5 before the check):
    // both an attribute's and a dataset's string are refused, naming the file and the object.
    // A size that leaves the object's slot also breaks the walk of its collection, so the
    // refusal may name an earlier string of the same collection.
    void damagedStringHeapIsRefused()
    {
        QTemporaryDir tmp;
        const std::string good = tmp.filePath("good.h5").toStdString();
        AnalysisResult written = makeResult();
        QVERIFY(AnalysisStore::write(good, written).ok());
        std::string bytes;
        {
            std::ifstream in(good, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        struct Case {
            std::string text; // the stored string whose heap object is damaged
            uint64_t size;    // the size written into its heap object header
            bool meta;        // an attribute, which readMeta reads too (else a dataset's string)
        };
        const std::string dir = written.meta.modelDir;
        const std::vector<Case> cases{
            {dir, dir.size() + 64, true},
            {dir, uint64_t(1) << 40, true},
            {dir, dir.size() - 1, true},
            {"layers.10.down_in", 200, false},
        };
        for (size_t i = 0; i < cases.size(); ++i) {
            const Case& c = cases[i];
            // A heap object: index (2), reference count (2), reserved (4), size (8), data; the
            // text may also occur elsewhere (a link name), where no size precedes it.
            const auto sizeBefore = [&](size_t at) {
                uint64_t stored = 0;
                if (at >= 8) std::memcpy(&stored, bytes.data() + at - 8, 8);
                return stored;
            };
            size_t at = bytes.find(c.text);
            while (at != std::string::npos && sizeBefore(at) != c.text.size()) at = bytes.find(c.text, at + 1);
            QVERIFY2(at != std::string::npos, c.text.c_str());
            std::string damaged = bytes;
            std::memcpy(damaged.data() + at - 8, &c.size, 8);
            const std::string path = tmp.filePath(QStringLiteral("bad%1.h5").arg(i)).toStdString();
            std::ofstream(path, std::ios::binary) << damaged;
            auto r = AnalysisStore::read(path);
            QVERIFY2(!r.ok() && r.message().rfind(path + ": ", 0) == 0, r.message().c_str());
            QVERIFY2(r.message().find("heap") != std::string::npos, r.message().c_str());
            if (c.meta) {
                auto m = AnalysisStore::readMeta(path);
                // The first string read from the damaged collection is refused, naming its attribute.
                QVERIFY2(!m.ok() && m.message().rfind(path + ": / attribute ", 0) == 0, m.message().c_str());
                QVERIFY2(m.message().find("heap") != std::string::npos, m.message().c_str());
            }
        }
    }

    // A dataset whose dataspace declares far more elements than the file stores for it is refused
    // before any memory is allocated for it (the fuzzer's input declared 768 GiB).
    void shapeBeyondTheStoredBytesIsRefused()
    {
        QTemporaryDir tmp;
        const std::string good = tmp.filePath("good.h5").toStdString();
        QVERIFY(AnalysisStore::write(good, makeResult()).ok());
        std::string bytes;
        {
            std::ifstream in(good, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        // A version-1 dataspace message of rank 1 with its maximum size, then the dimension and
        // the maximum: 172, the channels of the site layers.1.mlp_in. Both are raised.
        std::string pattern("\x01\x01\x01\x00\x00\x00\x00\x00", 8);
        const uint64_t channels = 172, huge = uint64_t(1) << 37;
        pattern.append(reinterpret_cast<const char*>(&channels), 8);
        pattern.append(reinterpret_cast<const char*>(&channels), 8);
        const size_t at = bytes.find(pattern);
        QVERIFY(at != std::string::npos);
        std::memcpy(bytes.data() + at + 8, &huge, 8);
        std::memcpy(bytes.data() + at + 16, &huge, 8);
        const std::string bad = tmp.filePath("bad.h5").toStdString();
        std::ofstream(bad, std::ios::binary) << bytes;
        auto r = AnalysisStore::read(bad);
        QVERIFY2(!r.ok() && r.message().rfind(bad + ": ", 0) == 0, r.message().c_str());
        QVERIFY2(r.message().find("its shape declares " + std::to_string(huge * 4) +
                                  " bytes but the file stores 688") != std::string::npos,
                 r.message().c_str());
    }

    // Reads our file with h5py (layout, dtypes, strings as h5py users see them), and has h5py
    // write files without schema_version and with a newer one, which must be refused.
    void h5pyReadsTheLayout()
    {
        const QString python = QStringLiteral("/usr/bin/python3");
        if (!QFileInfo::exists(python) || QProcess::execute(python, {"-c", "import h5py"}) != 0)
            QSKIP("python3 with h5py not available (apt-get install python3-h5py)");
        QTemporaryDir tmp;
        const QString path = tmp.filePath("a.h5");
        const AnalysisResult written = makeResult();
        QVERIFY(AnalysisStore::write(path.toStdString(), written).ok());

        const char* script = R"(
import sys, json, h5py
with h5py.File(sys.argv[1], 'r') as f:
    a = f['/sites/layers.0.attn_in/absmax']
    h = f['/sites/layers.0.attn_in/hessian']
    print(json.dumps({
        'dtype': str(a.dtype), 'shape': list(a.shape), 'absmax': [float(x) for x in a[...]],
        'model_sha256': f.attrs['model_sha256'], 'model_dir': f.attrs['model_dir'],
        'seed': int(f.attrs['seed']), 'seed_dtype': str(f.attrs['seed'].dtype),
        'schema_version': int(f.attrs['schema_version']),
        'hessian_shape': list(h.shape), 'h10': float(h[1, 0]),
        'site_kurtosis': float(f['/sites/layers.0.attn_in'].attrs['kurtosis']),
        'site_order': list(f['site_order'].asstr()[...]), 'site_keys': list(f['sites'].keys()),
        'massive_value': [float(x) for x in f['massive/value'][...]],
        'token_dtype': str(f['massive/token'].dtype), 'kl': 'kl' in f['/sensitivity/model.layers.0.mlp.down_proj'],
        'top3': [float(x) for x in f['residual/1/top3'][...]], 'top3_dtype': str(f['residual/1/top3'].dtype),
        'median_abs': float(f['residual/1'].attrs['median_abs']),
        'median_abs_dtype': str(f['residual/1'].attrs['median_abs'].dtype),
        'hist_counts': [float(x) for x in f['weights/model.layers.0.self_attn.q_proj.weight/hist_counts'][...]],
        'hist_counts_dtype': str(f['weights/model.layers.0.self_attn.q_proj.weight/hist_counts'].dtype),
        'hist_edges_dtype': str(f['weights/model.layers.0.self_attn.q_proj.weight/hist_edges'].dtype),
        'empty_hist_shape': list(f['weights/lm_head.weight/hist_edges'].shape),
    }))
)";
        QProcess p;
        p.start(python, {"-c", script, path});
        QVERIFY(p.waitForFinished(60000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        const QByteArray out = p.readAllStandardOutput();
        qInfo("h5py: %s", out.trimmed().constData());
        const auto j = nlohmann::json::parse(out.toStdString());
        const SiteStats& s = written.sites[1];
        QCOMPARE(j["dtype"].get<std::string>(), std::string("float32"));
        QCOMPARE(j["shape"][0].get<int>(), int(s.absmax.size()));
        for (int i = 0; i < s.absmax.size(); ++i) QL_EXACT(j["absmax"][i].get<double>(), double(s.absmax[i]));
        QCOMPARE(j["model_sha256"].get<std::string>(), written.meta.modelSha256);
        QCOMPARE(j["model_dir"].get<std::string>(), written.meta.modelDir);
        QCOMPARE(j["seed"].get<uint64_t>(), written.meta.seed);
        QCOMPARE(j["seed_dtype"].get<std::string>(), std::string("uint64"));
        QCOMPARE(j["schema_version"].get<int>(), 1);
        QCOMPARE(j["hessian_shape"][0].get<int>(), 13);
        QL_EXACT(j["h10"].get<double>(), s.hessian(1, 0));
        QL_EXACT(j["site_kurtosis"].get<double>(), s.kurtosisSite);
        QCOMPARE(j["site_order"], nlohmann::json({"layers.1.mlp_in", "layers.0.attn_in", "layers.10.down_in"}));
        QL_EXACT(j["massive_value"][0].get<double>(), 2345.75);
        QCOMPARE(j["token_dtype"].get<std::string>(), std::string("int64"));
        QCOMPARE(j["kl"].get<bool>(), false);
        const ResidualStats& res = written.residuals[1];
        for (int k = 0; k < 3; ++k) QL_EXACT(j["top3"][k].get<double>(), double(res.top3[k]));
        QCOMPARE(j["top3_dtype"].get<std::string>(), std::string("float32"));
        QL_EXACT(j["median_abs"].get<double>(), double(res.medianAbs));
        QCOMPARE(j["median_abs_dtype"].get<std::string>(), std::string("float64"));
        QCOMPARE(j["hist_counts"].size(), written.weights[0].histCounts.size());
        QL_EXACT(j["hist_counts"][4].get<double>(), written.weights[0].histCounts[4]);
        QCOMPARE(j["hist_counts_dtype"].get<std::string>(), std::string("float64"));
        QCOMPARE(j["hist_edges_dtype"].get<std::string>(), std::string("float32"));
        QCOMPARE(j["empty_hist_shape"], nlohmann::json({0}));

        const QString newer = tmp.filePath("newer.h5"), bare = tmp.filePath("bare.h5");
        const char* maker = R"(
import sys, h5py
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['schema_version'] = 2
    f.attrs['model_sha256'] = 'abc'
with h5py.File(sys.argv[2], 'w') as f:
    f.attrs['model_sha256'] = 'abc'
    f.create_dataset('x', data=[1.0, 2.0])
)";
        QCOMPARE(QProcess::execute(python, {"-c", maker, newer, bare}), 0);
        auto n = AnalysisStore::read(newer.toStdString());
        QVERIFY(!n.ok());
        QVERIFY2(n.message().rfind(newer.toStdString() + ": schema_version 2 is newer", 0) == 0, n.message().c_str());
        auto b = AnalysisStore::readMeta(bare.toStdString());
        QVERIFY(!b.ok());
        QVERIFY2(b.message() == bare.toStdString() + ": not a QuantLens analysis file (no schema_version attribute)",
                 b.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestAnalysisStore)
#include "tst_analysisstore.moc"
