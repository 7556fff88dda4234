// Calibration sets and the statistics pass, against a straightforward recomputation (double
// precision, full sorts) over activations captured from the same forward pass.
#include "fixturemodel.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/text/calibration.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/model/model.h"
#include "quantlens/analysis/statscollector.h"
#include "quantlens/text/tokenizer.h"
#include "testpaths.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

namespace {

// numpy.percentile(v, 100*q) with the default linear interpolation, on a sorted vector.
double percentileSorted(const std::vector<double>& v, double q)
{
    const double pos = q * double(v.size() - 1);
    const size_t k = size_t(std::floor(pos));
    const double frac = pos - double(k);
    return k + 1 < v.size() ? v[k] + frac * (v[k + 1] - v[k]) : v[k];
}

bool close(double got, double expect, double rel = 1e-4)
{
    return std::abs(got - expect) <= rel * std::max(1.0, std::abs(expect));
}

// A text tokenizer stand-in: ids are bytes + 3, no merges.
struct ByteTokenizer final : ql::Tokenizer {
    std::vector<int32_t> encode(std::string_view t) const override
    {
        std::vector<int32_t> ids;
        for (unsigned char c : t) ids.push_back(int32_t(c) + 3);
        return ids;
    }
    std::string decode(std::span<const int32_t>) const override { return {}; }
    std::string tokenText(int32_t) const override { return {}; }
    int32_t vocabSize() const override { return 259; }
    int32_t tokenId(std::string_view) const override { return -1; }
    std::string kind() const override { return "bytes"; }
};

} // namespace

class TestStats : public QObject {
    Q_OBJECT

