// The analysis views as widgets: placeholders for empty snapshots, following the window's
// selection, selecting from tables and charts, and exports (CSV equal to the model, PNG not blank).
#include "chartpanel.h"
#include "entropymodel.h"
#include "entropyview.h"
#include "histogramchart.h"
#include "histogrammodel.h"
#include "layertablemodel.h"
#include "overviewview.h"
#include "selection.h"
#include "sensitivitymodel.h"
#include "sensitivityview.h"
#include "tableexport.h"
#include "viewsnapshotfixture.h"
#include "viewtestutil.h"
#include "weightsview.h"

#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QLineEdit>
#include <QLineSeries>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QtTest>

#include <set>

using namespace viewfixture;
using ql::LinearKind;
using viewtest::readText;

namespace {

QString layer(int block, LinearKind k)
{
    return QString::fromStdString(layerName(block, k));
}

// A picture with content has more than a background and a frame colour.
bool nonBlank(const QString& path)
{
    QImage img(path);
    if (img.isNull() || img.width() < 50 || img.height() < 50) return false;
    std::set<QRgb> colors;
    for (int y = 0; y < img.height(); y += 3)
        for (int x = 0; x < img.width(); x += 3) colors.insert(img.pixel(x, y));
    return colors.size() >= 8;
}

// Shows a view at the size screenshots are taken at; optionally saves it for a human to look at.
void showAt1200x800(QWidget& w, const QString& name)
{
    w.resize(1200, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    const QString dir = qEnvironmentVariable("QL_VIEW_SCREENSHOT_DIR");
    if (!dir.isEmpty()) w.grab().save(dir + "/" + name + ".png");
}

} // namespace

class TestViewWidgets : public QObject {
    Q_OBJECT

private slots:
    void nullAndEmptySnapshots()
    {
        ql::Selection sel;
        ql::OverviewView overview(&sel);
        ql::SensitivityView sensitivity(&sel);
        ql::EntropyView entropy(&sel);
        ql::WeightsView weights(&sel);
        for (auto snap : {ql::SnapshotPtr(), makeSnapshot(false), ql::SnapshotPtr()}) {
            overview.setSnapshot(snap);
            sensitivity.setSnapshot(snap);
            entropy.setSnapshot(snap);
            weights.setSnapshot(snap);
            sel.selectLayer(layer(1, LinearKind::Up));
            QVERIFY(sensitivity.showsPlaceholder());
            QVERIFY(entropy.showsPlaceholder());
            QVERIFY(weights.showsPlaceholder());
            QVERIFY(!sensitivity.placeholderText().isEmpty());
            QVERIFY(!entropy.placeholderText().isEmpty());
            QVERIFY(!weights.placeholderText().isEmpty());
            QCOMPARE(overview.showsPlaceholder(), !snap);
            sel.selectLayer(QString());
        }
        QVERIFY(overview.placeholderText().contains("No model"));
        QVERIFY(weights.placeholderText().contains("No model"));
        weights.setSnapshot(makeSnapshot(false));
        QVERIFY(weights.placeholderText().contains("analysis"));
        // Exports of empty views do not crash and still write files.
        QTemporaryDir dir;
        for (ql::Exportable* e : sensitivity.exportables() + entropy.exportables() + weights.exportables())
            QVERIFY(e->exportCsv(dir.filePath("x.csv")));
        // An analysis without sensitivity: the sensitivity view says so.
        auto noSens = std::make_shared<ql::AnalysisSnapshot>(*makeSnapshot());
        auto a = std::make_shared<ql::AnalysisResult>(*noSens->analysis);
        a->sensitivity.clear();
        noSens->analysis = a;
        sensitivity.setSnapshot(noSens);
        QVERIFY(sensitivity.showsPlaceholder());
        QVERIFY(sensitivity.placeholderText().contains("sensitivity"));
    }

