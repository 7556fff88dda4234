#include "salientpicker.h"

#include "quantlens/quant/formats.h"
#include "quantlens/recipe/recipe.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace ql {

SalientPicker::SalientPicker(QWidget* parent) : QWidget(parent)
{
    // The picks on one line, the controls on the next: the page must stay narrow enough for
    // the window's first layout.
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    m_label = new QLabel(this);
    m_label->setObjectName(QStringLiteral("salientLabel"));
    m_label->setWordWrap(true);
    m_label->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    outer->addWidget(m_label);
    auto* row = new QHBoxLayout;
    outer->addLayout(row);
    row->addWidget(new QLabel(tr("top"), this));
    m_percent = new QDoubleSpinBox(this);
    m_percent->setRange(0.01, 100);
    m_percent->setValue(1);
    m_percent->setSuffix(QStringLiteral(" %"));
    row->addWidget(m_percent);
    m_criterion = new QComboBox(this);
    m_criterion->addItem(tr("by absmax"));
    m_criterion->addItem(tr("by E[x²]"));
    m_criterion->addItem(tr("by E|x| (AWQ)"));
    m_criterion->setToolTip(tr("Activation absmax (kept as the recipe's selector); E[x²], the Hessian's diagonal "
                               "over the token count; or E|x|, the activation salience AWQ ranks channels by "
                               "(both an explicit channel list)"));
    row->addWidget(m_criterion);
    auto* pick = new QPushButton(tr("Pick"), this);
    row->addWidget(pick);
    auto* clearButton = new QPushButton(tr("Clear"), this);
    row->addWidget(clearButton);
    row->addWidget(new QLabel(tr("as"), this));
    m_format = new QComboBox(this);
    for (const char* f : {"int8_sym", "int8_asym", "int6_sym", "fp8_e4m3", "bf16"})
        if (findFormat(f)) m_format->addItem(QString::fromLatin1(f));
    row->addWidget(m_format);
    m_apply = new QPushButton(tr("Set in plan"), this);
    m_apply->setObjectName(QStringLiteral("salientApply"));
    m_apply->setToolTip(tr("Give the picked input channels this format in every layer that reads the site (undoable)"));
    row->addWidget(m_apply);
    row->addStretch(1);
    connect(pick, &QPushButton::clicked, this, [this]() { pickTop(m_criterion->currentIndex(), m_percent->value()); });
    connect(clearButton, &QPushButton::clicked, this, &SalientPicker::clear);
    connect(m_apply, &QPushButton::clicked, this, [this]() {
        if (m_site && !m_channels.empty()) emit applyRequested(QString::fromStdString(m_site->name), channelOverride());
    });
    updateLabel();
}

void SalientPicker::setSite(const SiteStats* site)
{
    const bool same = site && m_site && site->name == m_site->name && site->absmax.size() == m_site->absmax.size();
    m_site = site;
    if (!same) clear();
    setEnabled(site != nullptr);
}

void SalientPicker::addRange(double from, double to)
{
    if (!m_site) return;
    const int n = int(m_site->absmax.size());
    const int a = std::clamp(int(std::lround(from)), 0, n - 1), b = std::clamp(int(std::lround(to)), 0, n - 1);
    for (int c = a; c <= b; ++c) m_channels.push_back(c);
    std::sort(m_channels.begin(), m_channels.end());
    m_channels.erase(std::unique(m_channels.begin(), m_channels.end()), m_channels.end());
    m_selectorPercent = 0;
    updateLabel();
    emit picksChanged();
}

void SalientPicker::pickTop(int criterion, double percent)
{
    if (!m_site) return;
    if (criterion == 0) {
        m_channels = topChannels(m_site->absmax, percent);
        m_selectorPercent = percent;
    } else if (criterion == 1) {
        // E[x²] per channel: the Hessian's diagonal divided by the token count.
        const Eigen::VectorXf meanSquare = m_site->var + m_site->mean.cwiseProduct(m_site->mean);
        m_channels = topChannels(meanSquare, percent);
        m_selectorPercent = 0;
    } else {
        if (m_site->meanAbs.size() == 0) { // a store written before E|x| was kept
            m_label->setText(tr("This analysis has no E|x| per channel; run the analysis again"));
            return;
        }
        m_channels = topChannels(m_site->meanAbs, percent);
        m_selectorPercent = 0;
    }
    updateLabel();
    emit picksChanged();
}

void SalientPicker::clear()
{
    m_channels.clear();
    m_selectorPercent = 0;
    updateLabel();
    emit picksChanged();
}

ChannelOverride SalientPicker::channelOverride() const
{
    ChannelOverride c;
    if (m_selectorPercent > 0) {
        c.selector = "top_absmax_percent";
        c.selectorValue = m_selectorPercent;
    } else {
        c.channels = m_channels;
    }
    c.weight.format = m_format->currentText().toStdString();
    c.weight.granularity = Granularity::PerChannel;
    c.weight.groupSize = 0;
    return c;
}

void SalientPicker::updateLabel()
{
    if (m_channels.empty()) {
        m_label->setText(tr("Salient channels: Shift + click or drag on the chart, or pick the top ones"));
        m_apply->setEnabled(false);
        return;
    }
    QStringList shown;
    for (size_t i = 0; i < m_channels.size() && i < 8; ++i) shown << QString::number(m_channels[i]);
    if (m_channels.size() > 8) shown << QStringLiteral("…");
    m_label->setText(tr("<b>%1 salient channels</b>%2: %3")
                         .arg(m_channels.size())
                         .arg(m_selectorPercent > 0 ? tr(" (top %1 % by absmax)").arg(m_selectorPercent) : QString())
                         .arg(shown.join(QStringLiteral(", "))));
    m_apply->setEnabled(true);
}

} // namespace ql
