#include "chartpanel.h"

#include <QAbstractBarSeries>
#include <QApplication>
#include <QAreaSeries>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QBuffer>
#include <QChart>
#include <QChartView>
#include <QCursor>
#include <QDateTimeAxis>
#include <QFileDialog>
#include <QImage>
#include <QKeyEvent>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QMenu>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPainter>
#include <QStandardPaths>
#include <QSvgGenerator>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QValueAxis>
#include <QWheelEvent>
#include <QXYSeries>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ql {

namespace {

QString num(double v)
{
    return QString::number(v, 'g', 6);
}

// Quotes a CSV field only when it needs it, so plain numbers stay plain.
QString csvField(QString s)
{
    if (s.contains(',') || s.contains('"') || s.contains('\n')) return '"' + s.replace('"', "\"\"") + '"';
    return s;
}

// A file name from a title: keeps letters, digits, '-', '_', '.'.
QString fileStem(const QString& title)
{
    QString s;
    for (QChar c : title) s += (c.isLetterOrNumber() || c == '-' || c == '_' || c == '.') ? c : QChar('_');
    return s.isEmpty() ? QStringLiteral("chart") : s;
}

// Category label of a bar series' index, from its attached category axis when it has one.
QString barCategory(QAbstractBarSeries* bars, int index)
{
    for (QAbstractAxis* axis : bars->attachedAxes())
        if (auto* cat = qobject_cast<QBarCategoryAxis*>(axis))
            if (index >= 0 && index < cat->count()) return cat->at(index);
    return QString::number(index);
}

} // namespace

namespace detail {

/// QChartView with wheel zoom, right/middle-drag pan, keyboard pan and double-click reset; left
/// drag keeps QChartView's own rubber band. Right click without a drag opens the panel's menu.
class InteractiveChartView : public QChartView {
public:
    InteractiveChartView(QChart* chart, ChartPanel* panel) : QChartView(chart), m_panel(panel)
    {
        setRubberBand(QChartView::RectangleRubberBand);
        setRenderHint(QPainter::Antialiasing);
        setFocusPolicy(Qt::StrongFocus);
        setMouseTracking(true);
    }

protected:
    void wheelEvent(QWheelEvent* e) override
    {
        const double notches = e->angleDelta().y() / 120.0;
        if (notches == 0) return;
        const QPointF pos = chart()->mapFromScene(mapToScene(e->position().toPoint()));
        m_panel->zoomBy(std::pow(1.25, notches), pos);
        e->accept();
    }
    void mousePressEvent(QMouseEvent* e) override
    {
        if (e->button() == Qt::LeftButton && (e->modifiers() & Qt::ShiftModifier)) {
            m_picking = true; // Shift: pick an x range instead of zooming
            m_pickFrom = valueX(e->position());
            e->accept();
            return;
        }
        if (e->button() == Qt::RightButton || e->button() == Qt::MiddleButton) {
            m_panButton = e->button();
            m_panStart = m_panLast = e->position();
            e->accept();
            return;
        }
        QChartView::mousePressEvent(e);
    }
    void mouseMoveEvent(QMouseEvent* e) override
    {
        if (m_picking) {
            e->accept();
            return;
        }
        if (m_panButton != Qt::NoButton) {
            const QPointF d = e->position() - m_panLast;
            m_panLast = e->position();
            // Only start panning past a small threshold so a right click still opens the menu.
            if ((e->position() - m_panStart).manhattanLength() > 3 || m_panned) {
                m_panned = true;
                m_panel->panBy(-d.x(), d.y());
            }
            e->accept();
            return;
        }
        QChartView::mouseMoveEvent(e);
    }
    void mouseReleaseEvent(QMouseEvent* e) override
    {
        if (m_picking && e->button() == Qt::LeftButton) {
            m_picking = false;
            const double to = valueX(e->position());
            emit m_panel->xRangePicked(std::min(m_pickFrom, to), std::max(m_pickFrom, to));
            e->accept();
            return;
        }
        if (e->button() == m_panButton && m_panButton != Qt::NoButton) {
            const bool menu = m_panButton == Qt::RightButton && !m_panned;
            m_panButton = Qt::NoButton;
            m_panned = false;
            if (menu) m_panel->showContextMenu(e->globalPosition().toPoint());
            e->accept();
            return;
        }
        if (e->button() == Qt::RightButton) return; // QChartView would zoom out; we pan instead
        // The rubber band zooms inside QChartView; remember the ranges before it does.
        if (e->button() == Qt::LeftButton) m_panel->saveRangesBeforeInteraction();
        m_panel->m_interacting = true;
        QChartView::mouseReleaseEvent(e);
        m_panel->m_interacting = false;
    }
    void mouseDoubleClickEvent(QMouseEvent* e) override
    {
        if (e->button() == Qt::LeftButton) {
            m_panel->resetZoom();
            e->accept();
            return;
        }
        QChartView::mouseDoubleClickEvent(e);
    }
    void keyPressEvent(QKeyEvent* e) override
    {
        const QRectF plot = chart()->plotArea();
        const double sx = plot.width() * 0.1, sy = plot.height() * 0.1;
        switch (e->key()) {
        case Qt::Key_Left: m_panel->panBy(-sx, 0); break;
        case Qt::Key_Right: m_panel->panBy(sx, 0); break;
        case Qt::Key_Up: m_panel->panBy(0, sy); break;
        case Qt::Key_Down: m_panel->panBy(0, -sy); break;
        case Qt::Key_Plus:
        case Qt::Key_Equal: m_panel->zoomBy(1.25); break;
        case Qt::Key_Minus: m_panel->zoomBy(0.8); break;
        case Qt::Key_Home:
        case Qt::Key_Escape: m_panel->resetZoom(); break;
        default: QChartView::keyPressEvent(e); return;
        }
        e->accept();
    }

private:
    // The x value under a view position.
    double valueX(const QPointF& pos) const
    {
        return chart()->mapToValue(chart()->mapFromScene(mapToScene(pos.toPoint()))).x();
    }

