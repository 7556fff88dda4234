#include "decimation.h"

#include <algorithm>
#include <cmath>

namespace ql {

QList<QPointF> decimate(const QList<QPointF>& points, double x0, double x1, int columns, Decimation mode)
{
    const auto byX = [](const QPointF& p, double x) { return p.x() < x; };
    const auto xBy = [](double x, const QPointF& p) { return x < p.x(); };
    // [first, last): the points inside the range, widened by one neighbour on each side.
    qsizetype first = std::lower_bound(points.begin(), points.end(), x0, byX) - points.begin();
    qsizetype last = std::upper_bound(points.begin(), points.end(), x1, xBy) - points.begin();
    const qsizetype inside = last - first;
    first = std::max<qsizetype>(0, first - 1);
    last = std::min<qsizetype>(points.size(), last + 1);
    const qsizetype perColumn = mode == Decimation::MinMax ? 2 : 1;
    if (columns <= 0 || !(x1 > x0) || inside <= perColumn * columns) return points.mid(first, last - first);

    QList<QPointF> out;
    out.reserve(perColumn * columns + 2);
    const double scale = double(columns) / (x1 - x0);
    const auto column = [&](double x) { return std::clamp(int(std::floor((x - x0) * scale)), 0, columns - 1); };
    qsizetype i = first;
    if (points[i].x() < x0) out.append(points[i++]); // the neighbour before the range
    const qsizetype end = points[last - 1].x() > x1 ? last - 1 : last;
    while (i < end) {
        const int col = column(points[i].x());
        qsizetype lo = i, hi = i;
        for (++i; i < end && column(points[i].x()) == col; ++i) {
            if (points[i].y() < points[lo].y() || std::isnan(points[lo].y())) lo = i;
            if (points[i].y() > points[hi].y() || std::isnan(points[hi].y())) hi = i;
        }
        if (mode == Decimation::Max)
            out.append(points[hi]);
        else if (mode == Decimation::Min)
            out.append(points[lo]);
        else {
            out.append(points[std::min(lo, hi)]);
            if (lo != hi) out.append(points[std::max(lo, hi)]);
        }
    }
    if (end < last) out.append(points[end]); // the neighbour after the range
    return out;
}

} // namespace ql
