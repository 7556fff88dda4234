#include "outliersview.h"

#include "channelstatsmodel.h"
#include "chartaxes.h"
#include "chartpanel.h"
#include "depthmodel.h"
#include "heatmapwidget.h"
#include "salientpicker.h"
#include "selection.h"
#include "viewlayout.h"

#include <QAreaSeries>
#include <QChart>
#include <QChartView>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLegend>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QScatterSeries>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

QString num(double v)
{
    return std::isnan(v) ? QString() : QString::number(v, 'g', 6);
}

QTableView* makeTable(QAbstractItemModel* model, QWidget* parent)
{
    auto* proxy = new QSortFilterProxyModel(parent);
    proxy->setSourceModel(model);
    proxy->setSortRole(Qt::UserRole); // raw numbers, so 100 sorts after 20
    QTableView* table = detail::makeRowTable(proxy, parent);
    table->sortByColumn(0, Qt::AscendingOrder);
    table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    // Fit the columns to the rows on screen, not to every row: a site of a 7B model has 11008
    // channels, and numbers of one column are all about as wide.
    table->horizontalHeader()->setResizeContentsPrecision(0);
    return table;
}

// The points (c, v[c]) of a per-channel vector.
QList<QPointF> perChannel(const Eigen::VectorXf& v)
{
    QList<QPointF> pts;
    pts.reserve(v.size());
    for (Eigen::Index c = 0; c < v.size(); ++c) pts.append(QPointF(double(c), double(v[c])));
    return pts;
}

// A band between two per-channel vectors: an area series owning its two edge lines, which the
// panel fills once the series is on its axes.
QAreaSeries* band(const QString& name, const QColor& colour)
{
    auto* upper = new QLineSeries;
    auto* lower = new QLineSeries;
    auto* area = new QAreaSeries(upper, lower);
    upper->setParent(area); // QAreaSeries does not own its edges
    lower->setParent(area);
    area->setName(name);
    area->setColor(colour);
    area->setBorderColor(colour);
    area->setPen(detail::hairline(colour.darker(110), 1));
    return area;
}

} // namespace

OutliersView::OutliersView(Selection* selection, QWidget* parent)
    : AnalysisPage(parent), m_selection(selection), m_channelModel(new ChannelStatsModel(this)),
      m_depthModel(new DepthModel(this))
{
    m_placeholder = detail::makePlaceholder(this, 24);

    auto* content = new QWidget(this);
    m_header = new QLabel(content);
    m_header->setTextFormat(Qt::RichText);
    m_header->setWordWrap(true);
    m_sampleSpin = new QSpinBox(content);
    m_sampleSpin->setPrefix(tr("sample "));
    m_sampleSpin->setToolTip(tr("Calibration window shown in the heat map"));
    auto* top = new QHBoxLayout;
    top->addWidget(m_header, 1);
    top->addWidget(new QLabel(tr("Heat map:"), content));
    top->addWidget(m_sampleSpin);

    m_absmaxPanel = new ChartPanel(tr("Per-channel max |x|"), content);
    m_bandPanel = new ChartPanel(tr("Per-channel value range"), content);
    // Antialiasing the band fills costs more than all else on the page and does not show on
    // bands that change every pixel.
    m_bandPanel->chartView()->setRenderHint(QPainter::Antialiasing, false);
    m_depthPanel = new ChartPanel(tr("Max |x| per projection across depth"), content);
    m_heatMap = new HeatMapWidget(tr("|x| of one calibration sample"), content);
    m_absmaxPanel->setCsvSource([this] { return absmaxCsv(); });
    m_bandPanel->setCsvSource([this] { return bandCsv(); });
    m_depthPanel->setCsvSource([this] { return depthCsv(); });

    m_channelTable = makeTable(m_channelModel, content);
    m_depthTable = makeTable(m_depthModel, content);
    m_depthTable->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch); // five short columns

    auto* chartSplit = new QSplitter(Qt::Vertical);
    chartSplit->addWidget(m_absmaxPanel);
    chartSplit->addWidget(m_bandPanel);
    // Salient channels for the plan, picked on the absmax chart or by a criterion, under the charts.
    m_salient = new SalientPicker(content);
    auto* charts = new QWidget(content);
    auto* chartsLayout = new QVBoxLayout(charts);
    chartsLayout->setContentsMargins(0, 0, 0, 0);
    chartsLayout->addWidget(chartSplit, 1);
    chartsLayout->addWidget(m_salient);
    // The charts get three quarters.
    auto* channelsTab = detail::makeSplitter(Qt::Horizontal, charts, m_channelTable, 3, 1, {900, 300});
    auto* depthTab = detail::makeSplitter(Qt::Horizontal, m_depthPanel, m_depthTable, 3, 1, {900, 300});

    m_tabs = new QTabWidget(content);
    m_tabs->addTab(channelsTab, tr("Channels"));
    m_tabs->addTab(m_heatMap, tr("Heat map"));
    m_tabs->addTab(depthTab, tr("Across depth"));

    detail::layOutPage(content, top, m_tabs, 4);
    m_stack = detail::makePlaceholderStack(this, m_placeholder, content, 0);

    connect(m_absmaxPanel, &ChartPanel::xRangePicked, m_salient, &SalientPicker::addRange);
    connect(m_salient, &SalientPicker::picksChanged, this, &OutliersView::updatePickedSeries);
    connect(m_salient, &SalientPicker::applyRequested, this, &OutliersView::salientChannelsRequested);
    connect(m_selection, &Selection::changed, this, &OutliersView::onSelectionChanged);
    connect(m_sampleSpin, &QSpinBox::valueChanged, this, [this] {
        updateHeatMap();
        requestSampleIfNeeded();
    });
    setSnapshot(nullptr);
}