    ChartPanel* m_panel;
    Qt::MouseButton m_panButton = Qt::NoButton;
    QPointF m_panStart, m_panLast;
    bool m_panned = false;
    bool m_picking = false;
    double m_pickFrom = 0;
};

} // namespace detail

ChartPanel::ChartPanel(const QString& title, QWidget* parent) : QWidget(parent), m_title(title)
{
    m_chart = new QChart;
    m_chart->setTitle(title);
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_chart->setMargins(QMargins(4, 4, 4, 4));
    m_view = new detail::InteractiveChartView(m_chart, this); // the view owns the chart
    connect(m_chart, &QChart::plotAreaChanged, this, &ChartPanel::refreshDetail);
    m_view->setToolTip(tr("Drag: zoom · wheel: zoom · right/middle drag or arrows: pan · "
                          "double-click: reset · right click: export"));

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_view);

    m_menu = new QMenu(this);
    m_menu->addAction(tr("Reset zoom"), this, &ChartPanel::resetZoom);
    m_menu->addSeparator();
    m_menu->addAction(tr("Export PNG…"), this, [this] { exportWithDialog(QStringLiteral("png")); });
    m_menu->addAction(tr("Export SVG…"), this, [this] { exportWithDialog(QStringLiteral("svg")); });
    m_menu->addAction(tr("Export CSV…"), this, [this] { exportWithDialog(QStringLiteral("csv")); });

    // Small overlay buttons in the top-right corner: no toolbar row eating chart height.
    m_resetButton = new QToolButton(this);
    m_resetButton->setText(QStringLiteral("⟲"));
    m_resetButton->setToolTip(tr("Reset zoom"));
    m_resetButton->setAutoRaise(true);
    connect(m_resetButton, &QToolButton::clicked, this, &ChartPanel::resetZoom);
    m_menuButton = new QToolButton(this);
    m_menuButton->setText(tr("Export"));
    m_menuButton->setToolTip(tr("Export and zoom"));
    m_menuButton->setAutoRaise(true);
    m_menuButton->setPopupMode(QToolButton::InstantPopup);
    m_menuButton->setMenu(m_menu);
    placeButtons();
}

