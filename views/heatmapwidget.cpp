#include "heatmapwidget.h"

#include <QBuffer>
#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QSvgGenerator>
#include <QToolTip>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <cmath>

namespace ql {

namespace {

// Layout of the picture around the plot, in pixels.
constexpr int kLeft = 64, kRight = 96, kBottom = 44, kBarGap = 14, kBarWidth = 14;

// Anchors of a viridis-like ramp; their lightness rises monotonically, so the eye reads order.
constexpr std::array<std::array<int, 3>, 5> kRamp{
    {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};

// Shortest text that reads back as the same float, so CSV round-trips exactly.
QString floatText(float v)
{
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return QString::fromLatin1(buf, int(r.ptr - buf));
}

// A step of 1, 2 or 5 × 10^k that gives at most maxTicks ticks over `range`.
int niceStep(int range, int maxTicks)
{
    if (maxTicks < 1) maxTicks = 1;
    const double raw = std::max(1.0, double(range) / maxTicks);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw) return std::max(1, int(m * mag));
    return std::max(1, int(10 * mag));
}

// |x| for a point on the log scale, for colour bar labels.
QString absLabel(double logValue)
{
    const double v = std::max(0.0, std::pow(10.0, logValue) - HeatMapWidget::kEps);
    return QString::number(v, 'g', 3);
}

} // namespace

HeatMapWidget::HeatMapWidget(const QString& title, QWidget* parent)
    : QWidget(parent), m_title(title), m_rowTitle(tr("token position")), m_colTitle(tr("channel")),
      m_placeholder(tr("No data"))
{
    setMouseTracking(true);
    setAttribute(Qt::WA_OpaquePaintEvent);
}

void HeatMapWidget::setMatrix(std::vector<float> values, int rows, int cols)
{
    if (rows <= 0 || cols <= 0 || values.size() != size_t(rows) * size_t(cols)) {
        clear();
        return;
    }
    m_values = std::move(values);
    m_rows = rows;
    m_cols = cols;
    // Colour scale spans what is shown: the whole matrix.
    float lo = std::numeric_limits<float>::max(), hi = 0;
    for (float v : m_values) {
        const float a = std::abs(v);
        if (std::isfinite(a)) lo = std::min(lo, a), hi = std::max(hi, a);
    }
    if (hi < lo) lo = hi = 0;
    m_logMin = std::log10(double(lo) + kEps);
    m_logMax = std::log10(double(hi) + kEps);
    m_cache = QImage();
    m_lastRow = m_lastCol = -1;
    update();
}

void HeatMapWidget::clear(const QString& placeholder)
{
    m_values.clear();
    m_rows = m_cols = 0;
    m_logMin = m_logMax = 0;
    m_cache = QImage();
    if (!placeholder.isEmpty()) m_placeholder = placeholder;
    update();
}

void HeatMapWidget::setPlaceholderText(const QString& text)
{
    m_placeholder = text;
    update();
}

void HeatMapWidget::setTitle(const QString& title)
{
    m_title = title;
    update();
}

void HeatMapWidget::setAxisTitles(const QString& rowTitle, const QString& colTitle)
{
    m_rowTitle = rowTitle;
    m_colTitle = colTitle;
    update();
}

void HeatMapWidget::setTooltipText(TooltipText text)
{
    m_tooltip = std::move(text);
}

double HeatMapWidget::scalePosition(float value) const
{
    const double span = m_logMax - m_logMin;
    if (span <= 0) return 1.0; // a constant matrix: everything at the top of the scale
    const double t = (std::log10(double(std::abs(value)) + kEps) - m_logMin) / span;
    return std::clamp(t, 0.0, 1.0);
}

QColor HeatMapWidget::rampColour(double t)
{
    t = std::clamp(t, 0.0, 1.0) * double(kRamp.size() - 1);
    const size_t i = std::min(size_t(t), kRamp.size() - 2);
    const double f = t - double(i);
    const auto mix = [&](int c) { return int(std::lround(kRamp[i][c] + (kRamp[i + 1][c] - kRamp[i][c]) * f)); };
    return QColor(mix(0), mix(1), mix(2));
}

void HeatMapWidget::blockRange(int pixel, int pixels, int cells, int* first, int* last)
{
    if (cells <= pixels) {
        *first = *last = pixel;
        return;
    }
    *first = int(int64_t(pixel) * cells / pixels);
    *last = int(int64_t(pixel + 1) * cells / pixels) - 1;
}

std::vector<float> HeatMapWidget::displayGrid(int width, int height, int* gridRows, int* gridCols) const
{
    const int gr = std::min(m_rows, std::max(1, height)), gc = std::min(m_cols, std::max(1, width));
    *gridRows = m_rows ? gr : 0;
    *gridCols = m_cols ? gc : 0;
    if (!m_rows || !m_cols) return {};
    std::vector<int> c0(static_cast<size_t>(gc)), c1(static_cast<size_t>(gc));
    for (int g = 0; g < gc; ++g) blockRange(g, gc, m_cols, &c0[size_t(g)], &c1[size_t(g)]);
    std::vector<float> grid(size_t(gr) * size_t(gc), 0.f);
    for (int gy = 0; gy < gr; ++gy) {
        int r0, r1;
        blockRange(gy, gr, m_rows, &r0, &r1);
        float* out = grid.data() + size_t(gy) * size_t(gc);
        for (int r = r0; r <= r1; ++r) {
            const float* row = m_values.data() + size_t(r) * size_t(m_cols);
            for (int gx = 0; gx < gc; ++gx)
                for (int c = c0[size_t(gx)]; c <= c1[size_t(gx)]; ++c) out[gx] = std::max(out[gx], std::abs(row[c]));
        }
    }
    return grid;
}

bool HeatMapWidget::cellAt(const QPointF& pos, int* row, int* col) const
{
    const QRect plot = plotRect(size());
    if (!m_rows || !m_cols || plot.isEmpty() || !plot.contains(pos.toPoint())) return false;
    const int gr = std::min(m_rows, plot.height()), gc = std::min(m_cols, plot.width());
    const int gx = std::clamp(int((pos.x() - plot.left()) * gc / plot.width()), 0, gc - 1);
    const int gy = std::clamp(int((pos.y() - plot.top()) * gr / plot.height()), 0, gr - 1);
    int r0, r1, c0, c1;
    blockRange(gy, gr, m_rows, &r0, &r1);
    blockRange(gx, gc, m_cols, &c0, &c1);
    // Report the cell whose value gave the pixel its colour.
    int br = r0, bc = c0;
    for (int r = r0; r <= r1; ++r)
        for (int c = c0; c <= c1; ++c)
            if (std::abs(value(r, c)) > std::abs(value(br, bc))) br = r, bc = c;
    *row = br;
    *col = bc;
    return true;
}

QRect HeatMapWidget::plotRect(const QSize& size) const
{
    const int top = fontMetrics().height() + 14;
    return QRect(kLeft, top, std::max(0, size.width() - kLeft - kRight), std::max(0, size.height() - top - kBottom));
}

const QImage& HeatMapWidget::gridImage(int width, int height) const
{
    if (!m_cache.isNull() && m_cacheSize == QSize(width, height)) return m_cache;
    int gr = 0, gc = 0;
    const std::vector<float> grid = displayGrid(width, height, &gr, &gc);
    m_cache = QImage(gc, gr, QImage::Format_RGB32);
    for (int y = 0; y < gr; ++y) {
        auto* line = reinterpret_cast<QRgb*>(m_cache.scanLine(y));
        for (int x = 0; x < gc; ++x) line[x] = colourOf(grid[size_t(y) * size_t(gc) + size_t(x)]).rgb();
    }
    m_cacheSize = QSize(width, height);
    return m_cache;
}

void HeatMapWidget::paintTo(QPainter& p, const QSize& size) const
{
    p.fillRect(QRect(QPoint(0, 0), size), palette().color(QPalette::Base));
    p.setPen(palette().color(QPalette::Text));
    QFont titleFont = font();
    titleFont.setBold(true);
    p.setFont(titleFont);
    p.drawText(QRect(0, 4, size.width(), fontMetrics().height() + 4), Qt::AlignHCenter | Qt::AlignTop, m_title);
    p.setFont(font());
    const QRect plot = plotRect(size);
    if (!m_rows || !m_cols || plot.width() < 2 || plot.height() < 2) {
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(QRect(QPoint(0, 0), size), Qt::AlignCenter | Qt::TextWordWrap, m_placeholder);
        return;
    }
    // Nearest-neighbour scaling: each matrix (or max-pooled) cell stays a crisp block.
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(plot, gridImage(plot.width(), plot.height()));
    p.setPen(palette().color(QPalette::Mid));
    p.drawRect(plot.adjusted(0, 0, -1, -1));
    paintAxes(p, plot);
    paintColourBar(p, QRect(plot.right() + kBarGap, plot.top(), kBarWidth, plot.height()));
}

void HeatMapWidget::paintAxes(QPainter& p, const QRect& plot) const
{
    const QFontMetrics fm = fontMetrics();
    p.setPen(palette().color(QPalette::Text));
    const int colStep = niceStep(m_cols, std::max(1, plot.width() / 70));
    for (int c = 0; c < m_cols; c += colStep) {
        const int x = plot.left() + int((c + 0.5) * plot.width() / m_cols);
        p.drawLine(x, plot.bottom() + 1, x, plot.bottom() + 4);
        const QString t = QString::number(c);
        p.drawText(x - fm.horizontalAdvance(t) / 2, plot.bottom() + 5 + fm.ascent(), t);
    }
    const int rowStep = niceStep(m_rows, std::max(1, plot.height() / (fm.height() * 2)));
    for (int r = 0; r < m_rows; r += rowStep) {
        const int y = plot.top() + int((r + 0.5) * plot.height() / m_rows);
        p.drawLine(plot.left() - 4, y, plot.left() - 1, y);
        const QString t = QString::number(r);
        p.drawText(plot.left() - 6 - fm.horizontalAdvance(t), y + fm.ascent() / 2 - 1, t);
    }
    p.drawText(QRect(plot.left(), plot.bottom() + 6 + fm.height(), plot.width(), fm.height() + 2), Qt::AlignHCenter,
               m_colTitle);
    p.save();
    p.translate(12, plot.center().y());
    p.rotate(-90);
    p.drawText(QRect(-plot.height() / 2, -fm.height() / 2 - 2, plot.height(), fm.height() + 4), Qt::AlignCenter,
               m_rowTitle);
    p.restore();
}

void HeatMapWidget::paintColourBar(QPainter& p, const QRect& bar) const
{
    const int h = bar.height();
    for (int y = 0; y < h; ++y)
        p.fillRect(bar.left(), bar.top() + y, bar.width(), 1, rampColour(1.0 - double(y) / std::max(1, h - 1)));
    p.setPen(palette().color(QPalette::Mid));
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    p.setPen(palette().color(QPalette::Text));
    const QFontMetrics fm = fontMetrics();
    p.drawText(bar.left() - 4, bar.top() - 4, QStringLiteral("|x|"));
    const double span = m_logMax - m_logMin;
    const auto yOf = [&](double lv) {
        return span > 0 ? bar.bottom() - int((lv - m_logMin) / span * (h - 1)) : bar.top();
    };
    const auto label = [&](const QString& text, int y) {
        p.drawLine(bar.right() + 1, y, bar.right() + 4, y);
        p.drawText(bar.right() + 7, y + fm.ascent() / 2 - 1, text);
    };
    // The ends show the actual smallest and largest |x|; decades show 10^k (eps is negligible there).
    label(absLabel(m_logMax), bar.top());
    if (span <= 0) return;
    label(absLabel(m_logMin), bar.bottom());
    // Decades between the ends, skipping ones that would overlap the end labels.
    for (double k = std::ceil(m_logMin); k <= std::floor(m_logMax); k += 1.0) {
        const int y = yOf(k);
        if (y - bar.top() > fm.height() && bar.bottom() - y > fm.height())
            label(QString::number(std::pow(10.0, k), 'g', 3), y);
    }
}

void HeatMapWidget::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    paintTo(p, size());
}

