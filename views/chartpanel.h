#pragma once

#include "decimation.h"
#include "exportable.h"

#include <QHash>
#include <QPointer>
#include <QVariant>
#include <QWidget>

#include <functional>

QT_BEGIN_NAMESPACE
class QAbstractAxis;
class QAbstractSeries;
class QBarSet;
class QChart;
class QChartView;
class QMenu;
class QToolButton;
class QXYSeries;
QT_END_NAMESPACE

namespace ql {

namespace detail {
class InteractiveChartView;
}

/// A QtCharts chart with the interactions every QuantLens chart shares: rubber-band zoom (left
/// drag), wheel zoom around the cursor, pan (right/middle drag, arrow keys), reset (double-click,
/// Home key, the ⟲ button or the menu), Shift + click or drag to pick x values, hover tooltips, and export to PNG / SVG
/// / CSV from the Export button or the context menu (right click without dragging).
///
/// Owners fill chart() with series and axes, call attachHover() (or attachHoverToAll()) for the
/// series whose values should show on hover, and setCsvSource() for the data behind the chart
/// (without one, exportCsv writes the chart's series as generic CSV).
class ChartPanel : public QWidget, public Exportable {
    Q_OBJECT
public:
    /// Text of a hover tooltip: index of the point (XY series) or category (bar series), and the
    /// bar set for bar series (null for XY series).
    using HoverText = std::function<QString(int index, const QBarSet* set)>;

    /// A chart titled `title` (the title is also the default export file name).
    explicit ChartPanel(const QString& title, QWidget* parent = nullptr);
    ~ChartPanel() override;

    /// The chart; owners add series and axes to it.
    QChart* chart() const;
    /// The view showing the chart.
    QChartView* chartView() const;

    /// Sets the chart title and the export title.
    void setTitle(const QString& title);
    /// Supplies the CSV text that exportCsv writes (called at export time, so it is always current).
    void setCsvSource(std::function<QString()> csv);
    /// The CSV exportCsv would write now.
    QString csvText() const;

    /// Removes every series and axis (and forgets zoom state), ready to be filled again.
    void clear();
    /// Restores the axis ranges from before the first zoom or pan.
    void resetZoom();
    /// True while zoomed or panned away from the owner's ranges.
    bool isZoomed() const { return !m_savedRanges.isEmpty(); }
    /// Zooms by `factor` (> 1 zooms in) around `chartPos` (chart coordinates; default plot centre).
    void zoomBy(double factor, QPointF chartPos = QPointF(-1, -1));
    /// Pans by a pixel offset (positive dx shows data further right).
    void panBy(double dx, double dy);

    /// Draws an XY series (already attached to its x axis) from `points`, sorted by x, reduced to
    /// what the plot's pixel columns can show, and again after every zoom, pan or resize: one
    /// point per channel of a 7B model stays fast to draw. Hover indices refer to drawn points.
    void setPoints(QXYSeries* series, QList<QPointF> points, Decimation mode = Decimation::MinMax);
    /// The points given to setPoints() for a series, or the drawn points of any other series.
    QList<QPointF> allPoints(const QXYSeries* series) const;

    /// Shows tooltips with the values under the mouse for an XY, area or bar series already added
    /// to chart(); `text` overrides the default "name: x, y" text.
    void attachHover(QAbstractSeries* series, HoverText text = {});
    /// attachHover() for every series of the chart not attached yet.
    void attachHoverToAll();
    /// Adds `series` to the chart on axes x and y, with hover `text`, calling clicked(index of
    /// the point) when a point is clicked.
    void addClickableSeries(QXYSeries* series, QAbstractAxis* x, QAbstractAxis* y, HoverText text,
                            std::function<void(int index)> clicked);
    /// The tooltip text the panel would show for a series' point or category (for tests and owners).
    QString hoverText(QAbstractSeries* series, int index, const QBarSet* set = nullptr) const;

    QString exportTitle() const override;
    bool exportPng(const QString& path, QString* error = nullptr) const override;
    bool exportSvg(const QString& path, QString* error = nullptr) const override;
    bool exportCsv(const QString& path, QString* error = nullptr) const override;

    /// Asks for a file name and exports (used by the menu; shows errors in a message box).
    void exportWithDialog(const QString& format);

signals:
    /// Shift + click or Shift + drag picked the x values from..to (chart value coordinates; equal
    /// for a click), e.g. a range of channels.
    void xRangePicked(double from, double to);

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    friend class detail::InteractiveChartView;
    struct SavedRange {
        QPointer<QAbstractAxis> axis;
        QVariant min, max;
    };

    void saveRangesBeforeInteraction();
    void onAxisRangeChanged();
    void refreshDetail();
    void drawDetail(QXYSeries* series);
    void onXYHovered(QAbstractSeries* series, const QPointF& point, bool state);
    void showContextMenu(const QPoint& globalPos);
    QString defaultCsv() const;
    void placeButtons();

    QChart* m_chart = nullptr;
    detail::InteractiveChartView* m_view = nullptr;
    QToolButton* m_resetButton = nullptr;
    QToolButton* m_menuButton = nullptr;
    QMenu* m_menu = nullptr;
    QString m_title;
    std::function<QString()> m_csv;
    QHash<QAbstractSeries*, HoverText> m_hover;
    struct Detailed {
        QList<QPointF> points;
        Decimation mode;
    };
    QHash<QXYSeries*, Detailed> m_detail; // series drawn through setPoints()
    QList<SavedRange> m_savedRanges;
    bool m_interacting = false; // true while the panel itself changes axis ranges
};

} // namespace ql
