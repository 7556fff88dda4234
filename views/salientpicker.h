#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/quant/quantspec.h"

#include <QList>
#include <QWidget>

#include <vector>

QT_BEGIN_NAMESPACE
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
QT_END_NAMESPACE

namespace ql {

/// Salient input channels of a site, picked for the plan: channels or ranges from the chart
/// (Shift + click or drag), or the top k % by activation absmax (kept as the recipe's selector,
/// evaluated when the plan runs) or by E[x²] (the Hessian's diagonal over n, an explicit list);
/// then a format for them and "Set in plan" for the layers that read the site.
class SalientPicker : public QWidget {
    Q_OBJECT
public:
    explicit SalientPicker(QWidget* parent = nullptr);

    /// The site whose channels are picked (null: nothing to pick); clears the picks when it changes.
    void setSite(const SiteStats* site);
    /// Adds the channels in [from, to] (chart x values, rounded to channels; a click adds one).
    void addRange(double from, double to);
    /// Picks the top `percent` % by a criterion: 0 activation absmax (selector), 1 E[x²], 2 E|x| (lists).
    void pickTop(int criterion, double percent);
    /// Forgets the picks.
    void clear();
    /// The channels picked now, ascending (a selector's as evaluated on the site's statistics).
    const std::vector<int32_t>& channels() const { return m_channels; }
    /// The override "Set in plan" sends.
    ChannelOverride channelOverride() const;
    /// The format combo and the button (tests).
    QComboBox* formatBox() const { return m_format; }
    QPushButton* applyButton() const { return m_apply; }

signals:
    /// The picks changed (the chart highlights channels()).
    void picksChanged();
    /// Give these channels of the site their own format in the plan.
    void applyRequested(const QString& site, const ql::ChannelOverride& channels);

private:
    void updateLabel();

    const SiteStats* m_site = nullptr;
    std::vector<int32_t> m_channels;
    double m_selectorPercent = 0; ///< > 0 while the picks are exactly the absmax selector's
    QLabel* m_label;
    QComboBox* m_criterion;
    QDoubleSpinBox* m_percent;
    QComboBox* m_format;
    QPushButton* m_apply;
};

} // namespace ql
