// UI-thread cost of each view on analyses of realistic width, without running a model: the
// snapshot is the view tests' fixture at the shapes of SmolLM-135M (hidden 576, intermediate
// 1536, 30 blocks) and LLaMA-7B (4096, 11008, 32 blocks), with realistic per-channel statistics.
// For each view, with the events each step posts (layout, repaint) processed as the event loop
// would: a new snapshot, the slowest of several selection changes, and a full paint (the slowest
// of three), against the paint of a plain widget of the same size measured in the same run.
// usage: ql-bench-view-paint   (prints a table, then one JSON object; QL_BENCH_VIEW=outliers
// times that view alone, for profiling)
#include "entropyview.h"
#include "explorerview.h"
#include "massiveview.h"
#include "outliersview.h"
#include "overviewview.h"
#include "selection.h"
#include "sensitivityview.h"
#include "viewsnapshotfixture.h"
#include "viewtiming.h"
#include "weightsview.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QLabel>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

using viewtiming::Cost;
using viewtiming::paintMs;
using viewtiming::timeView;

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
    return 0;
}
