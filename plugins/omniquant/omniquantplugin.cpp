// OmniQuant's learnable weight clipping as a plugin module; the algorithm is core's (omniquant.h).
#include "quantlensplugin.h"
#include "quantlens/methods/omniquantquantizer.h"

#include <QObject>

class OmniQuantPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "omniquant.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<ql::OmniQuantQuantizer>()};
    }
};

#include "omniquantplugin.moc"
