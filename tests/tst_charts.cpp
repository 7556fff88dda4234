// ChartPanel (zoom, pan, reset, hover text, export, pixel-level decimation) and HeatMapWidget (log colour scale,
// max-pooling downsampling, hit testing, export), offscreen.
#include "chartpanel.h"
#include "heatmapwidget.h"
#include "viewtestutil.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QFile>
#include <QImage>
#include <QLineSeries>
#include <QTemporaryDir>
#include <QValueAxis>
#include <QWheelEvent>
#include <QtTest>

#include <algorithm>
#include <cmath>

using namespace ql;
using viewtest::nonBackgroundFraction;
using viewtest::readText;

namespace {

// A panel with one line series y = x² over x = 0..10 on value axes.
struct LinePanel {
    ChartPanel panel{QStringLiteral("Line test")};
    QLineSeries* series = new QLineSeries;
    QValueAxis* x = new QValueAxis;
    QValueAxis* y = new QValueAxis;
    LinePanel()
    {
        series->setName(QStringLiteral("square"));
        for (int i = 0; i <= 10; ++i) series->append(i, i * i);
        panel.chart()->addSeries(series);
        panel.chart()->addAxis(x, Qt::AlignBottom);
        panel.chart()->addAxis(y, Qt::AlignLeft);
        series->attachAxis(x);
        series->attachAxis(y);
        x->setRange(0, 10);
        y->setRange(0, 100);
        panel.resize(640, 420);
        panel.show();
    }
};

} // namespace

class TestCharts : public QObject {
    Q_OBJECT
private slots:
    void panelApi();
    void zoomPanReset();
    void wheelAndDoubleClick();
    void rubberBandZoom();
    void ownerRangeIsNewBaseline();
    void hoverText();
    void exportPanel();
    void exportErrorNamesFile();
    void defaultCsv();
    void clearRemovesEverything();
    void decimateKeepsEachColumnsExtremes();
    void decimateKeepsEverythingWhenFew();
    void panelDrawsWideDataAtPixelDetail();

    void heatColourMonotone();
    void heatDownsampleTakesMax();
    void heatHitTestAndTooltip();
    void heatExport();
    void heatEmpty();
};

void TestCharts::panelApi()
{
    ChartPanel panel(QStringLiteral("My chart"));
    QVERIFY(panel.chart());
    QVERIFY(panel.chartView());
    QCOMPARE(panel.chartView()->chart(), panel.chart());
    QCOMPARE(panel.exportTitle(), QStringLiteral("My chart"));
    QCOMPARE(panel.chart()->title(), QStringLiteral("My chart"));
    panel.setTitle(QStringLiteral("Other"));
    QCOMPARE(panel.exportTitle(), QStringLiteral("Other"));
    QVERIFY(!panel.isZoomed());
}

void TestCharts::zoomPanReset()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    t.panel.zoomBy(2.0);
    QVERIFY(t.panel.isZoomed());
    QVERIFY2(t.x->max() - t.x->min() < 6, qPrintable(QString::number(t.x->max() - t.x->min())));
    QVERIFY(t.y->max() - t.y->min() < 60);
    const double minBeforePan = t.x->min();
    t.panel.panBy(50, 0); // shows data further right
    QVERIFY(t.x->min() > minBeforePan);
    t.panel.resetZoom();
    QVERIFY(!t.panel.isZoomed());
    QCOMPARE(t.x->min(), 0.0);
    QCOMPARE(t.x->max(), 10.0);
    QCOMPARE(t.y->min(), 0.0);
    QCOMPARE(t.y->max(), 100.0);

    // Pan alone also resets.
    t.panel.panBy(-40, 30);
    QVERIFY(t.x->min() < 0);
    t.panel.resetZoom();
    QCOMPARE(t.x->min(), 0.0);
    QCOMPARE(t.y->max(), 100.0);

    // Arrow keys pan, Home resets.
    t.panel.chartView()->setFocus();
    QTest::keyClick(t.panel.chartView(), Qt::Key_Right);
    QVERIFY(t.x->min() > 0);
    QTest::keyClick(t.panel.chartView(), Qt::Key_Home);
    QCOMPARE(t.x->min(), 0.0);
}

