// Outliers and massive-activation views and their item models, against a hand-built snapshot.
#include "channelstatsmodel.h"
#include "chartpanel.h"
#include "depthmodel.h"
#include "heatmapwidget.h"
#include "massivetablemodel.h"
#include "massiveview.h"
#include "outliersview.h"
#include "residualdepthmodel.h"
#include "selection.h"
#include "viewtestutil.h"

#include <QAbstractItemModelTester>
#include <QAreaSeries>
#include <QChart>
#include <QFile>
#include <QImage>
#include <QLineSeries>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace ql;
using viewtest::nonBackgroundFraction;
using viewtest::readText;

namespace {

constexpr int kHidden = 4, kInter = 6, kSeqlen = 4;

const char* kKinds[] = {"attn_in", "o_in", "mlp_in", "down_in"};

// Site statistics with known numbers: absmax[c] = base + c, except channel `spike` = base * 40.
SiteStats makeSite(int layer, int kindIndex, int channels, float base, int spike)
{
    SiteStats s;
    s.name = "layers." + std::to_string(layer) + "." + kKinds[kindIndex];
    s.layer = layer;
    s.nTokens = 8;
    const auto vec = [channels](float offset, float scale) {
        Eigen::VectorXf v(channels);
        for (int c = 0; c < channels; ++c) v[c] = offset + scale * float(c);
        return v;
    };
    s.absmax = vec(base, 1.f);
    s.absmax[spike] = base * 40.f;
    s.max = s.absmax;
    s.min = -s.absmax * 0.5f;
    s.p99 = s.absmax * 0.8f;
    s.p01 = -s.absmax * 0.4f;
    s.p75 = vec(0.25f, 0.01f);
    s.p25 = vec(-0.25f, -0.01f);
    s.mean = vec(0.01f, 0.001f);
    s.kurtosis = vec(3.f, 0.5f);
    s.absmaxSite = s.absmax.maxCoeff();
    s.kurtosisSite = 12.5;
    s.outlierChannels = {spike};
    return s;
}

SnapshotPtr makeSnapshot(bool withAnalysis = true)
{
    auto snap = std::make_shared<AnalysisSnapshot>();
    snap->modelName = "tiny";
    snap->blocks = 2;
    snap->hidden = kHidden;
    snap->seqlen = kSeqlen;
    snap->calibTokens = {0, 1, 2, 3, 0, 2, 1, 3};
    snap->tokenPieces = {"<s>", "the", "cat", " sat"};
    const char* mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const char* sites[] = {"attn_in", "attn_in", "attn_in", "o_in", "mlp_in", "mlp_in", "down_in"};
    for (int b = 0; b < 2; ++b)
        for (int i = 0; i < 7; ++i) {
            LinearLayer l;
            l.name = "model.layers." + std::to_string(b) + "." + mods[i];
            l.site = "layers." + std::to_string(b) + "." + sites[i];
            l.block = b;
            l.inFeatures = i == 6 ? kInter : kHidden;
            l.outFeatures = i == 4 || i == 5 ? kInter : kHidden;
            snap->layers.push_back(l);
        }
    if (!withAnalysis) return snap;
    auto a = std::make_shared<AnalysisResult>();
    a->meta.samples = 2;
    a->meta.seqlen = kSeqlen;
    // Block 1's down_in is deliberately missing to check missing sites show as empty.
    for (int b = 0; b < 2; ++b)
        for (int k = 0; k < 4; ++k) {
            if (b == 1 && k == 3) continue;
            a->sites.push_back(makeSite(b, k, k == 3 ? kInter : kHidden, 1.f + 10.f * b + k, (b + k) % kHidden));
        }
    a->sites.push_back(makeSite(1, 3, kInter, 7.f, 5)); // layers.1.down_in: 6 channels, spike on 5
    // Residuals stored out of order; the model sorts by block.
    ResidualStats r1;
    r1.layer = 1;
    r1.top3 = {2400.f, 900.f, 80.f};
    r1.medianAbs = 0.6f;
    ResidualStats r0;
    r0.layer = 0;
    r0.top3 = {30.f, 20.f, 10.f};
    r0.medianAbs = 0.5f;
    a->residuals = {r1, r0};
    a->massive = {MassiveActivation{1, 5, 2, 3, 2400.f}, MassiveActivation{0, 1, 7, 0, -300.f}};
    snap->analysis = a;
    return snap;
}

void checkHeaders(QAbstractItemModel& m)
{
    for (int c = 0; c < m.columnCount(); ++c)
        QVERIFY2(!m.headerData(c, Qt::Horizontal).toString().isEmpty(), qPrintable(QString::number(c)));
}

} // namespace

