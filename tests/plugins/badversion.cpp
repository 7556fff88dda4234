// A module built for another API version: the host must refuse it without loading it, which
// the test sees because loading would run this file's static initializer.
#include "quantlensplugin.h"

#include <QObject>

#include <cstdlib>

namespace {
const int kMarkLoaded = [] { return setenv("QL_TEST_BADVERSION_LOADED", "1", 1); }();
}

class BadVersionPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "badversion.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override { return {}; }
};

#include "badversion.moc"
