// The built-in AWQ transform as a plugin module; the algorithm is core's applyAwq.
#include "quantlensplugin.h"
#include "quantlens/methods/awq.h"

#include <QObject>

class AwqPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "awq.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {}; }
    std::vector<std::shared_ptr<ql::Transform>> transforms() const override
    {
        return {std::make_shared<ql::AwqTransform>()};
    }
};

#include "awqplugin.moc"