class TestViewsOutliers : public QObject {
    Q_OBJECT
private slots:
    void channelStatsModel();
    void depthModel();
    void residualDepthModel();
    void massiveTableModel();
    void outliersPlaceholder();
    void outliersFollowsSelection();
    void outliersWideSite();
    void outliersSampleRequests();
    void outliersExports();
    void massiveView();
};

void TestViewsOutliers::channelStatsModel()
{
    ChannelStatsModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), 0);
    const SnapshotPtr snap = makeSnapshot();
    model.setSite(snap, QStringLiteral("layers.0.mlp_in"));
    const SiteStats& s = *snap->site("layers.0.mlp_in");
    QCOMPARE(model.stats(), &s);
    QCOMPARE(model.rowCount(), kHidden);
    QCOMPARE(model.columnCount(), int(ChannelStatsModel::ColumnCount));
    checkHeaders(model);
    const int spike = s.outlierChannels[0];
    QCOMPARE(spike, 2);
    for (int c = 0; c < kHidden; ++c) {
        const auto raw = [&](int col) {
            return model.data(model.index(c, col), ChannelStatsModel::RawRole).toDouble();
        };
        QCOMPARE(raw(ChannelStatsModel::Channel), double(c));
        QCOMPARE(raw(ChannelStatsModel::Absmax), double(s.absmax[c]));
        QCOMPARE(raw(ChannelStatsModel::Min), double(s.min[c]));
        QCOMPARE(raw(ChannelStatsModel::Max), double(s.max[c]));
        QCOMPARE(raw(ChannelStatsModel::P01), double(s.p01[c]));
        QCOMPARE(raw(ChannelStatsModel::P25), double(s.p25[c]));
        QCOMPARE(raw(ChannelStatsModel::P75), double(s.p75[c]));
        QCOMPARE(raw(ChannelStatsModel::P99), double(s.p99[c]));
        QCOMPARE(raw(ChannelStatsModel::Mean), double(s.mean[c]));
        QCOMPARE(raw(ChannelStatsModel::Kurtosis), double(s.kurtosis[c]));
        QCOMPARE(raw(ChannelStatsModel::Outlier), c == spike ? 1.0 : 0.0);
        QCOMPARE(model.data(model.index(c, ChannelStatsModel::Outlier)).toString(),
                 c == spike ? QStringLiteral("yes") : QStringLiteral("no"));
    }
    QCOMPARE(model.data(model.index(spike, ChannelStatsModel::Absmax)).toString(), QStringLiteral("120"));
    model.setSite(snap, QStringLiteral("layers.9.nope"));
    QCOMPARE(model.rowCount(), 0);
    model.setSite(nullptr, QStringLiteral("layers.0.mlp_in"));
    QCOMPARE(model.rowCount(), 0);
}

void TestViewsOutliers::depthModel()
{
    DepthModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    const SnapshotPtr snap = makeSnapshot();
    model.setSnapshot(snap);
    QCOMPARE(model.rowCount(), 2);
    checkHeaders(model);
    for (int b = 0; b < 2; ++b)
        for (int col = DepthModel::AttnIn; col <= DepthModel::DownIn; ++col) {
            const std::string name = "layers." + std::to_string(b) + "." + DepthModel::siteKind(col).toStdString();
            const SiteStats* s = snap->site(name);
            QVERIFY(s);
            QCOMPARE(model.value(b, col), s->absmaxSite);
            QCOMPARE(model.data(model.index(b, col), DepthModel::RawRole).toDouble(), s->absmaxSite);
        }
    QCOMPARE(model.value(0, DepthModel::AttnIn), 40.0);  // base 1, spike ×40
    QCOMPARE(model.value(1, DepthModel::DownIn), 280.0); // base 7, spike ×40
    QCOMPARE(model.data(model.index(1, DepthModel::Block)).toInt(), 1);
    model.setSnapshot(makeSnapshot(false));
    QCOMPARE(model.rowCount(), 0);
}

