// The built-in GPTQ method as a plugin module; the algorithm is core's gptqQuantize.
#include "quantlensplugin.h"
#include "quantlens/methods/gptqquantizer.h"

#include <QObject>

class GptqPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "gptq.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<ql::GptqQuantizer>()};
    }
};

#include "gptqplugin.moc"
