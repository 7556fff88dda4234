#include "selection.h"

#include "quantlens/model/model.h"
#include "quantlens/forward/site.h"

#include <QRegularExpression>

namespace ql {

namespace {

// The first linear layer reading a site (q_proj for attn_in), by the model's module names.
QString firstLayerOfSite(int block, const QString& point)
{
    const auto p = parsePoint(point.toStdString());
    if (block < 0 || !p || siteIndex(*p) < 0) return {};
    return QString::fromStdString(Model::linearName(block, linearsReading(*p).front()));
}

} // namespace

QString Selection::siteName(int block, const QString& point)
{
    const auto p = parsePoint(point.toStdString());
    return p ? QString::fromStdString(ql::siteName(block, *p)) : QString();
}

QString Selection::siteOfLayer(const QString& layer)
{
    const auto linear = Model::parseLinearName(layer.toStdString());
    if (!linear) return {};
    return QString::fromStdString(ql::siteName(linear->first, siteOf(linear->second)));
}

int Selection::blockOf(const QString& name)
{
    static const QRegularExpression re(QStringLiteral("(?:^|\\.)layers\\.(\\d+)(?:\\.|$)"));
    const auto m = re.match(name);
    return m.hasMatch() ? m.captured(1).toInt() : -1;
}

void Selection::selectLayer(const QString& layer)
{
    const QString site = siteOfLayer(layer);
    const int block = blockOf(layer);
    if (layer == m_layer && site == m_site && block == m_block) return;
    m_layer = layer;
    m_site = site;
    m_block = block;
    emit changed();
}

void Selection::selectSite(const QString& site)
{
    const int block = blockOf(site);
    const QString layer = firstLayerOfSite(block, site.section('.', -1));
    if (site == m_site && block == m_block) return;
    m_layer = layer;
    m_site = site;
    m_block = block;
    emit changed();
}

} // namespace ql