void TestViewsOutliers::residualDepthModel()
{
    ResidualDepthModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSnapshot(makeSnapshot());
    QCOMPARE(model.rowCount(), 2);
    checkHeaders(model);
    QCOMPARE(model.value(0, ResidualDepthModel::Block), 0.0); // sorted by block
    QCOMPARE(model.value(0, ResidualDepthModel::Top1), 30.0);
    QCOMPARE(model.value(1, ResidualDepthModel::Top1), 2400.0);
    QCOMPARE(model.value(1, ResidualDepthModel::Top2), 900.0);
    QCOMPARE(model.value(1, ResidualDepthModel::Top3), 80.0);
    QCOMPARE(model.data(model.index(1, ResidualDepthModel::Median), ResidualDepthModel::RawRole).toDouble(),
             double(0.6f));
    QCOMPARE(model.data(model.index(1, ResidualDepthModel::Top1)).toString(), QStringLiteral("2400"));
    model.setSnapshot(nullptr);
    QCOMPARE(model.rowCount(), 0);
}

void TestViewsOutliers::massiveTableModel()
{
    MassiveTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSnapshot(makeSnapshot());
    QCOMPARE(model.rowCount(), 2);
    checkHeaders(model);
    const auto text = [&](int r, int c) { return model.data(model.index(r, c)).toString(); };
    const auto raw = [&](int r, int c) { return model.data(model.index(r, c), MassiveTableModel::RawRole); };
    QCOMPARE(text(0, MassiveTableModel::Layer), QStringLiteral("1"));
    QCOMPARE(text(0, MassiveTableModel::Sample), QStringLiteral("1"));   // token 5 / seqlen 4
    QCOMPARE(text(0, MassiveTableModel::Position), QStringLiteral("1")); // token 5 % seqlen 4
    QCOMPARE(text(0, MassiveTableModel::Token), QStringLiteral("cat"));
    QCOMPARE(text(0, MassiveTableModel::Channel), QStringLiteral("3"));
    QCOMPARE(raw(0, MassiveTableModel::Value).toDouble(), 2400.0);
    QCOMPARE(text(1, MassiveTableModel::Sample), QStringLiteral("0"));
    QCOMPARE(text(1, MassiveTableModel::Token), QStringLiteral("#7")); // no piece for id 7
    QCOMPARE(raw(1, MassiveTableModel::Value).toDouble(), -300.0);
    QCOMPARE(raw(1, MassiveTableModel::Position).toDouble(), 1.0);
    model.setSnapshot(makeSnapshot(false));
    QCOMPARE(model.rowCount(), 0);
}

void TestViewsOutliers::outliersPlaceholder()
{
    Selection selection;
    OutliersView view(&selection);
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(view.showsPlaceholder());
    QVERIFY(view.placeholderText().contains("No model"));
    view.setSnapshot(makeSnapshot(false));
    QVERIFY(view.showsPlaceholder());
    QVERIFY(view.placeholderText().contains("analysis"));
    selection.selectSite(QStringLiteral("layers.0.o_in")); // no crash without data
    QCOMPARE(view.channelModel()->rowCount(), 0);
    view.setSiteSample(nullptr);
    view.setSnapshot(makeSnapshot());
    QVERIFY(!view.showsPlaceholder());
    QCOMPARE(view.currentSite(), QStringLiteral("layers.0.o_in"));
    view.setSnapshot(nullptr);
    QVERIFY(view.showsPlaceholder());
    QCOMPARE(view.exportables().size(), 4);
}