ChartPanel::~ChartPanel()
{
    // The view owns the chart and its series, whose destroyed() handlers touch m_hover: delete
    // them while the members are still alive rather than in ~QWidget after the members are gone.
    delete m_view;
}

QChart* ChartPanel::chart() const
{
    return m_chart;
}

QChartView* ChartPanel::chartView() const
{
    return m_view;
}

void ChartPanel::setTitle(const QString& title)
{
    m_title = title;
    m_chart->setTitle(title);
}

void ChartPanel::setCsvSource(std::function<QString()> csv)
{
    m_csv = std::move(csv);
}

QString ChartPanel::csvText() const
{
    return m_csv ? m_csv() : defaultCsv();
}

void ChartPanel::clear()
{
    QToolTip::hideText();
    m_savedRanges.clear();
    m_hover.clear();
    m_detail.clear();
    m_chart->removeAllSeries();
    for (QAbstractAxis* axis : m_chart->axes()) {
        m_chart->removeAxis(axis);
        delete axis;
    }
}

void ChartPanel::saveRangesBeforeInteraction()
{
    if (!m_savedRanges.isEmpty()) return; // keep the ranges from before the first interaction
    for (QAbstractAxis* axis : m_chart->axes()) {
        SavedRange r{axis, {}, {}};
        if (auto* v = qobject_cast<QValueAxis*>(axis)) {
            r.min = v->min(), r.max = v->max();
            connect(v, &QValueAxis::rangeChanged, this, &ChartPanel::onAxisRangeChanged, Qt::UniqueConnection);
        } else if (auto* l = qobject_cast<QLogValueAxis*>(axis)) {
            r.min = l->min(), r.max = l->max();
            connect(l, &QLogValueAxis::rangeChanged, this, &ChartPanel::onAxisRangeChanged, Qt::UniqueConnection);
        } else if (auto* c = qobject_cast<QBarCategoryAxis*>(axis)) {
            r.min = c->min(), r.max = c->max();
            connect(c, &QBarCategoryAxis::rangeChanged, this, &ChartPanel::onAxisRangeChanged, Qt::UniqueConnection);
        } else if (auto* d = qobject_cast<QDateTimeAxis*>(axis)) {
            r.min = d->min(), r.max = d->max();
            connect(d, &QDateTimeAxis::rangeChanged, this, &ChartPanel::onAxisRangeChanged, Qt::UniqueConnection);
        } else {
            continue;
        }
        m_savedRanges.append(r);
    }
}

void ChartPanel::onAxisRangeChanged()
{
    // The owner set new ranges (new data): those are the new "unzoomed" state.
    if (!m_interacting) m_savedRanges.clear();
}

void ChartPanel::resetZoom()
{
    m_interacting = true;
    for (const SavedRange& r : std::as_const(m_savedRanges))
        if (r.axis) r.axis->setRange(r.min, r.max);
    m_interacting = false;
    m_savedRanges.clear();
}

void ChartPanel::zoomBy(double factor, QPointF chartPos)
{
    if (factor <= 0) return;
    const QRectF plot = m_chart->plotArea();
    if (plot.isEmpty()) return;
    if (!plot.contains(chartPos)) chartPos = plot.center();
    // The point under the cursor stays where it is; the rest scales around it.
    const double s = 1.0 / factor;
    const QRectF r(chartPos.x() - (chartPos.x() - plot.left()) * s, chartPos.y() - (chartPos.y() - plot.top()) * s,
                   plot.width() * s, plot.height() * s);
    saveRangesBeforeInteraction();
    m_interacting = true;
    m_chart->zoomIn(r);
    m_interacting = false;
}

