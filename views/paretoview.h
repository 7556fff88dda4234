#pragma once

#include "quantlens/recipe/recipe.h"

#include <QList>
#include <QString>
#include <QWidget>

#include <optional>

QT_BEGIN_NAMESPACE
class QLabel;
class QScatterSeries;
class QStackedWidget;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;

/// One plan of a sweep, measured: where it lands on the size-quality plane.
struct ParetoPoint {
    QString label;            ///< "uniform gptq w3 g128", "knapsack at 3 bpw"
    QString family;           ///< "uniform" or the allocator
    QString measure;          ///< the error the allocator minimised ("-" for uniform plans)
    double bitsPerWeight = 0; ///< of the linears (codes, scales, zeros), as the plan editor counts
    double meanKl = 0;        ///< mean KL to the float model on the quick slice, nats
    double top1 = 0;          ///< top-1 agreement with the float model
    double ppl = 0;           ///< perplexity on the quick slice
    Recipe recipe;            ///< the plan, to load into the editor
};

/// The size-quality plane: bits per weight against quick KL (log scale), one colour per family
/// (the uniform plans and each allocator), filled point by point as a sweep measures them. Hover
/// names a plan, clicking a point asks for its plan, and the current plan is a ring.
class ParetoView : public QWidget {
    Q_OBJECT
public:
    explicit ParetoView(QWidget* parent = nullptr);
    ~ParetoView() override;

    /// Forgets every point (a new sweep).
    void clear();
    /// Adds a measured plan and redraws.
    void addPoint(const ParetoPoint& point);
    /// The points so far, in the order added.
    const QList<ParetoPoint>& points() const { return m_points; }
    /// Marks the current plan at its size and, when measured, its quick KL.
    void setCurrent(double bitsPerWeight, std::optional<double> meanKl);
    /// What clicking point `index` does: emits planChosen with its plan.
    void choose(int index);
    /// The chart panel.
    ChartPanel* panel() const { return m_panel; }

signals:
    /// The user picked a point: load its plan.
    void planChosen(const ql::Recipe& recipe, const QString& label);

private:
    void redraw();
    QString csv() const;

    QList<ParetoPoint> m_points;
    double m_currentBits = 0;
    std::optional<double> m_currentKl;
    QStackedWidget* m_stack;
    ChartPanel* m_panel;
    QLabel* m_note;
    QList<QScatterSeries*> m_series;
    QList<QList<int>> m_indices; // point index of each drawn point, per series
};

} // namespace ql
