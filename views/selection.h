#pragma once

#include <QObject>
#include <QString>

namespace ql {

/// The window's one selection: a linear layer (HF module name), the site feeding it and its
/// block. Every view follows it; the model explorer and the tables set it.
class Selection : public QObject {
    Q_OBJECT
public:
    using QObject::QObject;

    /// Selected module, e.g. "model.layers.3.mlp.down_proj" (empty: none).
    QString layer() const { return m_layer; }
    /// Site of the selection, e.g. "layers.3.down_in" (empty: none).
    QString site() const { return m_site; }
    /// Block of the selection (-1: none).
    int block() const { return m_block; }

    /// The analysis's name of a block's point ("layers.3.down_in" for 3, "down_in").

    static QString siteName(int block, const QString& point);

    /// The site feeding a module name ("model.layers.3.mlp.down_proj" → "layers.3.down_in").
    static QString siteOfLayer(const QString& layer);
    /// The block number in a module or site name, -1 when there is none.
    static int blockOf(const QString& name);

public slots:
    /// Selects a linear layer, and with it its site and block.
    void selectLayer(const QString& layer);
    /// Selects a site and its block; the layer becomes the first one the site feeds.
    void selectSite(const QString& site);

signals:
    /// Emitted once per change of the selection.
    void changed();

private:
    QString m_layer, m_site;
    int m_block = -1;
};

} // namespace ql
