#pragma once
// The UI-thread cost of one view, as the view benchmarks measure it: each step runs with the
// events it posts (layout, repaint) processed as the event loop would.
#include "selection.h"
#include "snapshot.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QWidget>

#include <algorithm>
#include <vector>

namespace viewtiming {

inline double ms(const QElapsedTimer& t)
{
    return double(t.nsecsElapsed()) / 1e6;
}

/// The slowest of three full paints of a shown widget (the first one also lays out and caches).
inline double paintMs(QWidget& w)
{
    std::vector<double> t;
    for (int i = 0; i < 3; ++i) {
        QElapsedTimer clock;
        clock.start();
        w.grab();
        t.push_back(ms(clock));
    }
    return *std::max_element(t.begin(), t.end());
}

/// Milliseconds of a view at 1200 × 800: taking `snap`, the slowest selection of one of
/// `layers`, and a full paint.
struct Cost {
    double set = 0, select = 0, paint = 0;
};

template <class View>
Cost timeView(const ql::SnapshotPtr& snap, const std::vector<QString>& layers)
{
    ql::Selection sel;
    View view(&sel);
    view.resize(1200, 800);
    view.show();
    Cost c;
    QElapsedTimer t;
    t.start();
    view.setSnapshot(snap);
    QCoreApplication::processEvents(); // the charts lay out in posted events
    c.set = ms(t);
    for (const QString& l : layers) {
        t.restart();
        sel.selectLayer(l);
        QCoreApplication::processEvents();
        c.select = std::max(c.select, ms(t));
    }
    c.paint = paintMs(view);
    return c;
}

} // namespace viewtiming
