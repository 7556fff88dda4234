// AutoRound as a plugin module; the algorithm is core's (autoround.h).
#include "quantlensplugin.h"
#include "quantlens/methods/autoroundquantizer.h"

#include <QObject>

class AutoRoundPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "autoround.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<ql::AutoRoundQuantizer>()};
    }
};

#include "autoroundplugin.moc"