void TestViewsOutliers::outliersFollowsSelection()
{
    Selection selection;
    OutliersView view(&selection);
    const SnapshotPtr snap = makeSnapshot();
    view.setSnapshot(snap);
    // No selection yet: the first site is shown.
    QCOMPARE(view.currentSite(), QStringLiteral("layers.0.attn_in"));
    selection.selectLayer(QStringLiteral("model.layers.1.mlp.down_proj"));
    QCOMPARE(view.currentSite(), QStringLiteral("layers.1.down_in"));
    ChannelStatsModel* m = view.channelModel();
    QCOMPARE(m->rowCount(), kInter);
    const SiteStats& down1 = *snap->site("layers.1.down_in");
    for (int c = 0; c < kInter; ++c)
        QCOMPARE(m->data(m->index(c, ChannelStatsModel::Absmax), ChannelStatsModel::RawRole).toDouble(),
                 double(down1.absmax[c]));
    QCOMPARE(m->data(m->index(5, ChannelStatsModel::Outlier)).toString(), QStringLiteral("yes"));
    // The absmax chart follows: one point per channel, the outlier channel in its own series, and
    // a series for picked salient channels (none yet).
    const auto series = view.absmaxPanel()->chart()->series();
    QCOMPARE(series.size(), 3);
    QCOMPARE(qobject_cast<QXYSeries*>(series[2])->count(), 0);
    auto* line = qobject_cast<QXYSeries*>(series[0]);
    auto* out = qobject_cast<QXYSeries*>(series[1]);
    QVERIFY(line && out);
    QCOMPARE(line->count(), kInter);
    QCOMPARE(line->at(5).y(), double(down1.absmax[5]));
    QCOMPARE(out->count(), 1);
    QCOMPARE(out->at(0).x(), 5.0);
    QCOMPARE(view.bandPanel()->chart()->series().size(), 3);

    selection.selectSite(QStringLiteral("layers.0.o_in"));
    QCOMPARE(m->rowCount(), kHidden);
    const SiteStats& o0 = *snap->site("layers.0.o_in");
    QCOMPARE(m->data(m->index(0, ChannelStatsModel::Absmax), ChannelStatsModel::RawRole).toDouble(),
             double(o0.absmax[0]));
    QCOMPARE(m->data(m->index(1, ChannelStatsModel::Outlier)).toString(), QStringLiteral("yes")); // (0 + 1) % 4
    // The depth chart has one line per projection kind (plus the selected-block marker).
    QCOMPARE(view.depthPanel()->chart()->series().size(), 5);
    auto* attn = qobject_cast<QXYSeries*>(view.depthPanel()->chart()->series()[0]);
    QCOMPARE(attn->count(), 2);
    QCOMPARE(attn->at(1).y(), snap->site("layers.1.attn_in")->absmaxSite);
}

void TestViewsOutliers::outliersWideSite()
{
    // A 7B-sized site: 20000 channels, flat but for one spike. The charts draw it at pixel
    // detail (not 20000 points per series) and still show the spike and name it on hover.
    const SnapshotPtr base = makeSnapshot();
    auto snap = std::make_shared<AnalysisSnapshot>(*base);
    auto a = std::make_shared<AnalysisResult>(*base->analysis);
    constexpr int n = 20000, spike = 12345;
    for (SiteStats& st : a->sites)
        if (st.name == "layers.1.down_in") {
            st = makeSite(1, 3, n, 1.f, spike);
            for (int c = 0; c < n; ++c) st.absmax[c] = 1.f + 0.1f * float(c % 7);
            st.absmax[spike] = 400.f;
            st.max = st.absmax, st.min = -0.5f * st.absmax, st.p99 = 0.8f * st.absmax, st.p01 = -0.4f * st.absmax;
        }
    snap->analysis = a;
    Selection selection;
    OutliersView view(&selection);
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setSnapshot(snap);
    selection.selectLayer(QStringLiteral("model.layers.1.mlp.down_proj"));
    QCOMPARE(view.channelModel()->rowCount(), n);
    ChartPanel* absmax = view.absmaxPanel();
    QTRY_VERIFY(absmax->chart()->plotArea().width() > 100);
    const int columns = int(std::ceil(absmax->chart()->plotArea().width() * absmax->devicePixelRatioF()));
    auto* line = qobject_cast<QXYSeries*>(absmax->chart()->series()[0]);
    QVERIFY(line->count() <= 2 * columns + 2);
    QCOMPARE(absmax->allPoints(line).size(), n);
    const int i = int(line->points().indexOf(QPointF(spike, 400)));
    QVERIFY(i >= 0);
    QVERIFY(absmax->hoverText(line, i).contains(QStringLiteral("channel 12345")));
    QVERIFY(absmax->hoverText(line, i).contains(QStringLiteral("outlier channel")));
    QCOMPARE(absmax->csvText().count(QLatin1Char('\n')), n + 1);
    // The min…max band: its upper edge keeps the spike's max, its lower edge the spike's min.
    auto* area = qobject_cast<QAreaSeries*>(view.bandPanel()->chart()->series()[0]);
    QVERIFY(area);
    QVERIFY(area->upperSeries()->count() <= columns + 2);
    const int u = int(area->upperSeries()->points().indexOf(QPointF(spike, 400)));
    QVERIFY(u >= 0);
    QVERIFY(area->lowerSeries()->points().contains(QPointF(spike, -200)));
    QVERIFY2(view.bandPanel()->hoverText(area, u).startsWith(QStringLiteral("channel 12345\nmin -200 · max 400")),
             qPrintable(view.bandPanel()->hoverText(area, u)));
}

