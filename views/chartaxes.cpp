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

QValueAxis* indexAxis(const QString& title, qint64 count)
{
    auto* x = new QValueAxis;
    x->setTitleText(title);
    x->setRange(0, std::max<double>(1, double(count - 1)));
    x->setLabelFormat(QStringLiteral("%d"));
    const double raw = std::max(1.0, double(count) / 8);
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * magnitude;
    for (double f : {1.0, 2.0, 5.0})
        if (f * magnitude >= raw) {
            step = f * magnitude;
            break;
        }
    x->setTickType(QValueAxis::TicksDynamic);
    x->setTickAnchor(0);
    x->setTickInterval(step);
    return x;
}

QPen hairline(const QColor& colour, double width)
{
    QPen pen(colour, width);
    pen.setCosmetic(true);
    return pen;
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
