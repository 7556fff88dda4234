// The built-in PB-LLM method as a plugin module; the algorithm is core's pbllmQuantize.
#include "quantlensplugin.h"
#include "quantlens/methods/pbllmquantizer.h"

#include <QObject>

class PbllmPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "pbllm.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<ql::PbllmQuantizer>()};
    }
};

#include "pbllmplugin.moc"