void TestViewsOutliers::outliersSampleRequests()
{
    Selection selection;
    OutliersView view(&selection);
    QSignalSpy spy(&view, &OutliersView::siteSampleRequested);
    view.setSnapshot(makeSnapshot());
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.last().at(0).toString(), QStringLiteral("layers.0.attn_in"));
    QCOMPARE(spy.last().at(1).toInt(), 0);
    selection.selectSite(QStringLiteral("layers.1.mlp_in"));
    QCOMPARE(spy.count(), 2);
    QCOMPARE(spy.last().at(0).toString(), QStringLiteral("layers.1.mlp_in"));
    selection.selectLayer(QStringLiteral("model.layers.1.mlp.up_proj")); // same site: no new request
    QCOMPARE(spy.count(), 2);

    auto sample = std::make_shared<SiteSample>();
    sample->site = "layers.1.mlp_in";
    sample->sample = 0;
    sample->values = RowMatrix::Zero(kSeqlen, kHidden);
    sample->values(2, 3) = -55.f;
    sample->values(1, 0) = 0.25f;
    sample->tokens = {0, 1, 2, 3};
    view.setSiteSample(sample);
    HeatMapWidget* heat = view.heatMap();
    QCOMPARE(heat->rows(), kSeqlen);
    QCOMPARE(heat->cols(), kHidden);
    QCOMPARE(heat->value(2, 3), -55.f);
    QCOMPARE(heat->value(1, 0), 0.25f);
    // The tooltip names the token text, its position, the channel and the value.
    heat->resize(700, 400);
    const QRect plot = heat->plotRect(heat->size());
    const QPointF cell(plot.left() + 3.5 * plot.width() / kHidden, plot.top() + 2.5 * plot.height() / kSeqlen);
    const QString tip = heat->tooltipAt(cell);
    QVERIFY2(tip.contains("cat") && tip.contains("position 2") && tip.contains("channel 3") && tip.contains("-55"),
             qPrintable(tip));

    view.sampleSpinBox()->setValue(1);
    QCOMPARE(spy.count(), 3);
    QCOMPARE(spy.last().at(1).toInt(), 1);
    QCOMPARE(heat->rows(), 0);                    // the shown sample no longer matches
    QCOMPARE(view.sampleSpinBox()->maximum(), 1); // 8 tokens / seqlen 4
}

void TestViewsOutliers::outliersExports()
{
    Selection selection;
    OutliersView view(&selection);
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const SnapshotPtr snap = makeSnapshot();
    view.setSnapshot(snap);
    selection.selectSite(QStringLiteral("layers.0.attn_in"));
    auto sample = std::make_shared<SiteSample>();
    sample->site = "layers.0.attn_in";
    sample->values = RowMatrix::Constant(kSeqlen, kHidden, 0.5f);
    sample->values(0, 1) = 9.f;
    sample->tokens = {0, 1, 2, 3};
    view.setSiteSample(sample);
    QTemporaryDir dir;
    QString error;
    const QList<Exportable*> ex = view.exportables();
    QCOMPARE(ex.size(), 4);
    for (int tab = 0; tab < view.tabs()->count(); ++tab) {
        view.tabs()->setCurrentIndex(tab); // export works whether or not the tab is on screen
        for (int i = 0; i < ex.size(); ++i) {
            const QString base = dir.filePath(QStringLiteral("e%1_%2").arg(tab).arg(i));
            QVERIFY2(ex[i]->exportPng(base + ".png", &error), qPrintable(error));
            QVERIFY2(nonBackgroundFraction(QImage(base + ".png")) > 0.01, qPrintable(ex[i]->exportTitle()));
            QVERIFY2(ex[i]->exportSvg(base + ".svg", &error), qPrintable(error));
            QVERIFY(readText(base + ".svg").contains("<svg"));
            QVERIFY2(ex[i]->exportCsv(base + ".csv", &error), qPrintable(error));
        }
    }
    // CSV content is the data shown.
    const SiteStats& s = *snap->site("layers.0.attn_in");
    QString expect = QStringLiteral("channel,absmax,outlier\n");
    for (int c = 0; c < kHidden; ++c)
        expect += QStringLiteral("%1,%2,%3\n")
                      .arg(c)
                      .arg(double(s.absmax[c]), 0, 'g', 6)
                      .arg(c == s.outlierChannels[0] ? 1 : 0);
    QVERIFY(ex[0]->exportCsv(dir.filePath("a.csv"), &error));
    QCOMPARE(readText(dir.filePath("a.csv")), expect);
    QVERIFY(ex[3]->exportCsv(dir.filePath("d.csv"), &error));
    const QStringList depth = readText(dir.filePath("d.csv")).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(depth.size(), 3);
    QCOMPARE(depth[0], QStringLiteral("block,attn_in,o_in,mlp_in,down_in"));
    QCOMPARE(depth[2], QStringLiteral("1,%1,%2,%3,%4")
                           .arg(snap->site("layers.1.attn_in")->absmaxSite)
                           .arg(snap->site("layers.1.o_in")->absmaxSite)
                           .arg(snap->site("layers.1.mlp_in")->absmaxSite)
                           .arg(snap->site("layers.1.down_in")->absmaxSite));
    QVERIFY(ex[2]->exportCsv(dir.filePath("h.csv"), &error));
    QVERIFY(readText(dir.filePath("h.csv")).startsWith(QStringLiteral("token,0,1,2,3\n0,0.5,9,0.5,0.5\n")));
}

