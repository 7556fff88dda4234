#pragma once

#include "sensitivitymodel.h"

#include <QList>
#include <QWidget>

QT_BEGIN_NAMESPACE
class QLabel;
class QScatterSeries;
class QStackedWidget;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;
class Selection;

namespace detail {
/// Colour of a projection ("q_proj" … "down_proj"), shared by the sensitivity bars and scatter.
QColor projectionColor(const QString& kind);
} // namespace detail

/// A cheap sensitivity measure (Hessian proxy or relative MSE) against end-to-end KL per layer on
/// log-log axes, one colour per projection, with core's Spearman rank correlation in the title.
/// When KL was not computed it shows a note saying so instead.
class KlScatter : public QWidget {
    Q_OBJECT
public:
    /// A scatter following (and setting) `selection`.
    explicit KlScatter(Selection* selection, QWidget* parent = nullptr);
    ~KlScatter() override;

    /// Plots `model`'s `xMeasure` against KL at `bits`; `summary` supplies the correlations (may be null).
    void setData(const SensitivityModel* model, const EndToEndSummary* summary, SensitivityMeasure xMeasure, int bits);
    /// The chart panel.
    ChartPanel* panel() const { return m_panel; }
    /// True when the note replaces the chart.
    bool showsNote() const;
    /// The note's text.
    QString noteText() const;
    /// Marks the selected layer's point.
    void followSelection();

private:
    void showNote(const QString& text);
    QString csv() const;

    Selection* m_selection;
    const SensitivityModel* m_model = nullptr;
    SensitivityMeasure m_xMeasure = SensitivityMeasure::Proxy;
    int m_bits = 0;
    QStackedWidget* m_stack;
    ChartPanel* m_panel;
    QLabel* m_note;
    QList<QScatterSeries*> m_series; // one per projection
    QList<QList<int>> m_rows;        // model row of each point
    QScatterSeries* m_selected = nullptr;
};

} // namespace ql