void HeatMapWidget::mouseMoveEvent(QMouseEvent* event)
{
    int r, c;
    if (cellAt(event->position(), &r, &c) && (r != m_lastRow || c != m_lastCol)) {
        m_lastRow = r;
        m_lastCol = c;
        emit cellHovered(r, c, value(r, c));
    }
    QWidget::mouseMoveEvent(event);
}

QString HeatMapWidget::tooltipAt(const QPointF& pos) const
{
    int r, c;
    if (!cellAt(pos, &r, &c)) return {};
    const float v = value(r, c);
    return m_tooltip ? m_tooltip(r, c, v) : tr("row %1, channel %2: %3").arg(r).arg(c).arg(double(v), 0, 'g', 5);
}

bool HeatMapWidget::event(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const QString text = tooltipAt(help->pos());
        if (!text.isEmpty()) {
            QToolTip::showText(help->globalPos(), text, this);
        } else {
            QToolTip::hideText();
            event->ignore();
        }
        return true;
    }
    return QWidget::event(event);
}

QImage HeatMapWidget::renderImage(QSize size) const
{
    if (!size.isValid() || size.width() < 64 || size.height() < 64)
        size = (width() >= 64 && height() >= 64) ? this->size() : QSize(900, 480);
    const qreal dpr = devicePixelRatioF();
    QImage img((QSizeF(size) * dpr).toSize(), QImage::Format_ARGB32_Premultiplied);
    img.setDevicePixelRatio(dpr);
    QPainter p(&img);
    paintTo(p, size);
    return img;
}

