// The built-in SmoothQuant transform as a plugin module; the algorithm is core's smoothQuant.
#include "quantlensplugin.h"
#include "quantlens/methods/smoothquant.h"

#include <QObject>

class SmoothQuantPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "smoothquant.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {}; }
    std::vector<std::shared_ptr<ql::Transform>> transforms() const override
    {
        return {std::make_shared<ql::SmoothQuantTransform>()};
    }
};

#include "smoothquantplugin.moc"