    // Runs the statistics pass and checks every statistic against a recomputation over the
    // activations captured from the same forward pass.
    void compareWithNaive(const ql::Model& model, const std::vector<std::vector<int32_t>>& windows,
                          const ql::StatsOptions& opt, std::vector<ql::SiteStats>& sites,
                          std::vector<ql::MassiveActivation>& massive)
    {
        const int hidden = model.config().hidden, layers = model.config().layers;
        const int nSeq = int(windows.size());
        ql::StatsCollector collector(model.config(), windows, opt);
        std::map<std::string, std::vector<Eigen::MatrixXf>> captured; // name -> per sequence
        auto collect = collector.observer();
        ql::ForwardEngine engine(model.config(), model);
        engine.setObserver([&](const ql::Activation& a) {
            collect(a);
            auto& v = captured[a.name];
            v.resize(nSeq);
            v[a.sequence] = a.x;
        });
        QVERIFY(engine.run(windows, {}, {}).ok());
        std::vector<ql::ResidualStats> residuals;
        collector.finish(sites, residuals, massive);
        QCOMPARE(sites.size(), size_t(4 * layers));
        QCOMPARE(sites[0].name, std::string("layers.0.attn_in"));
        QCOMPARE(sites[3].name, std::string("layers.0.down_in"));

        for (const auto& st : sites) {
            const auto& seqs = captured.at(st.name);
            const int C = int(seqs[0].rows());
            std::vector<std::vector<double>> ch(C);
            std::vector<double> tokenMax;
            for (const auto& x : seqs)
                for (Eigen::Index t = 0; t < x.cols(); ++t) {
                    double mx = 0;
                    for (int c = 0; c < C; ++c) {
                        ch[c].push_back(x(c, t));
                        mx = std::max(mx, std::abs(double(x(c, t))));
                    }
                    tokenMax.push_back(mx);
                }
            const double n = double(ch[0].size());
            QCOMPARE(st.nTokens, int64_t(n));
            std::vector<double> absmax(C), energy(C), all;
            for (int c = 0; c < C; ++c) {
                std::vector<double> v = ch[c];
                double mean = 0;
                for (double x : v) mean += x;
                mean /= n;
                double m2 = 0, m4 = 0, e = 0, meanAbs = 0;
                for (double x : v) {
                    meanAbs += std::abs(x) / n;
                    m2 += (x - mean) * (x - mean);
                    m4 += std::pow(x - mean, 4);
                    e += x * x;
                }
                m2 /= n;
                m4 /= n;
                energy[c] = e / n;
                std::sort(v.begin(), v.end());
                absmax[c] = std::max(std::abs(v.front()), std::abs(v.back()));
                all.insert(all.end(), v.begin(), v.end());
                const QString where = QStringLiteral("%1 channel %2").arg(QString::fromStdString(st.name)).arg(c);
                QVERIFY2(close(st.mean[c], mean, 1e-4) || std::abs(st.mean[c] - mean) < 1e-6,
                         qPrintable(where + " mean"));
                QVERIFY2(close(st.var[c], m2), qPrintable(where + " var"));
                QVERIFY2(close(st.meanAbs[c], meanAbs), qPrintable(where + " mean |x|"));
                QVERIFY2(close(st.kurtosis[c], m4 / (m2 * m2) - 3), qPrintable(where + " kurtosis"));
                QVERIFY2(st.min[c] == float(v.front()) && st.max[c] == float(v.back()), qPrintable(where + " min/max"));
                QVERIFY2(st.absmax[c] == float(absmax[c]), qPrintable(where + " absmax"));
                QVERIFY2(close(st.p01[c], percentileSorted(v, 0.01)), qPrintable(where + " p01"));
                QVERIFY2(close(st.p25[c], percentileSorted(v, 0.25)), qPrintable(where + " p25"));
                QVERIFY2(close(st.p75[c], percentileSorted(v, 0.75)), qPrintable(where + " p75"));
                QVERIFY2(close(st.p99[c], percentileSorted(v, 0.99)), qPrintable(where + " p99"));
                for (int d = 0; d < C; d += 7) { // Hessian entries, sampled
                    // Products are taken in float (as GPTQ does), sums in double: a float dot
                    // product's error is bounded relative to Σ|x_c x_d| ≤ sqrt(H_cc H_dd)
                    // (Cauchy-Schwarz), the natural scale of an entry whose terms cancel.
                    double h = 0, hcc = 0, hdd = 0;
                    for (size_t t = 0; t < ch[c].size(); ++t) {
                        h += ch[c][t] * ch[d][t];
                        hcc += ch[c][t] * ch[c][t];
                        hdd += ch[d][t] * ch[d][t];
                    }
                    const double tol = 1e-5 * std::max(1.0, std::sqrt(hcc * hdd));
                    QVERIFY2(std::abs(st.hessian(c, d) - h) <= tol,
                             qPrintable(where + QStringLiteral(" hessian (%1, %2): %3, expected %4 within %5")
                                                    .arg(c)
                                                    .arg(d)
                                                    .arg(st.hessian(c, d), 0, 'g', 9)
                                                    .arg(h, 0, 'g', 9)
                                                    .arg(tol)));
                }
            }
            for (size_t t = 0; t < tokenMax.size(); ++t) QVERIFY(st.tokenAbsmax[t] == float(tokenMax[t]));
            // Energy entropy.
            double etot = 0, H = 0;
            for (double e : energy) etot += e;
            for (double e : energy)
                if (e > 0) H -= e / etot * std::log2(e / etot);
            QVERIFY2(close(st.energyEntropyBits, H), qPrintable(QString::fromStdString(st.name) + " energy entropy"));
            // Site kurtosis and the value histogram over uniform bins on [min, max].
            double gm = 0;
            for (double x : all) gm += x;
            gm /= double(all.size());
            double g2 = 0, g4 = 0;
            for (double x : all) g2 += (x - gm) * (x - gm), g4 += std::pow(x - gm, 4);
            g2 /= double(all.size());
            g4 /= double(all.size());
            QVERIFY(close(st.kurtosisSite, g4 / (g2 * g2) - 3));
            std::sort(all.begin(), all.end());
            const double lo = all.front(), hi = all.back();
            QCOMPARE(st.histEdges.front(), float(lo));
            QCOMPARE(st.histEdges.back(), float(hi));
            // Bins of the naive (double) computation; values within 1e-4 of a bin boundary may fall on
            // either side in float, so the counts may differ by at most those values.
            const int bins = opt.histogramBins;
            std::vector<double> counts(bins, 0);
            int64_t ambiguous = 0;
            for (double x : all) {
                const double pos = (x - lo) / (hi - lo) * bins;
                counts[std::min(bins - 1, int(pos))] += 1;
                const double frac = pos - std::floor(pos);
                ambiguous += frac < 1e-4 || frac > 1 - 1e-4;
            }
            double Hv = 0, diff = 0;
            for (int b = 0; b < bins; ++b) {
                diff += std::abs(st.histCounts[b] - counts[b]);
                if (counts[b] > 0) Hv -= counts[b] / double(all.size()) * std::log2(counts[b] / double(all.size()));
            }
            QVERIFY2(
                diff <= 2.0 * double(ambiguous),
                qPrintable(
                    QStringLiteral("histogram differs in %1 counts, %2 boundary values").arg(diff).arg(ambiguous)));
            QVERIFY(close(st.valueEntropyBits, Hv, 1e-3));
            // Outlier channels: absmax / median absmax > threshold.
            std::vector<double> a = absmax;
            std::sort(a.begin(), a.end());
            const double med = C % 2 ? a[C / 2] : 0.5 * (a[C / 2 - 1] + a[C / 2]);
            std::vector<int32_t> outl;
            for (int c = 0; c < C; ++c)
                if (absmax[c] / med > opt.outlierThreshold) outl.push_back(c);
            QCOMPARE(st.outlierChannels, outl);
        }

        // Residual stream and massive activations, recomputed.
        std::vector<ql::MassiveActivation> expectMassive;
        for (int L = 0; L < layers; ++L) {
            const auto& seqs = captured.at("layers." + std::to_string(L) + ".output");
            Eigen::VectorXf absmax = Eigen::VectorXf::Zero(hidden);
            std::vector<float> allAbs, tokenMedians; // every |a| of the layer; sampled tokens' median |a|
            int64_t tok = 0;
            for (int q = 0; q < nSeq; ++q)
                for (Eigen::Index t = 0; t < seqs[q].cols(); ++t, ++tok) {
                    std::vector<float> col(hidden);
                    for (int c = 0; c < hidden; ++c) {
                        col[c] = std::abs(seqs[q](c, t));
                        absmax[c] = std::max(absmax[c], col[c]);
                    }
                    QCOMPARE(residuals[L].tokenAbsmax[tok], *std::max_element(col.begin(), col.end()));
                    std::vector<float> sorted = col;
                    std::sort(sorted.begin(), sorted.end());
                    const float median = sorted[hidden / 2];
                    if (tok % 8 == 0) tokenMedians.push_back(median); // the documented sample: every 8th token
                    allAbs.insert(allAbs.end(), col.begin(), col.end());
                    for (int c = 0; c < hidden; ++c)
                        if (col[c] > 100 && col[c] > 1000 * median)
                            expectMassive.push_back({L, tok, windows[q][t], c, seqs[q](c, t)});
                }
            QVERIFY(residuals[L].absmax.isApprox(absmax, 0.f));
            // Top-3 |a| over all tokens and channels by a full sort, and the (upper) median over
            // tokens 0, 8, 16, ... of the per-token (upper) medians by full sorts: both exact, as
            // the same floats are compared.
            std::sort(allAbs.begin(), allAbs.end(), std::greater<float>());
            QVERIFY(allAbs.size() >= 3);
            for (int k = 0; k < 3; ++k)
                QVERIFY2(residuals[L].top3[k] == allAbs[size_t(k)],
                         qPrintable(QStringLiteral("layer %1 top%2: %3, expected %4")
                                        .arg(L)
                                        .arg(k + 1)
                                        .arg(residuals[L].top3[k], 0, 'g', 9)
                                        .arg(allAbs[size_t(k)], 0, 'g', 9)));
            std::sort(tokenMedians.begin(), tokenMedians.end());
            const float medianAbs = tokenMedians[tokenMedians.size() / 2];
            QVERIFY2(residuals[L].medianAbs == medianAbs,
                     qPrintable(QStringLiteral("layer %1 medianAbs: %2, expected %3")
                                    .arg(L)
                                    .arg(residuals[L].medianAbs, 0, 'g', 9)
                                    .arg(medianAbs, 0, 'g', 9)));
            QVERIFY(medianAbs > 0);
            QCOMPARE(residuals[L].tokenAbsmax.size(), size_t(tok));
        }
        QCOMPARE(massive.size(), expectMassive.size());
        for (size_t i = 0; i < massive.size(); ++i) {
            QCOMPARE(massive[i].layer, expectMassive[i].layer);
            QCOMPARE(massive[i].token, expectMassive[i].token);
            QCOMPARE(massive[i].tokenId, expectMassive[i].tokenId);
            QCOMPARE(massive[i].channel, expectMassive[i].channel);
            QCOMPARE(massive[i].value, expectMassive[i].value);
        }
    }

private slots:
    void calibrationWindows()
    {
        ByteTokenizer tok;
        std::string text;
        for (int i = 0; i < 1000; ++i) text += char('a' + i % 26);
        ql::CalibrationSpec spec;
        spec.samples = 4;
        spec.seqlen = 100;
        auto c = ql::makeCalibrationSet(text, tok, spec);
        QVERIFY(c.ok());
        QCOMPARE(c->windows.size(), size_t(4));
        QCOMPARE(c->windows[2][0], int32_t('a' + 200 % 26) + 3);
        QCOMPARE(c->sourceTokens, int64_t(1000));
        spec.sampling = ql::Sampling::Random;
        spec.seed = 5;
        auto r1 = ql::makeCalibrationSet(text, tok, spec);
        auto r2 = ql::makeCalibrationSet(text, tok, spec);
        QCOMPARE(r1->sha256, r2->sha256); // seeded: reproducible
        QVERIFY(r1->sha256 != c->sha256);
        spec.seed = 6;
        QVERIFY(ql::makeCalibrationSet(text, tok, spec)->sha256 != r1->sha256);
        for (const auto& w : r1->windows) { // every window is a real slice of the text
            const std::string s(w.size(), ' ');
            std::string back;
            for (int32_t id : w) back += char(id - 3);
            QVERIFY(text.find(back) != std::string::npos);
        }
        QCOMPARE(ql::sha256Hex("abc", 3),
                 std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    }

    void calibrationErrors()
    {
        ByteTokenizer tok;
        ql::CalibrationSpec spec;
        spec.samples = 0;
        QVERIFY(QString::fromStdString(ql::makeCalibrationSet("abc", tok, spec).message())
                    .contains("--samples must be positive"));
        spec.samples = 10;
        spec.seqlen = 512;
        const auto shortText = ql::makeCalibrationSet("abc", tok, spec);
        QVERIFY2(QString::fromStdString(shortText.message()).contains("has 3 tokens"), shortText.message().c_str());
        QTemporaryDir tmp;
        const std::string empty = tmp.path().toStdString() + "/empty.txt",
                          jsonl = tmp.path().toStdString() + "/c.jsonl";
        std::ofstream(empty).close();
        QVERIFY(QString::fromStdString(ql::readCalibrationText(empty).message()).contains("is empty"));
        std::ofstream(jsonl) << "{\"text\": \"first doc\"}\n\n{\"url\": \"x\"}\n";
        const auto bad = ql::readCalibrationText(jsonl);
        QVERIFY2(QString::fromStdString(bad.message()).contains("c.jsonl:3: line has no \"text\""),
                 bad.message().c_str());
        std::ofstream(jsonl) << "{\"text\": \"first doc\"}\n{\"text\": \"second\", \"url\": \"u\"}\n";
        QCOMPARE(*ql::readCalibrationText(jsonl), std::string("first doc\n\nsecond"));
        QVERIFY(QString::fromStdString(ql::readCalibrationText("/nonexistent.txt").message()).contains("cannot open"));
    }

    void statsMatchNaive()
    {
        qlfix::ModelSpec s;
        s.layers = 2;
        s.weightStd = 0.15f;
        auto tensors = qlfix::makeWeights(s);
        for (auto& t : tensors) // token 7 carries a huge channel 5: a massive activation and an outlier channel
            if (t.name == "model.embed_tokens.weight") t.data[size_t(7) * s.hidden + 5] = 5000.f;
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        std::ofstream(dir + "/config.json") << qlfix::configJson(s);
        QVERIFY(qlfix::writeSafetensors(dir + "/model.safetensors", tensors, {}));
        auto m = ql::Model::open(dir);
        QVERIFY2(m.ok(), m.message().c_str());

        std::vector<std::vector<int32_t>> windows(3, std::vector<int32_t>(41));
        for (int w = 0; w < 3; ++w)
            for (int t = 0; t < 41; ++t) windows[w][t] = (w * 53 + t * 17 + 1) % s.vocab;
        windows[1][9] = 7;

        ql::StatsOptions opt;
        opt.hessian = true;
        opt.histogramBins = 64;
        opt.outlierThreshold = 2.5; // low, so the outlier lists below are non-empty and compared
        std::vector<ql::SiteStats> sites;
        std::vector<ql::MassiveActivation> massive;
        compareWithNaive(*m, windows, opt, sites, massive);
        if (QTest::currentTestFailed()) return;
        // The injected channel stands out in the first site (post-norm, so by a smaller factor),
        // and is a massive activation in the residual stream of every layer.
        QVERIFY(std::find(sites[0].outlierChannels.begin(), sites[0].outlierChannels.end(), 5) !=
                sites[0].outlierChannels.end());
        QCOMPARE(massive.size(), size_t(s.layers));
        for (const auto& a : massive) {
            QCOMPARE(a.tokenId, 7);
            QCOMPARE(a.channel, 5);
            QCOMPARE(a.token, int64_t(41 + 9));
        }
    }

    void statsMatchNaiveOnSharedModels_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("stories260k") << "stories260k";
        QTest::newRow("tinystories-656k") << "tinystories-656k";
    }
    // The acceptance setting: C4 sample, 8 contiguous windows of 512 tokens.
    void statsMatchNaiveOnSharedModels()
    {
        QFETCH(QString, model);
        const QString dir = qltest::sharedModel(model);
        const QString c4 = qltest::sharedFile(QStringLiteral("data/c4/c4_en_validation_sample_first1000.jsonl"));
        QL_REQUIRE_SHARED(dir);
        QL_REQUIRE_SHARED(c4);
        auto m = ql::Model::open(dir.toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY(tok.ok());
        auto text = ql::readCalibrationText(c4.toStdString());
        QVERIFY2(text.ok(), text.message().c_str());
        ql::CalibrationSpec spec;
        spec.samples = 8;
        spec.seqlen = 512;
        auto calib = ql::makeCalibrationSet(*text, **tok, spec);
        QVERIFY2(calib.ok(), calib.message().c_str());
        ql::StatsOptions opt;
        opt.hessian = true;
        std::vector<ql::SiteStats> sites;
        std::vector<ql::MassiveActivation> massive;
        compareWithNaive(*m, calib->windows, opt, sites, massive);
        if (QTest::currentTestFailed()) return;
        size_t outliers = 0;
        for (const auto& st : sites) outliers += st.outlierChannels.size();
        qInfo("%zu sites, %zu outlier channels, %zu massive activations", sites.size(), outliers, massive.size());
    }

    void rtnMatchesNaive()
    {
        qlfix::Gaussian g(3);
        ql::RowMatrix w(5, 172);
        for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = float(g.next());
        for (int bits : {2, 3, 4, 8})
            for (int group : {32, 128, 0})
                for (bool sym : {false, true}) {
                    const ql::RowMatrix q = ql::rtnFakeQuant(w, bits, group, sym);
                    const int gs = group <= 0 ? 172 : group, maxq = (1 << bits) - 1;
                    for (int r = 0; r < 5; ++r)
                        for (int c0 = 0; c0 < 172; c0 += gs) {
                            const int len = std::min(gs, 172 - c0);
                            double lo = 0, hi = 0;
                            for (int c = c0; c < c0 + len; ++c)
                                lo = std::min(lo, double(w(r, c))), hi = std::max(hi, double(w(r, c)));
                            if (sym) lo = -std::max(-lo, hi), hi = -lo;
                            const double scale = (hi - lo) / maxq;
                            const double zero = sym ? (maxq + 1) / 2 : std::round(-lo / scale);
                            for (int c = c0; c < c0 + len; ++c) {
                                const double code = std::clamp(std::round(w(r, c) / scale) + zero, 0.0, double(maxq));
                                // At an exact half-step tie float and double division may round apart: either neighbour
                                // is right.
                                const double t = w(r, c) / scale;
                                const bool tie = std::abs(std::abs(t - std::floor(t)) - 0.5) < 1e-4;
                                const double d = std::abs(q(r, c) - scale * (code - zero));
                                QVERIFY(d < 1e-5 || (tie && std::abs(d - scale) < 1e-5));
                            }
                        }
                }
    }

    void sensitivityMatchesDirect()
    {
        qlfix::ModelSpec s;
        s.qkvBias = true; // exercises the bias term of ||Y||²
        s.weightStd = 0.15f;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        ql::CalibrationSet calib;
        calib.spec.samples = 2;
        calib.spec.seqlen = 50;
        calib.sha256 = "test";
        for (int w = 0; w < 2; ++w) {
            calib.windows.emplace_back(50);
            for (int t = 0; t < 50; ++t) calib.windows[w][t] = (w * 31 + t * 7 + 2) % s.vocab;
        }
        ql::AnalyzeOptions opt;
        opt.groupSize = 32;
        auto r = ql::analyze(*m, calib, opt);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->sensitivity.size(), size_t(14));
        QCOMPARE(r->sites.size(), size_t(8));
        QVERIFY(r->sites[0].hessian.size() == 0); // dropped unless asked to keep
        QCOMPARE(r->meta.modelSha256.size(), size_t(64));
        // Direct: capture each site's inputs, compute Y and Ŷ, compare.
        std::map<std::string, Eigen::MatrixXf> inputs;
        ql::ForwardEngine engine(m->config(), *m);
        engine.setObserver([&](const ql::Activation& a) {
            auto& x = inputs[a.name];
            x.conservativeResize(a.x.rows(), x.cols() + a.x.cols());
            x.rightCols(a.x.cols()) = a.x;
        });
        QVERIFY(engine.run(calib.windows, {}).ok());
        for (const auto& sens : r->sensitivity) {
            const auto it = std::find_if(m->linearLayers().begin(), m->linearLayers().end(),
                                         [&](const ql::LinearLayer& l) { return l.name == sens.name; });
            auto w = m->tensorAsFloat(sens.name + ".weight");
            Eigen::VectorXf b = Eigen::VectorXf::Zero(w->rows());
            if (it->hasBias) b = m->tensorAsFloat(sens.name + ".bias")->row(0).transpose();
            const Eigen::MatrixXd x = inputs.at(it->site).cast<double>();
            const Eigen::MatrixXd y = (w->cast<double>() * x).colwise() + b.cast<double>();
            QCOMPARE(sens.bits, (std::vector<int32_t>{2, 3, 4, 8}));
            for (size_t k = 0; k < sens.bits.size(); ++k) {
                const ql::RowMatrix q = ql::rtnFakeQuant(*w, sens.bits[k], 32);
                const Eigen::MatrixXd yq = (q.cast<double>() * x).colwise() + b.cast<double>();
                const double err = (y - yq).squaredNorm();
                const QString where =
                    QStringLiteral("%1 %2 bits").arg(QString::fromStdString(sens.name)).arg(sens.bits[k]);
                QVERIFY2(close(sens.proxy[k], err / 100.0, 1e-3), qPrintable(where + " proxy"));
                QVERIFY2(close(sens.relMse[k], err / y.squaredNorm(), 1e-3), qPrintable(where + " rel mse"));
                QVERIFY2(std::abs(sens.sqnrDb[k] - 10 * std::log10(y.squaredNorm() / err)) < 1e-2,
                         qPrintable(where + " sqnr"));
            }
            QVERIFY(sens.relMse[0] > sens.relMse[3]); // 2 bits are worse than 8
        }
    }

