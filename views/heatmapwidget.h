#pragma once

#include "exportable.h"

#include <QImage>
#include <QWidget>

#include <functional>
#include <vector>

namespace ql {

/// Heat map of |x| for a row-major matrix (rows = tokens, columns = channels), painted by hand.
///
/// Colour mapping (display only): t = (log10(|x| + eps) − lo) / (hi − lo), where lo and hi are the
/// minimum and maximum of log10(|x| + eps) over the whole matrix; t runs through a viridis-like
/// ramp whose lightness rises with t, so brighter always means larger |x|. A colour bar on the
/// right labels the scale in |x|.
///
/// When the matrix has more rows or columns than the plot has pixels, each pixel shows the
/// maximum |x| of the cells it covers (so a single outlier channel never disappears), and the
/// hover tooltip reports that maximal cell.
class HeatMapWidget : public QWidget, public Exportable {
    Q_OBJECT
public:
    /// Tooltip text for a cell (row, column, signed value).
    using TooltipText = std::function<QString(int row, int col, float value)>;
    /// eps of the log colour scale, so zeros map to log10(eps) instead of −∞.
    static constexpr float kEps = 1e-6f;

    /// A heat map titled `title` (also the default export file name).
    explicit HeatMapWidget(const QString& title, QWidget* parent = nullptr);

    /// Shows a rows × cols row-major matrix; values.size() must be rows * cols.
    void setMatrix(std::vector<float> values, int rows, int cols);
    /// Removes the matrix and shows `placeholder` instead.
    void clear(const QString& placeholder = QString());
    /// Text shown while there is no matrix.
    void setPlaceholderText(const QString& text);
    /// Sets the title drawn above the map.
    void setTitle(const QString& title);
    /// Axis titles (defaults: "token position", "channel").
    void setAxisTitles(const QString& rowTitle, const QString& colTitle);
    /// Sets the hover tooltip text (default: "row r, channel c: value").
    void setTooltipText(TooltipText text);

    /// Rows of the matrix (0 when empty).
    int rows() const { return m_rows; }
    /// Columns of the matrix (0 when empty).
    int cols() const { return m_cols; }
    /// Signed value of a cell.
    float value(int row, int col) const { return m_values[size_t(row) * size_t(m_cols) + size_t(col)]; }
    /// log10(|x| + eps) at the low end of the colour scale (the smallest |x| of the matrix).
    double logMin() const { return m_logMin; }
    /// log10(|x| + eps) at the high end of the colour scale (the largest |x| of the matrix).
    double logMax() const { return m_logMax; }

    /// Position of |value| on the colour scale, 0 (lowest shown) … 1 (highest shown).
    double scalePosition(float value) const;
    /// Colour of a value under the current scale.
    QColor colourOf(float value) const { return rampColour(scalePosition(value)); }
    /// The colour ramp at t in [0, 1].
    static QColor rampColour(double t);

    /// Max |x| grid for a plot of `width` × `height` pixels: min(cols, width) × min(rows, height)
    /// cells, row-major; each cell is the maximum |x| over the matrix cells it covers.
    std::vector<float> displayGrid(int width, int height, int* gridRows, int* gridCols) const;
    /// The matrix cell under a widget position (the max |x| cell of a downsampled pixel).
    bool cellAt(const QPointF& pos, int* row, int* col) const;
    /// The tooltip text for a widget position (empty outside the matrix).
    QString tooltipAt(const QPointF& pos) const;
    /// The rectangle the matrix is drawn in, for a widget of `size`.
    QRect plotRect(const QSize& size) const;

    /// Renders the widget's picture into an image of `size` (default: the widget's size).
    QImage renderImage(QSize size = QSize()) const;

    QString exportTitle() const override;
    bool exportPng(const QString& path, QString* error = nullptr) const override;
    bool exportSvg(const QString& path, QString* error = nullptr) const override;
    bool exportCsv(const QString& path, QString* error = nullptr) const override;
    /// The CSV exportCsv writes: header "token,0,1,…" then one line of signed values per row.
    QString csvText() const;

    QSize sizeHint() const override { return {800, 420}; }
    QSize minimumSizeHint() const override { return {240, 160}; }

signals:
    /// Emitted when the mouse moves onto another cell.
    void cellHovered(int row, int col, float value);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    bool event(QEvent* event) override;

private:
    void paintTo(QPainter& p, const QSize& size) const;
    void paintColourBar(QPainter& p, const QRect& bar) const;
    void paintAxes(QPainter& p, const QRect& plot) const;
    const QImage& gridImage(int width, int height) const;
    static void blockRange(int pixel, int pixels, int cells, int* first, int* last);

    QString m_title, m_rowTitle, m_colTitle, m_placeholder;
    std::vector<float> m_values;
    int m_rows = 0, m_cols = 0;
    double m_logMin = 0, m_logMax = 0;
    TooltipText m_tooltip;
    int m_lastRow = -1, m_lastCol = -1;
    // The coloured grid for the last plot size; rebuilt on resize or new data.
    mutable QImage m_cache;
    mutable QSize m_cacheSize;
};

} // namespace ql
