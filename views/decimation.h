#pragma once

#include <QList>
#include <QPointF>

namespace ql {

/// What decimate() keeps of the points falling in one pixel column.
enum class Decimation {
    MinMax, ///< the lowest and the highest point, in x order (a line looks as with every point)
    Max,    ///< the highest point (the upper edge of a band)
    Min,    ///< the lowest point (the lower edge of a band)
};

/// The points of a polyline sorted by x, reduced for a plot `columns` pixels wide that shows
/// x in [x0, x1]: per column what `mode` keeps, plus the nearest point outside each end so the
/// line reaches the plot's edges. When the range holds no more points than the columns can
/// show, every point in it is kept. Kept points are input points, in input order.
QList<QPointF> decimate(const QList<QPointF>& points, double x0, double x1, int columns, Decimation mode);

} // namespace ql