    void weightStats()
    {
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        const auto ws = ql::computeWeightStats(*m);
        QCOMPARE(ws.size(), size_t(14));
        const auto& down = ws[6];
        QCOMPARE(down.name, std::string("model.layers.0.mlp.down_proj.weight"));
        auto w = m->tensorAsFloat(down.name);
        double mean = w->cast<double>().mean(), m2 = 0, m4 = 0;
        int64_t beyond = 0;
        for (Eigen::Index i = 0; i < w->size(); ++i) {
            const double d = w->data()[i] - mean;
            m2 += d * d, m4 += d * d * d * d;
        }
        m2 /= double(w->size());
        m4 /= double(w->size());
        for (Eigen::Index i = 0; i < w->size(); ++i) beyond += std::abs(w->data()[i] - mean) > 3 * std::sqrt(m2);
        QVERIFY(close(down.kurtosis, m4 / (m2 * m2) - 3));
        QCOMPARE(down.fracBeyond3Sigma, double(beyond) / double(w->size()));
        for (Eigen::Index r = 0; r < w->rows(); ++r) {
            const double rm = w->row(r).cast<double>().mean();
            const double sd = std::sqrt((w->row(r).cast<double>().array() - rm).square().mean());
            QVERIFY(close(down.rowStd[r], sd));
            QCOMPARE(down.rowAbsmax[r], w->row(r).cwiseAbs().maxCoeff());
        }
    }

