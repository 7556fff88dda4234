#pragma once
// Axes the depth charts share: blocks along x, a log scale of whole decades along y.

#include <QString>

QT_BEGIN_NAMESPACE
class QLogValueAxis;
class QValueAxis;
QT_END_NAMESPACE

namespace ql::detail {

/// A value axis over blocks `first`..`last` (half a block beyond each), integer ticks every
/// `count` / 16 blocks (at least every block).
QValueAxis* blockAxis(const QString& title, double first, double last, int count);

/// A base-10 log axis over the whole decades around [`lo`, `hi`] (`lo` > 0), with minor ticks at
/// 2×, 3×, … 9× while there are few decades.
QLogValueAxis* decadeAxis(const QString& title, double lo, double hi);

} // namespace ql::detail