void ChartPanel::panBy(double dx, double dy)
{
    saveRangesBeforeInteraction();
    m_interacting = true;
    m_chart->scroll(dx, dy);
    m_interacting = false;
}

void ChartPanel::attachHover(QAbstractSeries* series, HoverText text)
{
    if (!series) return;
    const bool known = m_hover.contains(series);
    m_hover.insert(series, std::move(text));
    if (known) return;
    connect(series, &QObject::destroyed, this, [this, series] { m_hover.remove(series); });
    if (auto* xy = qobject_cast<QXYSeries*>(series)) {
        connect(xy, &QXYSeries::hovered, this,
                [this, series](const QPointF& p, bool state) { onXYHovered(series, p, state); });
    } else if (auto* area = qobject_cast<QAreaSeries*>(series)) {
        connect(area, &QAreaSeries::hovered, this,
                [this, series](const QPointF& p, bool state) { onXYHovered(series, p, state); });
    } else if (auto* bars = qobject_cast<QAbstractBarSeries*>(series)) {
        connect(bars, &QAbstractBarSeries::hovered, this, [this, series](bool state, int index, QBarSet* set) {
            if (state)
                QToolTip::showText(QCursor::pos(), hoverText(series, index, set), m_view);
            else
                QToolTip::hideText();
        });
    }
}

namespace {

// The x axis a series is drawn against: its own, or the chart's (the edges of an area series
// are not in the chart themselves).
QValueAxis* xAxisOf(QXYSeries* series, const QChart* chart)
{
    for (QAbstractAxis* axis : series->attachedAxes())
        if (axis->orientation() == Qt::Horizontal) return qobject_cast<QValueAxis*>(axis);
    return qobject_cast<QValueAxis*>(chart->axes(Qt::Horizontal).value(0));
}

} // namespace

void ChartPanel::setPoints(QXYSeries* series, QList<QPointF> points, Decimation mode)
{
    if (!series) return;
    if (!m_detail.contains(series))
        connect(series, &QObject::destroyed, this, [this, series] { m_detail.remove(series); });
    if (QValueAxis* x = xAxisOf(series, m_chart))
        connect(x, &QValueAxis::rangeChanged, this, &ChartPanel::refreshDetail, Qt::UniqueConnection);
    m_detail.insert(series, Detailed{std::move(points), mode});
    drawDetail(series);
}

QList<QPointF> ChartPanel::allPoints(const QXYSeries* series) const
{
    const auto it = m_detail.constFind(const_cast<QXYSeries*>(series));
    return it != m_detail.constEnd() ? it->points : series->points();
}

void ChartPanel::refreshDetail()
{
    for (auto it = m_detail.begin(); it != m_detail.end(); ++it) drawDetail(it.key());
}

void ChartPanel::drawDetail(QXYSeries* series)
{
    const Detailed& d = m_detail[series];
    if (d.points.isEmpty()) {
        series->clear();
        return;
    }
    // Device pixels across the plot; before the first layout, a typical width.
    const double plotWidth = m_chart->plotArea().width();
    const int columns = plotWidth >= 8 ? int(std::ceil(plotWidth * devicePixelRatioF())) : 1000;
    const QValueAxis* x = xAxisOf(series, m_chart);
    const double x0 = x ? x->min() : d.points.front().x(), x1 = x ? x->max() : d.points.back().x();
    series->replace(decimate(d.points, x0, x1, columns, d.mode));
}

void ChartPanel::addClickableSeries(QXYSeries* series, QAbstractAxis* x, QAbstractAxis* y, HoverText text,
                                    std::function<void(int index)> clicked)
{
    chart()->addSeries(series);
    series->attachAxis(x);
    series->attachAxis(y);
    attachHover(series, std::move(text));
    connect(series, &QXYSeries::clicked, this, [series, clicked = std::move(clicked)](const QPointF& p) {
        const int index = int(series->points().indexOf(p));
        if (index >= 0) clicked(index);
    });
}

