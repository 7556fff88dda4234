#pragma once

#include "quantlens/store/rundiff.h"

#include <QWidget>

QT_BEGIN_NAMESPACE
class QCheckBox;
class QLabel;
class QTableWidget;
QT_END_NAMESPACE

namespace ql {

/// Two kept runs layer by layer: each side's spec, bits per weight and errors, the spec keys that
/// differ, and the layers whose specs differ highlighted (or shown alone).
class RunDiffView : public QWidget {
    Q_OBJECT
public:
    explicit RunDiffView(QWidget* parent = nullptr);

    /// Shows a comparison; nameA and nameB head the two sides (e.g. the runs' names and measures).
    void setDiff(const RunDiff& diff, const QString& nameA, const QString& nameB);
    /// The comparison shown.
    const RunDiff& diff() const { return m_diff; }
    /// The table (tests); a highlighted row's layer cell is bold.
    QTableWidget* table() const { return m_table; }
    /// Shows only the layers whose specs differ (on by default).
    void setOnlyDifferences(bool only);

signals:
    /// The user picked a layer's row.
    void layerActivated(const QString& layer);

private:
    void fill();

    RunDiff m_diff;
    QString m_nameA, m_nameB;
    QLabel* m_title;
    QCheckBox* m_only;
    QTableWidget* m_table;
};

} // namespace ql