void TestCharts::wheelAndDoubleClick()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    QWidget* vp = t.panel.chartView()->viewport();
    const QPointF centre = t.panel.chartView()->mapFromScene(
        t.panel.chart()->mapToScene(t.panel.chart()->plotArea().center()));
    QWheelEvent wheel(centre, vp->mapToGlobal(centre), QPoint(), QPoint(0, 240), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QApplication::sendEvent(vp, &wheel);
    QVERIFY(t.panel.isZoomed());
    QVERIFY(t.x->max() - t.x->min() < 9);
    QTest::mouseDClick(vp, Qt::LeftButton, Qt::NoModifier, centre.toPoint());
    QCOMPARE(t.x->min(), 0.0);
    QCOMPARE(t.x->max(), 10.0);
    QVERIFY(!t.panel.isZoomed());
}

void TestCharts::rubberBandZoom()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    QWidget* vp = t.panel.chartView()->viewport();
    const QRectF plot = t.panel.chart()->plotArea();
    const auto toView = [&](QPointF chartPos) {
        return t.panel.chartView()->mapFromScene(t.panel.chart()->mapToScene(chartPos));
    };
    const QPoint a = toView(plot.topLeft() + QPointF(plot.width() * 0.25, plot.height() * 0.25));
    const QPoint b = toView(plot.topLeft() + QPointF(plot.width() * 0.5, plot.height() * 0.5));
    QTest::mousePress(vp, Qt::LeftButton, Qt::NoModifier, a);
    QTest::mouseMove(vp, b);
    QTest::mouseRelease(vp, Qt::LeftButton, Qt::NoModifier, b);
    QVERIFY2(t.x->min() > 2 && t.x->max() < 6, qPrintable(QStringLiteral("%1 %2").arg(t.x->min()).arg(t.x->max())));
    t.panel.resetZoom();
    QCOMPARE(t.x->max(), 10.0);
}

void TestCharts::ownerRangeIsNewBaseline()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    t.panel.zoomBy(3);
    QVERIFY(t.panel.isZoomed());
    t.x->setRange(0, 20); // the owner shows new data
    QVERIFY(!t.panel.isZoomed());
    t.panel.resetZoom();
    QCOMPARE(t.x->max(), 20.0);
}