    void overviewFollowsSelection()
    {
        ql::Selection sel;
        ql::OverviewView view(&sel);
        view.setSnapshot(makeSnapshot());
        showAt1200x800(view, "overview");
        QVERIFY(!view.showsPlaceholder());
        QTableView* table = view.tableView();
        const auto currentLayer = [&] {
            return table->currentIndex().data(ql::LayerTableModel::LayerNameRole).toString();
        };
        sel.selectLayer(layer(2, LinearKind::O));
        QCOMPARE(currentLayer(), layer(2, LinearKind::O));
        QVERIFY(table->selectionModel()->isRowSelected(table->currentIndex().row(), {}));
        sel.selectLayer(layer(0, LinearKind::Gate));
        QCOMPARE(currentLayer(), layer(0, LinearKind::Gate));
        // Still after sorting by a statistic: the proxy row differs from the source row.
        table->sortByColumn(ql::LayerTableModel::WeightBeyond3SigmaColumn, Qt::DescendingOrder);
        sel.selectLayer(layer(1, LinearKind::K));
        QCOMPARE(currentLayer(), layer(1, LinearKind::K));
        QVERIFY(table->currentIndex().row() != view.model()->rowOfLayer(layer(1, LinearKind::K)));
        // Selecting a site moves the row to the site's first layer.
        sel.selectSite("layers.2.mlp_in");
        QCOMPARE(currentLayer(), layer(2, LinearKind::Gate));
    }

    void overviewClickSelectsAndFilters()
    {
        ql::Selection sel;
        ql::OverviewView view(&sel);
        view.setSnapshot(makeSnapshot());
        showAt1200x800(view, "overview-click");
        QTableView* table = view.tableView();
        const QModelIndex target = view.proxyModel()->index(4, 0);
        const QString expected = target.data(ql::LayerTableModel::LayerNameRole).toString();
        QSignalSpy spy(&sel, &ql::Selection::changed);
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(target).center());
        QCOMPARE(sel.layer(), expected);
        QCOMPARE(spy.count(), 1);

        // Filtering by name keeps the selection and never selects another layer by itself.
        view.filterEdit()->setText("down");
        QCOMPARE(view.proxyModel()->rowCount(), kBlocks);
        for (int r = 0; r < kBlocks; ++r)
            QVERIFY(view.proxyModel()->index(r, 0).data().toString().endsWith("down_proj"));
        QCOMPARE(sel.layer(), expected);
        view.filterEdit()->setText("layers.1.*proj");
        QCOMPARE(view.proxyModel()->rowCount(), ql::kLinearCount);
        view.filterEdit()->clear();
        QCOMPARE(view.proxyModel()->rowCount(), kBlocks * ql::kLinearCount);
        QCOMPARE(sel.layer(), expected);
    }