void TestViewsOutliers::massiveView()
{
    Selection selection;
    MassiveView view(&selection);
    view.resize(1200, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(view.showsPlaceholder());
    view.setSnapshot(makeSnapshot(false));
    QVERIFY(view.showsPlaceholder());
    QVERIFY(view.placeholderText().contains("analysis"));
    view.setSnapshot(makeSnapshot());
    QVERIFY(!view.showsPlaceholder());
    QCOMPARE(view.proxyModel()->rowCount(), 2);
    // Sorting by value uses the raw numbers.
    view.tableView()->sortByColumn(MassiveTableModel::Value, Qt::AscendingOrder);
    QCOMPARE(view.proxyModel()->index(0, MassiveTableModel::Value).data(MassiveTableModel::RawRole).toDouble(), -300.0);
    view.tableView()->sortByColumn(MassiveTableModel::Value, Qt::DescendingOrder);
    QCOMPARE(view.proxyModel()->index(0, MassiveTableModel::Value).data(MassiveTableModel::RawRole).toDouble(), 2400.0);
    // A click on a row selects its block.
    QSignalSpy changed(&selection, &Selection::changed);
    QTableView* table = view.tableView();
    const QRect rowRect = table->visualRect(view.proxyModel()->index(0, MassiveTableModel::Token));
    QVERIFY(rowRect.isValid());
    QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier, rowRect.center());
    QCOMPARE(changed.count(), 1);
    QCOMPARE(selection.site(), QStringLiteral("layers.1.attn_in"));
    QCOMPARE(selection.block(), 1);
    // The chart: top-1/2/3 and median per block.
    const auto series = view.chartPanel()->chart()->series();
    QCOMPARE(series.size(), 4);
    auto* top1 = qobject_cast<QXYSeries*>(series[0]);
    QCOMPARE(top1->count(), 2);
    QCOMPARE(top1->at(1), QPointF(1, 2400));
    QCOMPARE(qobject_cast<QXYSeries*>(series[3])->at(0).y(), double(0.5f));
    QTemporaryDir dir;
    QString error;
    QCOMPARE(view.exportables().size(), 1);
    QVERIFY2(view.exportables()[0]->exportPng(dir.filePath("m.png"), &error), qPrintable(error));
    QVERIFY(nonBackgroundFraction(QImage(dir.filePath("m.png"))) > 0.01);
    QVERIFY(view.exportables()[0]->exportCsv(dir.filePath("m.csv"), &error));
    QCOMPARE(readText(dir.filePath("m.csv")),
             QStringLiteral("block,top1,top2,top3,median\n0,30,20,10,0.5\n1,2400,900,80,0.6\n"));
    view.setSnapshot(nullptr);
    QVERIFY(view.showsPlaceholder());
    QCOMPARE(view.proxyModel()->rowCount(), 0);
}

QTEST_MAIN(TestViewsOutliers)
#include "tst_viewsoutliers.moc"
