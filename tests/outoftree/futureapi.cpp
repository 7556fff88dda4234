// Declares an API version this QuantLens does not have: it must be refused, never loaded.
#include <quantlensplugin.h>

#include <QObject>

class FutureApiPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "futureapi.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {}; }
};

#include "futureapi.moc"