void TestCharts::hoverText()
{
    ChartPanel panel(QStringLiteral("Hover"));
    auto* line = new QLineSeries;
    line->setName(QStringLiteral("line"));
    line->append(1, 10);
    line->append(2, 42.5);
    panel.chart()->addSeries(line);
    panel.attachHover(line);
    const QString t = panel.hoverText(line, 1);
    QVERIFY2(t.contains("line") && t.contains("42.5") && t.contains("2"), qPrintable(t));

    auto* set = new QBarSet(QStringLiteral("bits"));
    *set << 1 << 7 << 3;
    auto* bars = new QBarSeries;
    bars->append(set);
    panel.chart()->addSeries(bars);
    auto* cats = new QBarCategoryAxis;
    cats->append({QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")});
    panel.chart()->addAxis(cats, Qt::AlignBottom);
    bars->attachAxis(cats);
    panel.attachHoverToAll();
    const QString b = panel.hoverText(bars, 1, set);
    QVERIFY2(b.contains("bits") && b.contains("b: 7"), qPrintable(b));

    panel.attachHover(line, [](int i, const QBarSet*) { return QStringLiteral("custom %1").arg(i); });
    QCOMPARE(panel.hoverText(line, 0), QStringLiteral("custom 0"));
}

void TestCharts::exportPanel()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    t.panel.setCsvSource([] { return QStringLiteral("x,y\n1,2\n"); });
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QString error;
    const QString png = dir.filePath("c.png"), svg = dir.filePath("c.svg"), csv = dir.filePath("c.csv");
    QVERIFY2(t.panel.exportPng(png, &error), qPrintable(error));
    const QImage img(png);
    QVERIFY(!img.isNull());
    QVERIFY(img.width() >= 600 && img.height() >= 380);
    QVERIFY2(nonBackgroundFraction(img) > 0.01, qPrintable(QString::number(nonBackgroundFraction(img))));
    QVERIFY2(t.panel.exportSvg(svg, &error), qPrintable(error));
    const QString svgText = readText(svg);
    QVERIFY(svgText.contains("<svg"));
    QVERIFY(svgText.contains("Line test"));
    QVERIFY2(t.panel.exportCsv(csv, &error), qPrintable(error));
    QCOMPARE(readText(csv), QStringLiteral("x,y\n1,2\n"));

    // A panel never shown still exports a picture.
    ChartPanel hidden(QStringLiteral("Hidden"));
    auto* s = new QLineSeries;
    s->append(0, 0);
    s->append(1, 1);
    hidden.chart()->addSeries(s);
    hidden.chart()->createDefaultAxes();
    QVERIFY2(hidden.exportPng(png, &error), qPrintable(error));
    QVERIFY(nonBackgroundFraction(QImage(png)) > 0.005);
}

void TestCharts::exportErrorNamesFile()
{
    ChartPanel panel(QStringLiteral("E"));
    const QString bad = QStringLiteral("/nonexistent-dir-ql/sub/out");
    QString error;
    QVERIFY(!panel.exportCsv(bad + ".csv", &error));
    QVERIFY2(error.contains(bad + ".csv"), qPrintable(error));
    error.clear();
    QVERIFY(!panel.exportSvg(bad + ".svg", &error));
    QVERIFY2(error.contains(bad + ".svg"), qPrintable(error));
    error.clear();
    QVERIFY(!panel.exportPng(bad + ".png", &error));
    QVERIFY2(error.contains(bad + ".png"), qPrintable(error));
}

void TestCharts::defaultCsv()
{
    ChartPanel panel(QStringLiteral("D"));
    auto* line = new QLineSeries;
    line->setName(QStringLiteral("a,b"));
    line->append(1, 2);
    line->append(3, 4.5);
    panel.chart()->addSeries(line);
    QCOMPARE(panel.csvText(), QStringLiteral("series,x,y\n\"a,b\",1,2\n\"a,b\",3,4.5\n"));
}

namespace {

// A noisy series with rare spikes both ways, x = 0 .. n-1.
QList<QPointF> spiky(int n)
{
    QList<QPointF> pts;
    quint32 state = 12345;
    for (int i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;
        double y = double(state >> 8) / double(1 << 24) - 0.5;
        if (i % 733 == 17) y = 40;
        if (i % 911 == 3) y = -25;
        pts.append(QPointF(i, y));
    }
    return pts;
}

} // namespace

void TestCharts::decimateKeepsEachColumnsExtremes()
{
    const QList<QPointF> pts = spiky(10000);
    const double x0 = 1234.5, x1 = 8765.25;
    const int columns = 300;
    for (Decimation mode : {Decimation::MinMax, Decimation::Max, Decimation::Min}) {
        const QList<QPointF> out = decimate(pts, x0, x1, columns, mode);
        // Every kept point is an input point, in input order; at most what the columns hold.
        QVERIFY(out.size() <= (mode == Decimation::MinMax ? 2 : 1) * columns + 2);
        for (qsizetype i = 0; i < out.size(); ++i) {
            const int k = int(out[i].x());
            QCOMPARE(out[i].x(), double(k));
            QCOMPARE(out[i].y(), pts[k].y());
            if (i > 0) QVERIFY(out[i].x() > out[i - 1].x());
        }
        // The neighbours outside the range, so the line reaches both edges.
        QCOMPARE(out.front().x(), 1234.0);
        QCOMPARE(out.back().x(), 8766.0);
        // Naively, per column: the extremes of its points must be drawn.
        std::vector<double> lo(columns, 1e300), hi(columns, -1e300), keptLo(columns, 1e300), keptHi(columns, -1e300);
        const auto col = [&](double x) {
            return std::clamp(int(std::floor((x - x0) / (x1 - x0) * columns)), 0, columns - 1);
        };
        for (const QPointF& p : pts)
            if (p.x() >= x0 && p.x() <= x1)
                lo[col(p.x())] = std::min(lo[col(p.x())], p.y()), hi[col(p.x())] = std::max(hi[col(p.x())], p.y());
        for (const QPointF& p : out)
            if (p.x() >= x0 && p.x() <= x1)
                keptLo[col(p.x())] = std::min(keptLo[col(p.x())], p.y()),
                keptHi[col(p.x())] = std::max(keptHi[col(p.x())], p.y());
        for (int c = 0; c < columns; ++c) {
            if (mode != Decimation::Min) QCOMPARE(keptHi[size_t(c)], hi[size_t(c)]);
            if (mode != Decimation::Max) QCOMPARE(keptLo[size_t(c)], lo[size_t(c)]);
            if (mode == Decimation::Max) QCOMPARE(keptLo[size_t(c)], hi[size_t(c)]); // one point: the highest
        }
    }
}

void TestCharts::decimateKeepsEverythingWhenFew()
{
    const QList<QPointF> pts = spiky(1000);
    // 41 points in range, 100 columns: all kept, with a neighbour each side.
    const QList<QPointF> out = decimate(pts, 100, 140, 100, Decimation::MinMax);
    QCOMPARE(out, pts.mid(99, 43));
    // The whole range, at the ends: no neighbours to add.
    QCOMPARE(decimate(pts, 0, 999, 2000, Decimation::Max), pts);
    QVERIFY(decimate({}, 0, 1, 10, Decimation::MinMax).isEmpty());
    // A range between two points keeps the two neighbours.
    QCOMPARE(decimate(pts, 10.2, 10.8, 5, Decimation::MinMax), pts.mid(10, 2));
}

void TestCharts::panelDrawsWideDataAtPixelDetail()
{
    LinePanel t;
    QVERIFY(QTest::qWaitForWindowExposed(&t.panel));
    const QList<QPointF> pts = spiky(20000);
    t.x->setRange(0, 19999);
    t.y->setRange(-30, 45);
    t.panel.setPoints(t.series, pts);
    QTRY_VERIFY(t.panel.chart()->plotArea().width() > 100);
    const int columns = int(std::ceil(t.panel.chart()->plotArea().width() * t.panel.devicePixelRatioF()));
    QVERIFY2(t.series->count() <= 2 * columns + 2, qPrintable(QString::number(t.series->count())));
    QVERIFY(t.series->count() > columns / 2);
    // Every spike is drawn.
    for (const QPointF& p : pts)
        if (std::abs(p.y()) > 20) QVERIFY(t.series->points().contains(p));
    // Zoomed in to a few hundred points, every point of the range is drawn; reset goes back.
    t.panel.zoomBy(60.0);
    QVERIFY(t.x->max() - t.x->min() < 400);
    for (const QPointF& p : pts)
        if (p.x() >= t.x->min() && p.x() <= t.x->max()) QVERIFY(t.series->points().contains(p));
    QVERIFY(t.series->count() < 500);
    t.panel.resetZoom();
    QVERIFY(t.series->count() <= 2 * columns + 2 && t.series->count() > columns / 2);
    // Export and hover see the data, not the drawn subset.
    QCOMPARE(t.panel.allPoints(t.series).size(), pts.size());
    QCOMPARE(t.panel.csvText().count(QLatin1Char('\n')), 20001);
    const int i = int(t.series->points().indexOf(QPointF(17, 40)));
    QVERIFY(i >= 0);
    QVERIFY2(t.panel.hoverText(t.series, i).contains(QStringLiteral("40")), qPrintable(t.panel.hoverText(t.series, i)));
    // A resize redraws at the new width.
    t.panel.resize(300, 300);
    QTRY_VERIFY(t.series->count() <=
                2 * int(std::ceil(t.panel.chart()->plotArea().width() * t.panel.devicePixelRatioF())) + 2);
}

void TestCharts::clearRemovesEverything()
{
    LinePanel t;
    t.panel.clear();
    QVERIFY(t.panel.chart()->series().isEmpty());
    QVERIFY(t.panel.chart()->axes().isEmpty());
    QCOMPARE(t.panel.csvText(), QStringLiteral("series,x,y\n"));
}

void TestCharts::heatColourMonotone()
{
    HeatMapWidget heat(QStringLiteral("H"));
    const std::vector<float> values{0.f, 1e-3f, -0.01f, 0.5f, -2.f, 10.f, 300.f, -4000.f};
    heat.setMatrix(values, 2, 4);
    QCOMPARE(heat.rows(), 2);
    QCOMPARE(heat.cols(), 4);
    QCOMPARE(heat.logMin(), std::log10(0.0 + HeatMapWidget::kEps));
    QVERIFY(std::abs(heat.logMax() - std::log10(4000.0 + HeatMapWidget::kEps)) < 1e-9);
    std::vector<float> mags;
    for (float v : values) mags.push_back(std::abs(v));
    std::sort(mags.begin(), mags.end());
    QCOMPARE(heat.scalePosition(mags.front()), 0.0);
    QCOMPARE(heat.scalePosition(mags.back()), 1.0);
    // Sign does not matter, and both the scale position and the colour's lightness rise with |x|.
    QCOMPARE(heat.scalePosition(-2.f), heat.scalePosition(2.f));
    const auto luma = [](const QColor& c) { return 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue(); };
    for (size_t i = 1; i < mags.size(); ++i) {
        QVERIFY(heat.scalePosition(mags[i]) > heat.scalePosition(mags[i - 1]));
        const QColor a = heat.colourOf(mags[i - 1]), b = heat.colourOf(mags[i]);
        const double la = luma(a), lb = luma(b);
        QVERIFY2(lb > la, qPrintable(QStringLiteral("%1 %2").arg(la).arg(lb)));
    }
    // Luma (Rec. 601) of the ramp never falls: brighter means larger everywhere on the scale.
    for (int k = 1; k <= 100; ++k)
        QVERIFY(luma(HeatMapWidget::rampColour(k / 100.0)) >= luma(HeatMapWidget::rampColour((k - 1) / 100.0)));
    QVERIFY(luma(HeatMapWidget::rampColour(1.0)) > luma(HeatMapWidget::rampColour(0.0)) + 150);
}

void TestCharts::heatDownsampleTakesMax()
{
    // 4 × 8 matrix, values r*8+c except one spike (negative: |x| counts).
    const int rows = 4, cols = 8;
    std::vector<float> v(size_t(rows * cols));
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) v[size_t(r * cols + c)] = float(r * cols + c) * 0.1f;
    v[size_t(0 * cols + 5)] = -99.f;
    HeatMapWidget heat(QStringLiteral("H"));
    heat.setMatrix(v, rows, cols);
    int gr = 0, gc = 0;
    const std::vector<float> grid = heat.displayGrid(4, 2, &gr, &gc);
    QCOMPARE(gr, 2);
    QCOMPARE(gc, 4);
    for (int gy = 0; gy < gr; ++gy)
        for (int gx = 0; gx < gc; ++gx) {
            float expect = 0;
            for (int r = gy * 2; r < gy * 2 + 2; ++r)
                for (int c = gx * 2; c < gx * 2 + 2; ++c) expect = std::max(expect, std::abs(v[size_t(r * cols + c)]));
            QCOMPARE(grid[size_t(gy * gc + gx)], expect);
        }
    QCOMPARE(grid[2], 99.f);
    // Uneven blocks (8 columns into 3 pixels) still cover every column once.
    const std::vector<float> uneven = heat.displayGrid(3, 100, &gr, &gc);
    QCOMPARE(gr, 4);
    QCOMPARE(gc, 3);
    QCOMPARE(uneven[1], 0.4f); // columns 2..4 of row 0: the spike at 5 is not theirs
    QCOMPARE(uneven[2], 99.f); // columns 5..7 of row 0
    QCOMPARE(uneven[3 * 3 + 2], std::abs(v[size_t(3 * cols + 7)]));
    // A plot larger than the matrix shows every cell as it is.
    const std::vector<float> full = heat.displayGrid(100, 100, &gr, &gc);
    QCOMPARE(gr, rows);
    QCOMPARE(gc, cols);
    for (size_t i = 0; i < v.size(); ++i) QCOMPARE(full[i], std::abs(v[i]));
}

