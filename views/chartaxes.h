#pragma once
// Axes and pens the charts share: blocks or indices (channels, rows) along x, a log scale of
// whole decades along y, and the thin pen for polylines across thousands of points.

#include <QPen>
#include <QString>

QT_BEGIN_NAMESPACE
class QColor;
class QLogValueAxis;
class QValueAxis;
QT_END_NAMESPACE

namespace ql::detail {

/// A value axis over blocks `first`..`last` (half a block beyond each), integer ticks every
/// `count` / 16 blocks (at least every block).
QValueAxis* blockAxis(const QString& title, double first, double last, int count);

/// A value axis over indices 0..`count` - 1 (channels, rows) with ticks at round numbers
/// (1, 2 or 5 × 10^k) about `count` / 8 apart.
QValueAxis* indexAxis(const QString& title, qint64 count);

/// A cosmetic pen `width` device pixels wide: the fast stroker, which a polyline across
/// thousands of channels needs.
QPen hairline(const QColor& colour, double width);

/// A base-10 log axis over the whole decades around [`lo`, `hi`] (`lo` > 0), with minor ticks at
/// 2×, 3×, … 9× while there are few decades.
QLogValueAxis* decadeAxis(const QString& title, double lo, double hi);

} // namespace ql::detail