    void overviewExports()
    {
        ql::Selection sel;
        ql::OverviewView view(&sel);
        view.setSnapshot(makeSnapshot());
        showAt1200x800(view, "overview-export");
        view.tableView()->sortByColumn(ql::LayerTableModel::ParamsColumn, Qt::DescendingOrder);
        const QList<ql::Exportable*> ex = view.exportables();
        QCOMPARE(ex.size(), 1);
        QTemporaryDir dir;
        QString error;
        QVERIFY2(ex[0]->exportCsv(dir.filePath("t.csv"), &error), qPrintable(error));
        const QString csv = readText(dir.filePath("t.csv"));
        QCOMPARE(csv, ql::TableExport::csvOf(view.proxyModel()));
        const QStringList lines = csv.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), view.proxyModel()->rowCount() + 1);
        QVERIFY(lines[0].startsWith("Layer,Block,Kind,Shape,Params,"));
        // Sorted as shown: the 128-parameter layers come first; parameters written as plain numbers.
        QCOMPARE(lines[1].split(',')[ql::LayerTableModel::ParamsColumn], QStringLiteral("128"));
        QVERIFY2(ex[0]->exportPng(dir.filePath("t.png"), &error), qPrintable(error));
        QVERIFY(nonBlank(dir.filePath("t.png")));
        QVERIFY(ex[0]->exportSvg(dir.filePath("t.svg"), &error));
        QVERIFY(readText(dir.filePath("t.svg")).contains("<svg"));
        QVERIFY(!ex[0]->exportPng(dir.filePath("no/such/dir/t.png"), &error));
    }

    void weightsFollowSelection()
    {
        ql::Selection sel;
        ql::WeightsView view(&sel);
        const auto snap = makeSnapshot();
        view.setSnapshot(snap);
        QVERIFY(view.showsPlaceholder()); // nothing selected yet
        sel.selectLayer(layer(1, LinearKind::Down));
        showAt1200x800(view, "weights");
        QVERIFY(!view.showsPlaceholder());
        const auto& wA = snap->analysis->weights[size_t(layerIndex(1, LinearKind::Down))];
        QCOMPARE(view.weightStats(), &wA);
        ql::HistogramModel* h = view.histogramModel();
        QCOMPARE(h->bins(), int(wA.histCounts.size()));
        for (int i = 0; i < h->bins(); ++i) QCOMPARE(h->count(i), wA.histCounts[size_t(i)]);
        QCOMPARE(h->edge(0), double(wA.histEdges[0]));
        QCOMPARE(view.rowAbsmaxSeries()->count(), kHidden);
        QCOMPARE(view.rowAbsmaxSeries()->at(7).y(), double(wA.rowAbsmax[7]));

        sel.selectLayer(layer(0, LinearKind::Up));
        const auto& wB = snap->analysis->weights[size_t(layerIndex(0, LinearKind::Up))];
        QCOMPARE(h->source(), QString::fromStdString(wB.name));
        QCOMPARE(h->count(0), wB.histCounts[0]);
        QVERIFY(h->count(0) != wA.histCounts[0]);
        QCOMPARE(view.rowAbsmaxSeries()->count(), kInter);
        QCOMPARE(view.rowStdSeries()->at(0).y(), double(wB.rowStd[0]));
        // The chart draws the model: two step points per bin, at the bin's count (log floor aside).
        QVERIFY(view.histogramPanel()->series());

        QTemporaryDir dir;
        QVERIFY(view.exportables()[0]->exportPng(dir.filePath("h.png")));
        QVERIFY(nonBlank(dir.filePath("h.png")));
        QVERIFY(view.exportables()[0]->exportCsv(dir.filePath("h.csv")));
        QCOMPARE(readText(dir.filePath("h.csv")), ql::TableExport::csvOf(h));
        QVERIFY(view.exportables()[1]->exportCsv(dir.filePath("r.csv")));
        QCOMPARE(readText(dir.filePath("r.csv")).split('\n', Qt::SkipEmptyParts).size(), kInter + 1);

        // The last layer has no weight statistics: said so, nothing stale shown.
        sel.selectLayer(layer(kBlocks - 1, LinearKind::Down));
        QVERIFY(view.showsPlaceholder());
        QVERIFY(view.placeholderText().contains("No weight statistics"));
        QCOMPARE(h->bins(), 0);
    }

    void entropyFollowsSelection()
    {
        ql::Selection sel;
        ql::EntropyView view(&sel);
        const auto snap = makeSnapshot();
        view.setSnapshot(snap);
        sel.selectSite("layers.2.mlp_in");
        showAt1200x800(view, "entropy");
        QVERIFY(!view.showsPlaceholder());
        const ql::SiteStats* s = snap->site("layers.2.mlp_in");
        ql::HistogramModel* h = view.histogramModel();
        QCOMPARE(h->bins(), 4);
        QCOMPARE(h->count(1), s->histCounts[1]);
        QCOMPARE(h->edge(4), double(s->histEdges[4]));
        QCOMPARE(view.tableView()->currentIndex().data(ql::EntropyModel::SiteNameRole).toString(),
                 QStringLiteral("layers.2.mlp_in"));

        sel.selectLayer(layer(0, LinearKind::Down));
        QCOMPARE(h->source(), QStringLiteral("layers.0.down_in"));
        QCOMPARE(h->count(1), snap->site("layers.0.down_in")->histCounts[1]);

        // Depth series: one point per block, energy and value entropy of that kind.
        QLineSeries* energy = view.depthSeries("down_in", true);
        QLineSeries* value = view.depthSeries("down_in", false);
        QVERIFY(energy && value);
        QCOMPARE(energy->count(), kBlocks);
        QCOMPARE(energy->at(2), QPointF(2, snap->site("layers.2.down_in")->energyEntropyBits));
        QCOMPARE(value->at(1), QPointF(1, snap->site("layers.1.down_in")->valueEntropyBits));
        QCOMPARE(view.depthPanel()->chart()->series().size(), 4 * 2 + 2);

        // A click in the table selects that site.
        QTableView* table = view.tableView();
        const int row = view.model()->rowOfSite("layers.1.o_in");
        const QModelIndex target = view.proxyModel()->mapFromSource(view.model()->index(row, 0));
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(target).center());
        QCOMPARE(sel.site(), QStringLiteral("layers.1.o_in"));
        QCOMPARE(h->source(), QStringLiteral("layers.1.o_in"));

        QTemporaryDir dir;
        const auto ex = view.exportables();
        QCOMPARE(ex.size(), 3);
        QVERIFY(ex[0]->exportPng(dir.filePath("d.png")));
        QVERIFY(nonBlank(dir.filePath("d.png")));
        QVERIFY(ex[1]->exportPng(dir.filePath("h.png")));
        QVERIFY(nonBlank(dir.filePath("h.png")));
        QVERIFY(ex[2]->exportCsv(dir.filePath("t.csv")));
        QCOMPARE(readText(dir.filePath("t.csv")), ql::TableExport::csvOf(view.proxyModel()));
    }

    void sensitivityBarsAndScatter()
    {
        ql::Selection sel;
        ql::SensitivityView view(&sel);
        view.setSnapshot(makeSnapshot());
        showAt1200x800(view, "sensitivity");
        QVERIFY(!view.showsPlaceholder());
        QCOMPARE(view.measure(), ql::SensitivityMeasure::Proxy);
        QCOMPARE(view.bits(), 2);

        // Bars: categories are blocks, sets are projections; each bar is the model's value.
        const auto checkBars = [&](ql::SensitivityMeasure m, int bits) {
            QBarSeries* bars = view.barSeries();
            QVERIFY(bars);
            QCOMPARE(bars->count(), ql::kLinearCount);
            for (int s = 0; s < bars->count(); ++s) {
                QCOMPARE(bars->barSets()[s]->count(), kBlocks);
                for (int b = 0; b < kBlocks; ++b) {
                    const QString name = view.layerAtBar(b, s);
                    QCOMPARE(name, layer(b, LinearKind(s)));
                    const int row = view.model()->rowOfLayer(name);
                    QCOMPARE(bars->barSets()[s]->at(b), *view.model()->value(row, m, bits));
                }
            }
        };
        checkBars(ql::SensitivityMeasure::Proxy, 2);
        view.setMeasure(ql::SensitivityMeasure::RelMse, 4);
        QCOMPARE(view.bits(), 4);
        checkBars(ql::SensitivityMeasure::RelMse, 4);
        QVERIFY(view.barPanel()->chart()->title().contains("Relative output MSE"));

        // Scatter title carries core's Spearman correlation at the selected width.
        QVERIFY(!view.showsKlNote());
        QVERIFY2(view.scatterPanel()->chart()->title().contains("0.830"),
                 qPrintable(view.scatterPanel()->chart()->title()));
        view.setScatterMeasure(ql::SensitivityMeasure::RelMse);
        QVERIFY(view.scatterPanel()->chart()->title().contains("0.660"));
        view.setMeasure(ql::SensitivityMeasure::Proxy, 3);
        QVERIFY(view.scatterPanel()->chart()->title().contains("0.550"));

        // Clicking a bar selects its layer; the table follows.
        QBarSeries* bars = view.barSeries();
        emit bars->clicked(1, bars->barSets()[int(LinearKind::Up)]);
        QCOMPARE(sel.layer(), layer(1, LinearKind::Up));
        QCOMPARE(view.tableView()->currentIndex().data(ql::SensitivityModel::LayerNameRole).toString(),
                 layer(1, LinearKind::Up));
        QVERIFY(bars->barSets()[int(LinearKind::Up)]->isBarSelected(1));
        sel.selectLayer(layer(2, LinearKind::Q));
        QVERIFY(!bars->barSets()[int(LinearKind::Up)]->isBarSelected(1));
        QVERIFY(bars->barSets()[int(LinearKind::Q)]->isBarSelected(2));

        // Sorting the table by a measure orders by value.
        const int col = view.model()->columnOf(ql::SensitivityMeasure::Proxy, 4);
        view.tableView()->sortByColumn(col, Qt::AscendingOrder);
        double prev = -1;
        for (int r = 0; r < view.proxyModel()->rowCount(); ++r) {
            const double v = view.proxyModel()->index(r, col).data(Qt::UserRole).toDouble();
            QVERIFY(v >= prev);
            prev = v;
        }

        QTemporaryDir dir;
        const auto ex = view.exportables();
        QCOMPARE(ex.size(), 3);
        QVERIFY(ex[0]->exportPng(dir.filePath("b.png")));
        QVERIFY(nonBlank(dir.filePath("b.png")));
        QVERIFY(ex[1]->exportPng(dir.filePath("s.png")));
        QVERIFY(nonBlank(dir.filePath("s.png")));
        QVERIFY(ex[0]->exportCsv(dir.filePath("b.csv")));
        const QStringList lines = readText(dir.filePath("b.csv")).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), kBlocks * ql::kLinearCount + 1);
        QCOMPARE(lines[1].split(',').last().toDouble(), proxyValue(0, 3));
        QVERIFY(ex[2]->exportCsv(dir.filePath("t.csv")));
        QCOMPARE(readText(dir.filePath("t.csv")), ql::TableExport::csvOf(view.proxyModel()));
    }

    void sensitivityWithoutKl()
    {
        ql::Selection sel;
        ql::SensitivityView view(&sel);
        view.setSnapshot(makeSnapshot(true, false));
        showAt1200x800(view, "sensitivity-nokl");
        QVERIFY(!view.showsPlaceholder());
        QVERIFY(view.showsKlNote());
        QVERIFY(view.klNoteText().contains("not computed"));
        QCOMPARE(view.exportables().size(), 2); // no scatter to export
        view.setMeasure(ql::SensitivityMeasure::SqnrDb, 3);
        QCOMPARE(view.measure(), ql::SensitivityMeasure::SqnrDb);
        QCOMPARE(view.barSeries()->barSets()[0]->at(1), sqnrValue(layerIndex(1, LinearKind::Q), 3));
        // KL appears once a snapshot has it.
        view.setSnapshot(makeSnapshot());
        QVERIFY(!view.showsKlNote());
        QCOMPARE(view.measure(), ql::SensitivityMeasure::SqnrDb); // the user's choice survives
        QCOMPARE(view.bits(), 3);
    }

    void modelSizedSnapshot()
    {
        // A 7B-sized layer table (32 blocks, 4096 / 11008 features, 2048-bin histograms): every view
        // fills, follows the selection and exports, at the size screenshots are taken at.
        const auto snap = makeSnapshot(true, true, 32, 4096, 11008, 2048);
        ql::Selection sel;
        ql::OverviewView overview(&sel);
        ql::SensitivityView sensitivity(&sel);
        ql::EntropyView entropy(&sel);
        ql::WeightsView weights(&sel);
        const QList<QWidget*> views{&overview, &sensitivity, &entropy, &weights};
        overview.setSnapshot(snap);
        sensitivity.setSnapshot(snap);
        entropy.setSnapshot(snap);
        weights.setSnapshot(snap);
        sel.selectLayer(layer(17, LinearKind::Down));
        const QStringList names{"large-overview", "large-sensitivity", "large-entropy", "large-weights"};
        for (int i = 0; i < views.size(); ++i) showAt1200x800(*views[i], names[i]);
        QCOMPARE(overview.proxyModel()->rowCount(), 32 * ql::kLinearCount);
        QCOMPARE(sensitivity.barSeries()->barSets()[0]->count(), 32);
        QCOMPARE(entropy.histogramModel()->bins(), 2048);
        // Every row is kept; the chart draws them at pixel detail.
        QCOMPARE(weights.rowPanel()->allPoints(weights.rowAbsmaxSeries()).size(), 4096);
        sel.selectLayer(layer(3, LinearKind::Gate));
        QCOMPARE(weights.rowPanel()->allPoints(weights.rowAbsmaxSeries()).size(), 11008);
        QVERIFY(weights.rowAbsmaxSeries()->count() <= 2 * 1200 + 2);
        QCOMPARE(weights.rowPanel()->csvText().count(QLatin1Char('\n')), 11008 + 1);
        QCOMPARE(entropy.histogramModel()->source(), QStringLiteral("layers.3.mlp_in"));
        QTemporaryDir dir;
        for (QWidget* v : views) {
            const QList<ql::Exportable*> ex = v == &overview      ? overview.exportables()
                                              : v == &sensitivity ? sensitivity.exportables()
                                              : v == &entropy     ? entropy.exportables()
                                                                  : weights.exportables();
            QVERIFY(ex.first()->exportPng(dir.filePath("x.png")));
            QVERIFY(nonBlank(dir.filePath("x.png")));
        }
    }
};

QTEST_MAIN(TestViewWidgets)
#include "tst_viewwidgets.moc"
