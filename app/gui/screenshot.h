#pragma once

#include <QObject>
#include <QSize>
#include <QString>

namespace ql {

class MainWindow;
class Workbench;

/// `quantlens --project P --view V --screenshot F.png`: waits for the project to load (running
/// the analysis when its store has none, and the outliers view's activation sample), renders
/// the view at a fixed size into F and ends the application with 0, or 1 and a message. The
/// plan view waits for the what-if's measure; "export" renders the export dialog's GGUF preview,
/// "pareto" a sweep of every allocator and "compare" every method on block 1's o_proj.
class Screenshot : public QObject {
    Q_OBJECT
public:
    Screenshot(Workbench* workbench, MainWindow* window, QString view, QString file, QSize size,
               QObject* parent = nullptr);
    /// Starts by opening the project.
    void start(const QString& projectPath);

private:
    void loaded();
    void analysed();
    void render();
    void exportDialog();
    void sweepOrCompare();
    void grab();
    void fail(const QString& message);

    Workbench* m_wb;
    MainWindow* m_window;
    QString m_view, m_file;
    QSize m_size;
    QWidget* m_page = nullptr; ///< the page taken out of the window to be rendered alone
    bool m_done = false;
    int m_tab = -1; ///< outliers tab for the heatmap and depth pictures
};

} // namespace ql