QString HeatMapWidget::exportTitle() const
{
    return m_title;
}

bool HeatMapWidget::exportPng(const QString& path, QString* error) const
{
    return detail::writeExportPng(path, renderImage(), error);
}

bool HeatMapWidget::exportSvg(const QString& path, QString* error) const
{
    const QSize size = (width() >= 64 && height() >= 64) ? this->size() : QSize(900, 480);
    QBuffer buffer;
    buffer.open(QIODevice::WriteOnly);
    QSvgGenerator gen;
    gen.setOutputDevice(&buffer);
    gen.setSize(size);
    gen.setViewBox(QRect(QPoint(0, 0), size));
    gen.setTitle(m_title);
    {
        QPainter p(&gen);
        paintTo(p, size);
    }
    return detail::writeExportFile(path, buffer.data(), error);
}

QString HeatMapWidget::csvText() const
{
    QString out = QStringLiteral("token");
    out.reserve(int(m_values.size()) * 8 + 16);
    for (int c = 0; c < m_cols; ++c) out += ',' + QString::number(c);
    out += '\n';
    for (int r = 0; r < m_rows; ++r) {
        out += QString::number(r);
        for (int c = 0; c < m_cols; ++c) out += ',' + floatText(value(r, c));
        out += '\n';
    }
    return out;
}

bool HeatMapWidget::exportCsv(const QString& path, QString* error) const
{
    return detail::writeExportFile(path, csvText().toUtf8(), error);
}

} // namespace ql