void TestCharts::heatHitTestAndTooltip()
{
    const int rows = 40, cols = 2000; // more columns than the widget has pixels
    std::vector<float> v(size_t(rows * cols), 0.5f);
    v[size_t(7 * cols + 1234)] = 80.f;
    HeatMapWidget heat(QStringLiteral("H"));
    heat.resize(700, 400);
    heat.setMatrix(v, rows, cols);
    heat.setTooltipText([](int r, int c, float x) { return QStringLiteral("r%1 c%2 v%3").arg(r).arg(c).arg(x); });
    const QRect plot = heat.plotRect(heat.size());
    QVERIFY(plot.width() < cols);
    const QPointF pos(plot.left() + (1234 + 0.5) * plot.width() / cols, plot.top() + (7 + 0.5) * plot.height() / rows);
    int r = -1, c = -1;
    QVERIFY(heat.cellAt(pos, &r, &c));
    QCOMPARE(r, 7);
    QCOMPARE(c, 1234); // the pixel's maximal cell, not its first cell
    QCOMPARE(heat.tooltipAt(pos), QStringLiteral("r7 c1234 v80"));
    QVERIFY(heat.tooltipAt(QPointF(1, 1)).isEmpty());
    QVERIFY(!heat.cellAt(QPointF(1, 1), &r, &c));
}