    // The weight histogram of every matrix against a naive binning: edges within 1e-6 of the
    // range's magnitude of min + (max - min)·b/256 (float32 rounding is 6e-8), counts exactly
    // those of binning each weight by binary search in the stored edges (bin b: edges[b] <= w <
    // edges[b+1], the max in the last bin), and within the boundary-straddling weights of a
    // float64 floor((w - min) / (max - min) · 256). Every matrix also holds each interior edge
    // value exactly, where a scaled-position estimate alone may pick the bin below.
    void weightHistogram()
    {
        qlfix::ModelSpec s;
        s.intermediate = 173; // odd, so rows and columns do not split evenly over threads
        auto tensors = qlfix::makeWeights(s);
        for (auto& t : tensors) {
            if (t.name.find("_proj.weight") == std::string::npos) continue;
            const double lo = *std::min_element(t.data.begin(), t.data.end());
            const double hi = *std::max_element(t.data.begin(), t.data.end());
            for (int b = 1; b < 256; ++b) t.data[size_t(b) * (t.data.size() / 256)] = float(lo + (hi - lo) * b / 256);
        }
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        std::ofstream(dir + "/config.json") << qlfix::configJson(s);
        QVERIFY(qlfix::writeSafetensors(dir + "/model.safetensors", tensors, {}));
        auto m = ql::Model::open(dir);
        QVERIFY2(m.ok(), m.message().c_str());
        const auto ws = ql::computeWeightStats(*m);
        QCOMPARE(ws.size(), size_t(14));
        const int bins = 256;
        for (const auto& st : ws) {
            auto w = m->tensorAsFloat(st.name);
            QVERIFY2(w.ok(), w.message().c_str());
            const QString where = QString::fromStdString(st.name);
            QCOMPARE(st.histCounts.size(), size_t(bins));
            QCOMPARE(st.histEdges.size(), size_t(bins + 1));
            const std::vector<float> v(w->data(), w->data() + w->size());
            const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
            QCOMPARE(st.histEdges.front(), float(lo));
            QCOMPARE(st.histEdges.back(), float(hi));
            const double mag = std::max(std::abs(lo), std::abs(hi));
            for (int b = 0; b <= bins; ++b) {
                const double expect = lo + (hi - lo) * b / bins;
                QVERIFY2(std::abs(st.histEdges[size_t(b)] - expect) <= 1e-6 * mag,
                         qPrintable(where + QStringLiteral(" edge %1: %2, expected %3")
                                                .arg(b)
                                                .arg(st.histEdges[size_t(b)], 0, 'g', 9)
                                                .arg(expect, 0, 'g', 9)));
            }
            std::vector<double> byEdges(bins, 0), byFloor(bins, 0);
            double ambiguous = 0;
            for (float x : v) {
                // Interior edges edges[1..bins-1]: how many are <= x is the bin.
                const auto it = std::upper_bound(st.histEdges.begin() + 1, st.histEdges.end() - 1, x);
                byEdges[size_t(it - (st.histEdges.begin() + 1))] += 1;
                const double pos = (double(x) - lo) / (hi - lo) * bins;
                byFloor[size_t(std::min(bins - 1, int(pos)))] += 1;
                const double frac = pos - std::floor(pos);
                ambiguous += frac < 1e-5 || frac > 1 - 1e-5;
            }
            double diff = 0;
            for (int b = 0; b < bins; ++b) {
                QVERIFY2(st.histCounts[size_t(b)] == byEdges[size_t(b)],
                         qPrintable(where + QStringLiteral(" bin %1: %2, expected %3")
                                                .arg(b)
                                                .arg(st.histCounts[size_t(b)])
                                                .arg(byEdges[size_t(b)])));
                diff += std::abs(st.histCounts[size_t(b)] - byFloor[size_t(b)]);
            }
            QVERIFY2(diff <= 2 * ambiguous,
                     qPrintable(where + QStringLiteral(": %1 counts differ from float64 binning, "
                                                       "%2 boundary values")
                                            .arg(diff)
                                            .arg(ambiguous)));
            QVERIFY(st.histCounts.back() >= 1 && st.histCounts.front() >= 1); // max and min
        }
    }
};

QTEST_GUILESS_MAIN(TestStats)
#include "tst_stats.moc"