void ChartPanel::attachHoverToAll()
{
    for (QAbstractSeries* s : m_chart->series())
        if (!m_hover.contains(s)) attachHover(s);
}

void ChartPanel::onXYHovered(QAbstractSeries* series, const QPointF& point, bool state)
{
    if (!state) {
        QToolTip::hideText();
        return;
    }
    const QXYSeries* xy = qobject_cast<QXYSeries*>(series);
    if (auto* area = qobject_cast<QAreaSeries*>(series)) xy = area->upperSeries();
    if (!xy || xy->count() == 0) return;
    // QtCharts reports the mouse position, not a data point: pick the nearest point on screen.
    const QPointF mouse = m_chart->mapToPosition(point, series);
    int best = -1;
    double bestD = std::numeric_limits<double>::max();
    for (int i = 0; i < xy->count(); ++i) {
        const QPointF p = m_chart->mapToPosition(xy->at(i), series);
        const double d = std::abs(p.x() - mouse.x()) * 4 + std::abs(p.y() - mouse.y());
        if (d < bestD) bestD = d, best = i;
    }
    QToolTip::showText(QCursor::pos(), hoverText(series, best), m_view);
}

QString ChartPanel::hoverText(QAbstractSeries* series, int index, const QBarSet* set) const
{
    const auto it = m_hover.constFind(series);
    if (it != m_hover.constEnd() && *it) return (*it)(index, set);
    if (auto* bars = qobject_cast<QAbstractBarSeries*>(series)) {
        if (!set || index < 0 || index >= set->count()) return {};
        const QString label = set->label().isEmpty() ? bars->name() : set->label();
        return QStringLiteral("%1\n%2: %3").arg(label, barCategory(bars, index), num(set->at(index)));
    }
    if (auto* area = qobject_cast<QAreaSeries*>(series)) {
        const QXYSeries* up = area->upperSeries();
        const QXYSeries* lo = area->lowerSeries();
        if (!up || index < 0 || index >= up->count()) return {};
        QString t =
            QStringLiteral("%1\nx = %2\nupper = %3").arg(area->name(), num(up->at(index).x()), num(up->at(index).y()));
        if (lo && lo->count() > 0) { // the edges may be drawn at different x (setPoints)
            const QList<QPointF> pts = lo->points();
            const double x = up->at(index).x();
            const auto nearest = std::min_element(pts.begin(), pts.end(), [x](const QPointF& a, const QPointF& b) {
                return std::abs(a.x() - x) < std::abs(b.x() - x);
            });
            t += QStringLiteral("\nlower = %1").arg(num(nearest->y()));
        }
        return t;
    }
    if (auto* xy = qobject_cast<QXYSeries*>(series)) {
        if (index < 0 || index >= xy->count()) return {};
        return QStringLiteral("%1\nx = %2\ny = %3").arg(xy->name(), num(xy->at(index).x()), num(xy->at(index).y()));
    }
    return {};
}

QString ChartPanel::defaultCsv() const
{
    // Long format so series of different lengths and kinds fit one table.
    QString out = QStringLiteral("series,x,y\n");
    const auto xyRows = [this, &out](const QString& name, const QXYSeries* s) {
        for (const QPointF& p : allPoints(s)) out += csvField(name) + ',' + num(p.x()) + ',' + num(p.y()) + '\n';
    };
    for (QAbstractSeries* series : m_chart->series()) {
        if (auto* area = qobject_cast<QAreaSeries*>(series)) {
            if (area->upperSeries()) xyRows(area->name() + " (upper)", area->upperSeries());
            if (area->lowerSeries()) xyRows(area->name() + " (lower)", area->lowerSeries());
        } else if (auto* xy = qobject_cast<QXYSeries*>(series)) {
            xyRows(xy->name(), xy);
        } else if (auto* bars = qobject_cast<QAbstractBarSeries*>(series)) {
            for (QBarSet* set : bars->barSets())
                for (int i = 0; i < set->count(); ++i)
                    out += csvField(set->label()) + ',' + csvField(barCategory(bars, i)) + ',' + num(set->at(i)) + '\n';
        }
    }
    return out;
}