OutliersView::~OutliersView() = default;

void OutliersView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    m_lastRequestSite.clear();
    m_lastRequestSample = -1;
    if (!m_snapshot || !m_snapshot->analysis || m_snapshot->analysis->sites.empty()) {
        m_placeholder->setText(!m_snapshot ? tr("No model loaded.\nOpen a model folder to see its activation outliers.")
                               : !m_snapshot->analysis
                                   ? tr("No analysis yet.\nRun Analyze to collect activation statistics; "
                                        "the outliers of each site appear here.")
                                   : tr("This analysis has no activation-site statistics."));
        m_stack->setCurrentWidget(m_placeholder);
        m_site.clear();
        m_channelModel->setSite(nullptr, {});
        m_depthModel->setSnapshot(nullptr);
        m_absmaxPanel->clear();
        m_pickedSeries = nullptr; // the chart deleted it
        m_bandPanel->clear();
        m_depthPanel->clear();
        m_depthMarker = nullptr;
        m_heatMap->clear(tr("No activations captured."));
        return;
    }
    m_stack->setCurrentIndex(1);
    // Samples in the calibration set; the spin box cannot ask for a window that does not exist.
    int samples = m_snapshot->analysis->meta.samples;
    if (m_snapshot->seqlen > 0 && !m_snapshot->calibTokens.empty())
        samples = int(m_snapshot->calibTokens.size() / size_t(m_snapshot->seqlen));
    {
        const QSignalBlocker block(m_sampleSpin);
        m_sampleSpin->setRange(0, std::max(0, samples - 1));
    }
    m_depthModel->setSnapshot(m_snapshot);
    rebuildDepthChart();
    m_site.clear(); // force the rebuild even when the site name did not change
    onSelectionChanged();
}

void OutliersView::onSelectionChanged()
{
    if (!m_snapshot || !m_snapshot->analysis || m_snapshot->analysis->sites.empty()) return;
    QString site = m_selection->site();
    if (site.isEmpty() || !m_snapshot->site(site.toStdString()))
        site = QString::fromStdString(m_snapshot->analysis->sites.front().name);
    if (site != m_site)
        showSite(site);
    else
        updateDepthMarker();
}

void OutliersView::showSite(const QString& site)
{
    m_site = site;
    m_channelModel->setSite(m_snapshot, site);
    m_salient->setSite(m_channelModel->stats());
    updateHeader();
    rebuildAbsmaxChart();
    rebuildBandChart();
    updateDepthMarker();
    updateHeatMap();
    requestSampleIfNeeded();
}

int OutliersView::currentSample() const
{
    return m_sampleSpin->value();
}

bool OutliersView::showsPlaceholder() const
{
    return m_stack->currentWidget() == m_placeholder;
}

QString OutliersView::placeholderText() const
{
    return m_placeholder->text();
}

QList<Exportable*> OutliersView::exportables() const
{
    return {m_absmaxPanel, m_bandPanel, m_heatMap, m_depthPanel};
}