void TestCharts::heatExport()
{
    const int rows = 3, cols = 5;
    std::vector<float> v(size_t(rows * cols));
    for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 2 ? -1.f : 1.f) * float(i) * 0.37f;
    HeatMapWidget heat(QStringLiteral("Heat export"));
    heat.resize(600, 360);
    heat.setMatrix(v, rows, cols);
    QTemporaryDir dir;
    QString error;
    QVERIFY2(heat.exportPng(dir.filePath("h.png"), &error), qPrintable(error));
    const QImage img(dir.filePath("h.png"));
    QCOMPARE(img.size(), QSize(600, 360) * heat.devicePixelRatioF());
    QVERIFY(nonBackgroundFraction(img) > 0.2); // the matrix fills most of the picture
    // The plot's pixels carry the ramp's colours: the brightest cell is the ramp's top.
    const QRect plot = heat.plotRect(heat.size());
    const QPoint last(plot.left() + int((cols - 0.5) * plot.width() / cols),
                      plot.top() + int((rows - 0.5) * plot.height() / rows));
    QCOMPARE(QColor(img.pixel(last)), HeatMapWidget::rampColour(1.0));
    QVERIFY2(heat.exportSvg(dir.filePath("h.svg"), &error), qPrintable(error));
    QVERIFY(readText(dir.filePath("h.svg")).contains("<svg"));
    QVERIFY2(heat.exportCsv(dir.filePath("h.csv"), &error), qPrintable(error));
    const QStringList lines = readText(dir.filePath("h.csv")).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), rows + 1);
    QCOMPARE(lines[0], QStringLiteral("token,0,1,2,3,4"));
    for (int r = 0; r < rows; ++r) {
        const QStringList f = lines[r + 1].split(',');
        QCOMPARE(f.size(), cols + 1);
        QCOMPARE(f[0].toInt(), r);
        for (int c = 0; c < cols; ++c) QCOMPARE(f[c + 1].toFloat(), v[size_t(r * cols + c)]);
    }
    QVERIFY(!heat.exportCsv(QStringLiteral("/nonexistent-dir-ql/h.csv"), &error));
    QVERIFY(error.contains("/nonexistent-dir-ql/h.csv"));
}

void TestCharts::heatEmpty()
{
    HeatMapWidget heat(QStringLiteral("Empty"));
    heat.clear(QStringLiteral("nothing yet"));
    heat.resize(300, 200);
    heat.show();
    QVERIFY(QTest::qWaitForWindowExposed(&heat));
    QCOMPARE(heat.rows(), 0);
    int r, c;
    QVERIFY(!heat.cellAt(QPointF(150, 100), &r, &c));
    QVERIFY(!heat.renderImage().isNull());
    heat.setMatrix({1.f, 2.f}, 3, 3); // wrong size: treated as empty, not a crash
    QCOMPARE(heat.rows(), 0);
}

QTEST_MAIN(TestCharts)
#include "tst_charts.moc"
