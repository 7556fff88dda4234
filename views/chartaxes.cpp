#include "chartaxes.h"

#include <QLogValueAxis>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql::detail {

QValueAxis* blockAxis(const QString& title, double first, double last, int count)
{
    auto* x = new QValueAxis;
    x->setTitleText(title);
    x->setRange(first - 0.5, last + 0.5);
    x->setLabelFormat(QStringLiteral("%d"));
    x->setTickType(QValueAxis::TicksDynamic);
    x->setTickAnchor(0);
    x->setTickInterval(std::max(1, count / 16));
    return x;
}

QLogValueAxis* decadeAxis(const QString& title, double lo, double hi)
{
    auto* y = new QLogValueAxis;
    y->setBase(10);
    y->setTitleText(title);
    y->setLabelFormat(QStringLiteral("%g"));
    // Whole decades, so the axis always has labelled ticks.
    y->setRange(std::pow(10.0, std::floor(std::log10(lo))), std::pow(10.0, std::ceil(std::log10(hi * 1.0001))));
    // Minor ticks only while they stay readable (few decades).
    y->setMinorTickCount(std::log10(y->max() / y->min()) <= 3.5 ? 8 : 0);
    return y;
}

} // namespace ql::detail