QString ChartPanel::exportTitle() const
{
    return m_title;
}

bool ChartPanel::exportPng(const QString& path, QString* error) const
{
    // A panel never shown has no layout yet; give it a sensible picture size.
    if (!isVisible() && (width() < 64 || height() < 64)) const_cast<ChartPanel*>(this)->resize(900, 540);
    const qreal dpr = devicePixelRatioF();
    QImage img((QSizeF(m_view->size()) * dpr).toSize(), QImage::Format_ARGB32_Premultiplied);
    img.setDevicePixelRatio(dpr);
    img.fill(Qt::white);
    {
        QPainter p(&img);
        // QWidget::render (not QGraphicsView's) also lays out a widget that was never shown.
        static_cast<QWidget*>(m_view)->render(&p, QPoint(), QRegion(), QWidget::DrawChildren);
    }
    return detail::writeExportPng(path, img, error);
}

bool ChartPanel::exportSvg(const QString& path, QString* error) const
{
    if (!isVisible() && (width() < 64 || height() < 64)) const_cast<ChartPanel*>(this)->resize(900, 540);
    // Generate into memory first so a write failure is reported with the file's name.
    QBuffer buffer;
    buffer.open(QIODevice::WriteOnly);
    QSvgGenerator gen;
    gen.setOutputDevice(&buffer);
    gen.setSize(m_view->size());
    gen.setViewBox(QRect(QPoint(0, 0), m_view->size()));
    gen.setTitle(m_title);
    gen.setDescription(tr("QuantLens chart"));
    {
        QPainter p(&gen);
        // QWidget::render (not QGraphicsView's) also lays out a widget that was never shown.
        static_cast<QWidget*>(m_view)->render(&p, QPoint(), QRegion(), QWidget::DrawChildren);
    }
    return detail::writeExportFile(path, buffer.data(), error);
}

bool ChartPanel::exportCsv(const QString& path, QString* error) const
{
    return detail::writeExportFile(path, csvText().toUtf8(), error);
}

void ChartPanel::exportWithDialog(const QString& format)
{
    const QString filter = format == "png"   ? tr("PNG image (*.png)")
                           : format == "svg" ? tr("SVG image (*.svg)")
                                             : tr("CSV table (*.csv)");
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
    const QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(format.toUpper()),
                                                      dir + '/' + fileStem(m_title) + '.' + format, filter);
    if (path.isEmpty()) return;
    QString error;
    const bool ok = format == "png"   ? exportPng(path, &error)
                    : format == "svg" ? exportSvg(path, &error)
                                      : exportCsv(path, &error);
    if (!ok) QMessageBox::warning(this, tr("Export failed"), error);
}

void ChartPanel::showContextMenu(const QPoint& globalPos)
{
    m_menu->popup(globalPos);
}

void ChartPanel::placeButtons()
{
    // Sized here, not at construction: the hint is only right once the style has polished them.
    m_menuButton->resize(m_menuButton->sizeHint());
    m_resetButton->resize(m_resetButton->sizeHint());
    m_menuButton->move(width() - m_menuButton->width() - 4, 4);
    m_resetButton->move(m_menuButton->x() - m_resetButton->width() - 2, 4);
    m_menuButton->raise();
    m_resetButton->raise();
}

void ChartPanel::resizeEvent(QResizeEvent* event)
{
    QWidget::resizeEvent(event);
    placeButtons();
}

} // namespace ql
