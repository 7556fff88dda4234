#include "selection.h"

#include <QRegularExpression>

namespace ql {

namespace {

// Site suffix of each projection; q/k/v share one site, gate/up share one.
QString siteSuffix(const QString& proj)
{
    if (proj == "q_proj" || proj == "k_proj" || proj == "v_proj") return QStringLiteral("attn_in");
    if (proj == "o_proj") return QStringLiteral("o_in");
    if (proj == "gate_proj" || proj == "up_proj") return QStringLiteral("mlp_in");
    if (proj == "down_proj") return QStringLiteral("down_in");
    return {};
}

// First module a site feeds.
QString firstLayerOfSite(int block, const QString& suffix)
{
    const QString b = QStringLiteral("model.layers.%1.").arg(block);
    if (suffix == "attn_in") return b + "self_attn.q_proj";
    if (suffix == "o_in") return b + "self_attn.o_proj";
    if (suffix == "mlp_in") return b + "mlp.gate_proj";
    if (suffix == "down_in") return b + "mlp.down_proj";
    return {};
}

} // namespace

QString Selection::siteOfLayer(const QString& layer)
{
    const int b = blockOf(layer);
    const QString proj = layer.section('.', -1);
    const QString suffix = siteSuffix(proj);
    if (b < 0 || suffix.isEmpty()) return {};
    return QStringLiteral("layers.%1.%2").arg(b).arg(suffix);
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
