// UI-thread cost of each view on analyses of realistic width, without running a model: the
// snapshot is the view tests' fixture at the shapes of SmolLM-135M (hidden 576, intermediate
// 1536, 30 blocks) and LLaMA-7B (4096, 11008, 32 blocks), with realistic per-channel statistics.
// For each view, with the events each step posts (layout, repaint) processed as the event loop
// would: a new snapshot, the slowest of several selection changes, and a full paint (the slowest
// of three), against the paint of a plain widget of the same size measured in the same run.
// usage: ql-bench-view-paint   (prints a table, then one JSON object)
#include "entropyview.h"
#include "explorerview.h"
#include "massiveview.h"
#include "outliersview.h"
#include "overviewview.h"
#include "selection.h"
#include "sensitivityview.h"
#include "viewsnapshotfixture.h"
#include "weightsview.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QLabel>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace {

double ms(const QElapsedTimer& t) { return double(t.nsecsElapsed()) / 1e6; }

// The slowest of three full paints of a shown widget (the first one also lays out and caches).
double paintMs(QWidget& w)
{
    std::vector<double> t;
    for (int i = 0; i < 3; ++i) {
        QElapsedTimer clock;
        clock.start();
        w.grab();
        t.push_back(ms(clock));
    }
    std::sort(t.begin(), t.end());
    return t[2];
}

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
    if (qEnvironmentVariableIsSet("QL_BENCH_PARTS"))
        for (QWidget* w : view.template findChildren<QWidget*>())
            if (w->isVisible() && w->width() > 200 && w->height() > 100) {
                const double t = paintMs(*w);
                if (t > 5) std::printf("    %s %s %dx%d %.1f ms\n", w->metaObject()->className(), qPrintable(w->objectName()), w->width(), w->height(), t);
            }
    return c;
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QLabel plain(QStringLiteral("baseline"));
    plain.resize(1200, 800);
    plain.show();
    const double base = paintMs(plain);
    std::printf("baseline paint of a plain 1200x800 widget: %.2f ms\n", base);
    std::string json = "{\"baseline_paint_ms\": " + std::to_string(base);
    double worst = 0;
    struct Shape {
        const char* name;
        int blocks, hidden, inter;
    };
    for (const Shape& s : {Shape{"smollm-135m", 30, 576, 1536}, Shape{"llama-7b", 32, 4096, 11008}}) {
        const ql::SnapshotPtr snap = viewfixture::makeSnapshot(true, true, s.blocks, s.hidden, s.inter, 256);
        // The down_proj of a few blocks: its site is the widest (the intermediate size).
        std::vector<QString> picks;
        for (int b : {1, s.blocks / 2, s.blocks - 2})
            picks.push_back(QString::fromStdString(viewfixture::layerName(b, ql::LinearKind::Down)));
        std::printf("%s (hidden %d, intermediate %d, %d blocks):\n", s.name, s.hidden, s.inter, s.blocks);
        std::printf("  %-12s %12s %12s %10s %8s\n", "view", "snapshot", "selection", "paint", "x base");
        const QString only = qEnvironmentVariable("QL_BENCH_VIEW"); // one view, for profiling
        auto report = [&](const char* view, const Cost& c) {
            std::printf("  %-12s %9.1f ms %9.1f ms %7.1f ms %8.1f\n", view, c.set, c.select, c.paint, c.paint / base);
            worst = std::max({worst, c.set, c.select, c.paint});
            json += std::string(", \"") + s.name + "_" + view + "_ms\": [" + std::to_string(c.set) + ", " +
                    std::to_string(c.select) + ", " + std::to_string(c.paint) + "]";
        };
        if (only.isEmpty() || only == "overview") report("overview", timeView<ql::OverviewView>(snap, picks));
        if (only.isEmpty() || only == "outliers") report("outliers", timeView<ql::OutliersView>(snap, picks));
        if (only.isEmpty() || only == "massive") report("massive", timeView<ql::MassiveView>(snap, picks));
        if (only.isEmpty() || only == "sensitivity") report("sensitivity", timeView<ql::SensitivityView>(snap, picks));
        if (only.isEmpty() || only == "entropy") report("entropy", timeView<ql::EntropyView>(snap, picks));
        if (only.isEmpty() || only == "weights") report("weights", timeView<ql::WeightsView>(snap, picks));
        if (only.isEmpty() || only == "explorer") report("explorer", timeView<ql::ExplorerView>(snap, picks));
    }
    json += ", \"worst_ms\": " + std::to_string(worst) + "}";
    std::printf("%s\n", json.c_str());
    (void)argc, (void)argv;
    return 0;
}
