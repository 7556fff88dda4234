// Methods that throw, return an error, return a weight of the wrong shape or NaN values, or never
// return, and transforms that throw or break the weights: each must fail its own call (or, for the
// one that never returns, its own job) with a message naming the plugin, and nothing else.
#include "quantlensplugin.h"

#include <QFileInfo>
#include <QObject>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <thread>

namespace {

class Misbehaving final : public ql::Quantizer {
public:
    explicit Misbehaving(std::string id) : m_id(std::move(id)) {}
    std::string id() const override { return m_id; }
    std::string description() const override { return "misbehaves on purpose"; }
    std::vector<ql::ParamSpec> parameters() const override { return {}; }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec&,
                                           const ql::ParamMap&) const override
    {
        if (m_id == "throws") throw std::runtime_error("out of cheese");
        if (m_id == "fails") return ql::makeError("cannot quantize this");
        if (m_id == "hangs") {
            // Returns only once the file QL_TEST_HANG_RELEASE names exists: a test frees it before it ends.
            const char* release = std::getenv("QL_TEST_HANG_RELEASE");
            while (!release || !QFileInfo::exists(QString::fromLocal8Bit(release)))
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ql::LayerResult r;
        if (m_id == "nan_codes" || m_id == "hangs") {
            r.dequantized = *in.weight;
            if (m_id == "nan_codes") r.dequantized(0, 0) = std::numeric_limits<float>::quiet_NaN();
            return r;
        }
        r.dequantized = ql::RowMatrix::Zero(1, 1);
        return r;
    }

private:
    std::string m_id;
};

// A transform that throws, and one that leaves the weights with a wrong shape.
class MisbehavingTransform final : public ql::Transform {
public:
    explicit MisbehavingTransform(std::string id) : m_id(std::move(id)) {}
    std::string id() const override { return m_id; }
    std::string description() const override { return "misbehaves on purpose"; }
    std::vector<ql::ParamSpec> parameters() const override { return {}; }
    ql::Expected<void> apply(ql::FloatWeights& w, const ql::TransformContext&, const ql::ParamMap&) const override
    {
        if (m_id == "throwing_transform") throw std::runtime_error("rotation jammed");
        w.embedding().conservativeResize(w.embedding().rows(), 3);
        return {};
    }

private:
    std::string m_id;
};

} // namespace

class MisbehavingPlugin : public QObject, public QuantLensPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QuantLensPlugin_iid FILE "misbehaving.json")
    Q_INTERFACES(QuantLensPlugin)

public:
    std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const override
    {
        return {std::make_shared<Misbehaving>("throws"),      std::make_shared<Misbehaving>("fails"),
                std::make_shared<Misbehaving>("wrong_shape"), std::make_shared<Misbehaving>("nan_codes"),
                std::make_shared<Misbehaving>("hangs"),       std::make_shared<Misbehaving>("undeclared")};
    }
    std::vector<std::shared_ptr<ql::Transform>> transforms() const override
    {
        return {std::make_shared<MisbehavingTransform>("throwing_transform"),
                std::make_shared<MisbehavingTransform>("breaking_transform")};
    }
};

#include "misbehaving.moc"