void OutliersView::updateHeader()
{
    const SiteStats* s = m_channelModel->stats();
    if (!s) {
        m_header->clear();
        return;
    }
    QStringList feeds;
    for (const LinearLayer& l : m_snapshot->layers)
        if (QString::fromStdString(l.site) == m_site) feeds << QString::fromStdString(l.name).section('.', -2);
    QString text = QStringLiteral("<b>%1</b>").arg(m_site.toHtmlEscaped());
    if (!feeds.isEmpty()) text += tr(" → %1").arg(feeds.join(QStringLiteral(", ")).toHtmlEscaped());
    text += tr(" · %1 channels · <span style='color:#c82828'>%2 outlier channels</span> (absmax > %3× median)"
               " · max |x| %4 · kurtosis %5")
                .arg(s->absmax.size())
                .arg(s->outlierChannels.size())
                .arg(s->outlierThreshold, 0, 'g', 3)
                .arg(s->absmaxSite, 0, 'g', 4)
                .arg(s->kurtosisSite, 0, 'g', 4);
    m_header->setText(text);
}

void OutliersView::rebuildAbsmaxChart()
{
    m_absmaxPanel->clear();
    m_pickedSeries = nullptr; // the chart deleted it
    m_absmaxPanel->setTitle(tr("Per-channel max |x| — %1").arg(m_site));
    const SiteStats* s = m_channelModel->stats();
    if (!s || s->absmax.size() == 0) return;
    QChart* chart = m_absmaxPanel->chart();
    auto* line = new QLineSeries;
    line->setName(tr("absmax"));
    line->setPen(detail::hairline(QColor(40, 90, 170), 1));
    auto* outliers = new QScatterSeries;
    outliers->setName(tr("outlier channels"));
    outliers->setColor(QColor(200, 40, 40));
    outliers->setBorderColor(QColor(200, 40, 40));
    outliers->setMarkerSize(7);
    QList<QPointF> outPts;
    for (int c : s->outlierChannels)
        if (c >= 0 && c < s->absmax.size()) outPts.append(QPointF(c, double(s->absmax[c])));
    outliers->replace(outPts);
    chart->addSeries(line);
    chart->addSeries(outliers);
    auto* x = detail::indexAxis(tr("input channel"), s->absmax.size());
    auto* y = new QValueAxis;
    y->setTitleText(tr("max |x|"));
    const double top = double(s->absmax.maxCoeff());
    y->setRange(0, top > 0 ? top * 1.05 : 1);
    y->applyNiceNumbers();
    y->setLabelFormat(QStringLiteral("%g"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (QAbstractSeries* series : {static_cast<QAbstractSeries*>(line), static_cast<QAbstractSeries*>(outliers)}) {
        series->attachAxis(x);
        series->attachAxis(y);
        auto* xy = static_cast<QXYSeries*>(series);
        m_absmaxPanel->attachHover(series, [this, xy](int i, const QBarSet*) {
            const int c = int(xy->at(i).x());
            return tr("channel %1\nmax |x| = %2%3")
                .arg(c)
                .arg(xy->at(i).y(), 0, 'g', 5)
                .arg(m_channelModel->isOutlier(c) ? tr("\noutlier channel") : QString());
        });
    }
    m_absmaxPanel->setPoints(line, perChannel(s->absmax));
    m_pickedSeries = new QScatterSeries;
    m_pickedSeries->setName(tr("salient (picked)"));
    m_pickedSeries->setColor(QColor(230, 150, 20));
    m_pickedSeries->setBorderColor(QColor(150, 90, 0));
    m_pickedSeries->setMarkerSize(9);
    chart->addSeries(m_pickedSeries);
    m_pickedSeries->attachAxis(x);
    m_pickedSeries->attachAxis(y);
    updatePickedSeries();
}

void OutliersView::updatePickedSeries()
{
    const SiteStats* s = m_channelModel->stats();
    if (!m_pickedSeries || !s) return;
    QList<QPointF> pts;
    for (int32_t c : m_salient->channels())
        if (c < s->absmax.size()) pts.append(QPointF(c, double(s->absmax[c])));
    m_pickedSeries->replace(pts);
}

void OutliersView::rebuildBandChart()
{
    m_bandPanel->clear();
    m_bandPanel->setTitle(tr("Per-channel value range — %1").arg(m_site));
    const SiteStats* s = m_channelModel->stats();
    if (!s) return;
    const Eigen::Index n = s->absmax.size();
    const auto has = [n](const Eigen::VectorXf& v) { return n > 0 && v.size() == n; };
    QChart* chart = m_bandPanel->chart();
    struct Band {
        QString name;
        const Eigen::VectorXf &lo, &hi;
        QColor colour;
    };
    // Widest band first, so the narrower, darker bands draw on top of it.
    const Band bands[] = {{tr("min … max"), s->min, s->max, QColor(170, 200, 235)},
                          {tr("p1 … p99"), s->p01, s->p99, QColor(90, 145, 210)},
                          {tr("p25 … p75"), s->p25, s->p75, QColor(20, 70, 140)}};
    QList<std::pair<QAreaSeries*, const Band*>> added;
    double lo = 0, hi = 0;
    for (const Band& b : bands) {
        if (!has(b.lo) || !has(b.hi)) continue;
        added.append({band(b.name, b.colour), &b});
        lo = std::min(lo, double(b.lo.minCoeff()));
        hi = std::max(hi, double(b.hi.maxCoeff()));
    }
    if (added.isEmpty()) return;
    auto* x = detail::indexAxis(tr("input channel"), n);
    auto* y = new QValueAxis;
    y->setTitleText(tr("x"));
    const double pad = (hi - lo) * 0.04 + 1e-9;
    y->setRange(lo - pad, hi + pad);
    y->applyNiceNumbers();
    y->setLabelFormat(QStringLiteral("%g"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (const auto& [area, b] : added) {
        chart->addSeries(area);
        area->attachAxis(x);
        area->attachAxis(y);
        // The panel draws each edge at pixel resolution: the upper edge keeps each pixel
        // column's highest value and the lower its lowest, so the band is the true envelope.
        m_bandPanel->setPoints(area->upperSeries(), perChannel(b->hi), Decimation::Max);
        m_bandPanel->setPoints(area->lowerSeries(), perChannel(b->lo), Decimation::Min);
        QLineSeries* upper = area->upperSeries();
        m_bandPanel->attachHover(area, [this, upper](int i, const QBarSet*) {
            const int c = qRound(upper->at(i).x());
            const auto v = [&](int col) { return num(m_channelModel->rawValue(c, col)); };
            return tr("channel %1\nmin %2 · max %3\np1 %4 · p99 %5\np25 %6 · p75 %7")
                .arg(c)
                .arg(v(ChannelStatsModel::Min), v(ChannelStatsModel::Max), v(ChannelStatsModel::P01),
                     v(ChannelStatsModel::P99), v(ChannelStatsModel::P25), v(ChannelStatsModel::P75));
        });
    }
}

void OutliersView::rebuildDepthChart()
{
    m_depthPanel->clear();
    m_depthMarker = nullptr;
    const int blocks = m_depthModel->rowCount();
    if (blocks == 0) return;
    QChart* chart = m_depthPanel->chart();
    double lo = std::numeric_limits<double>::max(), hi = 0;
    QList<QLineSeries*> lines;
    static const QColor colours[] = {QColor(40, 90, 170), QColor(230, 130, 20), QColor(40, 150, 70),
                                     QColor(200, 40, 40)};
    for (int col = DepthModel::AttnIn; col <= DepthModel::DownIn; ++col) {
        auto* line = new QLineSeries;
        line->setName(m_depthModel->headerData(col, Qt::Horizontal).toString());
        line->setPointsVisible(true);
        line->setPen(QPen(colours[col - DepthModel::AttnIn], 2));
        for (int b = 0; b < blocks; ++b) {
            const double v = m_depthModel->value(b, col);
            if (!(v > 0) || !std::isfinite(v)) continue; // a log axis cannot show 0 or a missing site
            line->append(double(b), v);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        // Clicking a point selects that block's site of this kind.
        connect(line, &QXYSeries::clicked, this, [this, col](const QPointF& p) {
            m_selection->selectSite(Selection::siteName(qRound(p.x()), DepthModel::siteKind(col)));
        });
        lines << line;
    }
    if (hi <= 0) return;
    m_depthMarker = new QLineSeries;
    m_depthMarker->setName(tr("selected block"));
    m_depthMarker->setPen(QPen(QColor(120, 120, 120), 1, Qt::DashLine));
    lines << m_depthMarker;
    auto* x = detail::blockAxis(tr("block"), 0, blocks - 1, blocks);
    auto* y = detail::decadeAxis(tr("max |x| (log)"), lo, hi);
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (QLineSeries* line : lines) {
        chart->addSeries(line);
        line->attachAxis(x);
        line->attachAxis(y);
    }
    for (QLineSeries* line : lines)
        if (line != m_depthMarker)
            m_depthPanel->attachHover(line, [line](int i, const QBarSet*) {
                return tr("block %1, %2\nmax |x| = %3")
                    .arg(int(line->at(i).x()))
                    .arg(line->name())
                    .arg(line->at(i).y(), 0, 'g', 5);
            });
}

void OutliersView::updateDepthMarker()
{
    if (!m_depthMarker) return;
    const int b = Selection::blockOf(m_site);
    const auto* y = qobject_cast<QLogValueAxis*>(m_depthPanel->chart()->axes(Qt::Vertical).value(0));
    if (b < 0 || !y) {
        m_depthMarker->clear();
        return;
    }
    m_depthMarker->replace(QList<QPointF>{QPointF(b, y->min()), QPointF(b, y->max())});
}

bool OutliersView::sampleMatches() const
{
    return m_sample && QString::fromStdString(m_sample->site) == m_site && m_sample->sample == currentSample();
}

void OutliersView::updateHeatMap()
{
    if (!sampleMatches()) {
        m_heatMap->clear(m_site.isEmpty()
                             ? tr("No site selected.")
                             : tr("Capturing the activations of %1, sample %2…").arg(m_site).arg(currentSample()));
        return;
    }
    const SiteSample& s = *m_sample;
    const int rows = int(s.values.rows()), cols = int(s.values.cols());
    std::vector<float> values(s.values.data(), s.values.data() + s.values.size());
    m_heatMap->setTitle(tr("|x| at %1, calibration sample %2").arg(m_site).arg(s.sample));
    m_heatMap->setMatrix(std::move(values), rows, cols);
    // The tooltip names the token: outliers often sit on specific tokens (BOS, delimiters).
    std::shared_ptr<const SiteSample> keep = m_sample;
    SnapshotPtr snap = m_snapshot;
    m_heatMap->setTooltipText([keep, snap](int row, int col, float value) {
        QString token = QStringLiteral("?");
        if (size_t(row) < keep->tokens.size()) {
            const int32_t id = keep->tokens[size_t(row)];
            token = QStringLiteral("\"%1\" (id %2)")
                        .arg(snap ? QString::fromStdString(snap->tokenText(id)) : QStringLiteral("#%1").arg(id))
                        .arg(id);
        }
        return tr("token %1 at position %2\nchannel %3\nx = %4")
            .arg(token)
            .arg(row)
            .arg(col)
            .arg(double(value), 0, 'g', 5);
    });
}

void OutliersView::setSiteSample(std::shared_ptr<const SiteSample> sample)
{
    m_sample = std::move(sample);
    if (m_sample && QString::fromStdString(m_sample->site) == m_site && m_sample->sample != currentSample()) {
        // A sample for this site that the user did not pick in the spin box: follow it.
        const QSignalBlocker block(m_sampleSpin);
        m_sampleSpin->setValue(m_sample->sample);
    }
    updateHeatMap();
}

void OutliersView::requestSampleIfNeeded()
{
    if (m_site.isEmpty() || sampleMatches()) return;
    if (m_site == m_lastRequestSite && currentSample() == m_lastRequestSample) return; // already asked
    m_lastRequestSite = m_site;
    m_lastRequestSample = currentSample();
    emit siteSampleRequested(m_site, currentSample());
}

QString OutliersView::absmaxCsv() const
{
    QString out = QStringLiteral("channel,absmax,outlier\n");
    for (int c = 0; c < m_channelModel->rowCount(); ++c)
        out += QStringLiteral("%1,%2,%3\n")
                   .arg(c)
                   .arg(num(m_channelModel->rawValue(c, ChannelStatsModel::Absmax)))
                   .arg(m_channelModel->isOutlier(c) ? 1 : 0);
    return out;
}

QString OutliersView::bandCsv() const
{
    QString out = QStringLiteral("channel,min,p01,p25,p75,p99,max\n");
    for (int c = 0; c < m_channelModel->rowCount(); ++c) {
        out += QString::number(c);
        for (int col : {ChannelStatsModel::Min, ChannelStatsModel::P01, ChannelStatsModel::P25, ChannelStatsModel::P75,
                        ChannelStatsModel::P99, ChannelStatsModel::Max})
            out += ',' + num(m_channelModel->rawValue(c, col));
        out += '\n';
    }
    return out;
}

QString OutliersView::depthCsv() const
{
    QString out = QStringLiteral("block,attn_in,o_in,mlp_in,down_in\n");
    for (int b = 0; b < m_depthModel->rowCount(); ++b) {
        out += QString::number(b);
        for (int col = DepthModel::AttnIn; col <= DepthModel::DownIn; ++col)
            out += ',' + num(m_depthModel->value(b, col));
        out += '\n';
    }
    return out;
}

} // namespace ql
