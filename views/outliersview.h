#pragma once

#include "analysispage.h"
#include "snapshot.h"

#include "quantlens/quant/quantspec.h"

#include <QList>
#include <QWidget>

#include <memory>

QT_BEGIN_NAMESPACE
class QLabel;
class QLineSeries;
class QScatterSeries;
class QSpinBox;
class QStackedWidget;
class QTabWidget;
class QTableView;
QT_END_NAMESPACE

namespace ql {

class ChannelStatsModel;
class ChartPanel;
class DepthModel;
class Exportable;
class HeatMapWidget;
class SalientPicker;
class Selection;

/// Activation outliers of the selected site: per-channel absmax (outlier channels highlighted),
/// per-channel value ranges as bands (min/max, p01/p99, p25/p75, as in QuaRot's figures), the
/// heat map of one calibration sample's raw activations, and max |x| per projection across depth.
/// Follows the window's Selection; shows a placeholder without an analysis.
class OutliersView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view following `selection` (not owned; must outlive the view).
    explicit OutliersView(Selection* selection, QWidget* parent = nullptr);
    ~OutliersView() override;

    /// Shows a snapshot (null or without analysis: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// Supplies captured activations for the heat map (shown when site and sample match).
    void setSiteSample(std::shared_ptr<const SiteSample> sample);
    /// The charts and the heat map, for the window's export actions.
    QList<Exportable*> exportables() const override;

    /// The site shown: the selection's site, or the first site when the selection has none.
    QString currentSite() const { return m_site; }
    /// The calibration sample the heat map should show.
    int currentSample() const;
    /// True while the placeholder is shown instead of the content.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;

    /// Per-channel statistics of the current site.
    ChannelStatsModel* channelModel() const { return m_channelModel; }
    /// Max |x| per block and site kind.
    DepthModel* depthModel() const { return m_depthModel; }
    /// The heat map of the current sample.
    HeatMapWidget* heatMap() const { return m_heatMap; }
    /// Per-channel absmax chart.
    ChartPanel* absmaxPanel() const { return m_absmaxPanel; }
    /// Per-channel range bands chart.
    ChartPanel* bandPanel() const { return m_bandPanel; }
    /// Max |x| across depth chart.
    ChartPanel* depthPanel() const { return m_depthPanel; }
    /// The spin box choosing the heat map's calibration sample.
    QSpinBox* sampleSpinBox() const { return m_sampleSpin; }
    /// The salient channel picker under the charts.
    SalientPicker* salientPicker() const { return m_salient; }
    /// The tabs (Channels, Heat map, Across depth).
    QTabWidget* tabs() const { return m_tabs; }

signals:
    /// Asks for the raw activations of a site for one calibration sample (answer: setSiteSample).
    void siteSampleRequested(const QString& site, int sample);
    /// Give these input channels of a site their own format in the plan (the picker's "Set in plan").
    void salientChannelsRequested(const QString& site, const ql::ChannelOverride& channels);

private:
    void onSelectionChanged();
    void showSite(const QString& site);
    void updateHeader();
    void rebuildAbsmaxChart();
    void rebuildBandChart();
    void rebuildDepthChart();
    void updateDepthMarker();
    void updatePickedSeries();
    void updateHeatMap();
    void requestSampleIfNeeded();
    bool sampleMatches() const;
    QString absmaxCsv() const;
    QString bandCsv() const;
    QString depthCsv() const;

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    std::shared_ptr<const SiteSample> m_sample;
    QString m_site;
    QString m_lastRequestSite;
    int m_lastRequestSample = -1;

    ChannelStatsModel* m_channelModel;
    DepthModel* m_depthModel;
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QLabel* m_header;
    QSpinBox* m_sampleSpin;
    QTabWidget* m_tabs;
    ChartPanel* m_absmaxPanel;
    ChartPanel* m_bandPanel;
    ChartPanel* m_depthPanel;
    HeatMapWidget* m_heatMap;
    QTableView* m_channelTable;
    QTableView* m_depthTable;
    QLineSeries* m_depthMarker = nullptr;
    SalientPicker* m_salient = nullptr;
    QScatterSeries* m_pickedSeries = nullptr; ///< owned by the absmax chart
};

} // namespace ql
