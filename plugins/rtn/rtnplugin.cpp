// The built-in RTN method as a plugin module.
#include "quantlensplugin.h"
#include "quantlens/methods/rtnquantizer.h"

#include <QObject>

class RtnPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "rtn.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<ql::RtnQuantizer>()};
    }
};

#include "rtnplugin.moc"
