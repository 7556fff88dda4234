// The built-in Hadamard rotation (QuaRot) as a plugin module; the algorithm is core's hadamardRotate.
#include "quantlensplugin.h"
#include "quantlens/methods/quarot.h"

#include <QObject>

class HadamardPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "hadamard.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {}; }
    std::vector<std::shared_ptr<ql::Transform>> transforms() const override
    {
        return {std::make_shared<ql::HadamardRotationTransform>()};
    }
};

#include "hadamardplugin.moc"
