// GPTQ-format export: each checkpoint is read back with a safetensors parser and an unpacker
// written here from the published convention (REFERENCE.md, "GPTQ-format safetensors"; for 3 bits
// AutoGPTQ's pack in qlinear_cuda_old.py), not QuantLens's packing, and its weights compared with
// the run's; the quantization configs and `dynamic` map; transformed float weights; the refusals.
#include "fixturemodel.h"
#include "testpaths.h"

#include "quantlens/export/gptqexport.h"
#include "quantlens/forward/rotation.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensors.h"
#include "quantlens/quant/groupparams.h"
#include "quantlens/quant/quantizedmodel.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace {

// One tensor of a safetensors file as the format defines it: 8-byte little-endian header size,
// JSON header, data at offsets relative to the byte after the header.
struct RefTensor {
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

std::map<std::string, RefTensor> refRead(const std::string& path)
{
    const std::string all = qltest::readAll(path);
    std::map<std::string, RefTensor> out;
    if (all.size() < 8) return out;
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(all[size_t(i)])) << (8 * i);
    const nlohmann::json header = nlohmann::json::parse(all.substr(8, n));
    for (const auto& [name, v] : header.items()) {
        if (name == "__metadata__") continue;
        RefTensor t{v["dtype"].get<std::string>(), v["shape"].get<std::vector<int64_t>>(), {}};
        const size_t begin = 8 + n + v["data_offsets"][0].get<size_t>(),
                     end = 8 + n + v["data_offsets"][1].get<size_t>();
        t.bytes.assign(all.begin() + long(begin), all.begin() + long(end));
        out[name] = std::move(t);
    }
    return out;
}

uint32_t refWord(const RefTensor& t, int64_t i)
{
    const uint8_t* p = t.bytes.data() + 4 * i;
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// IEEE half to float, from the bit layout (1 sign, 5 exponent, 10 mantissa bits).
float refHalf(const RefTensor& t, int64_t i)
{
    const uint16_t h = uint16_t(t.bytes[size_t(2 * i)] | (t.bytes[size_t(2 * i + 1)] << 8));
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    const double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
    return float(s ? -v : v);
}

// Element j of a packed stream whose k-th int32 word is word(k). 2, 4 and 8 bits: 32/bits codes a
// word, least significant first. 3 bits, AutoGPTQ's pattern over 3 words per 32 codes: codes 0-9
// at bits 3j of word 0; code 10's low two bits at 30-31 and its high bit at bit 0 of word 1; codes
// 11-20 at 3(j-11)+1; code 21's low bit at bit 31 and its high two at bits 0-1 of word 2; codes
// 22-31 at 3(j-22)+2.
uint32_t refUnpack(const std::function<uint32_t(int64_t)>& word, int bits, int64_t j)
{
    if (bits != 3) {
        const int per = 32 / bits;
        return (word(j / per) >> (bits * (j % per))) & ((1u << bits) - 1u);
    }
    const int64_t base = (j / 32) * 3;
    const int64_t i = j % 32;
    const uint32_t w0 = word(base), w1 = word(base + 1), w2 = word(base + 2);
    if (i < 10) return (w0 >> (3 * i)) & 7u;
    if (i == 10) return ((w0 >> 30) & 3u) | ((w1 & 1u) << 2);
    if (i < 21) return (w1 >> (3 * (i - 11) + 1)) & 7u;
    if (i == 21) return ((w1 >> 31) & 1u) | ((w2 & 3u) << 1);
    return (w2 >> (3 * (i - 22) + 2)) & 7u;
}

// A module's weight W[o][i] = scales[g, o]·(q[i, o] - (qzeros[g, o] + 1)), g = g_idx[i], in float
// from the fp16 scales; bits from qweight's shape [in·bits/32, out]. Empty on a missing tensor or
// a shape or dtype off the convention.
ql::RowMatrix refDequant(const std::map<std::string, RefTensor>& file, const std::string& module,
                         int* bitsOut = nullptr)
{
    const auto qw = file.find(module + ".qweight"), qz = file.find(module + ".qzeros"),
               sc = file.find(module + ".scales"), gi = file.find(module + ".g_idx");
    if (qw == file.end() || qz == file.end() || sc == file.end() || gi == file.end()) return {};
    if (qw->second.dtype != "I32" || qz->second.dtype != "I32" || sc->second.dtype != "F16" ||
        gi->second.dtype != "I32")
        return {};
    const int64_t in = gi->second.shape.at(0), out = sc->second.shape.at(1), groups = sc->second.shape.at(0);
    const int bits = int(qw->second.shape.at(0) * 32 / in);
    if (qw->second.shape != std::vector<int64_t>{in * bits / 32, out} ||
        qz->second.shape != std::vector<int64_t>{groups, out * bits / 32})
        return {};
    if (bitsOut) *bitsOut = bits;
    ql::RowMatrix w(out, in);
    for (int64_t i = 0; i < in; ++i) {
        const int64_t g = int32_t(refWord(gi->second, i));
        for (int64_t o = 0; o < out; ++o) {
            const uint32_t q = refUnpack([&](int64_t k) { return refWord(qw->second, k * out + o); }, bits, i);
            const uint32_t z = refUnpack([&](int64_t k) { return refWord(qz->second, g * (out * bits / 32) + k); },
                                         bits, o);
            w(o, i) = refHalf(sc->second, g * out + o) * (float(q) - float(z + 1));
        }
    }
    return w;
}

// An fp16 tensor's values as floats.
std::vector<float> refHalfValues(const RefTensor& t)
{
    std::vector<float> v(t.bytes.size() / 2);
    for (size_t i = 0; i < v.size(); ++i) v[i] = refHalf(t, int64_t(i));
    return v;
}

// True when the fp16 tensor holds exactly the values rounded to fp16.
bool holdsHalfOf(const std::map<std::string, RefTensor>& file, const std::string& name, const float* v, size_t n)
{
    const auto it = file.find(name);
    if (it == file.end() || it->second.dtype != "F16" || it->second.bytes.size() != 2 * n) return false;
    const std::vector<float> got = refHalfValues(it->second);
    for (size_t i = 0; i < n; ++i)
        if (got[i] != ql::halfToFloat(ql::floatToHalf(v[i]))) return false;
    return true;
}

nlohmann::json readJson(const QString& path)
{
    return nlohmann::json::parse(qltest::readAll(path), nullptr, false);
}

// A run layer with ql::quantize's parameters, scales rounded to fp16 (what the checkpoint stores)
// and codes re-chosen under them, so the run's dequantized weight is what a loader computes
// exactly. An asymmetric zero of 0, which the v1 format cannot store, becomes 1 unless keepZero.
std::shared_ptr<const ql::LayerResult> fp16Layer(const ql::RowMatrix& w, const ql::FormatSpec& spec,
                                                 std::vector<int32_t> gidx = {}, bool keepZero = false)
{
    auto q = ql::quantize(w, spec, gidx);
    auto t = ql::QuantizedTensor::create(w.rows(), w.cols(), spec);
    if (!q || !t || !t->setGroupIndex(q->groupIndex())) return nullptr;
    const ql::WeightFormat& f = t->format();
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (int g = 0; g < t->groups(); ++g) {
            ql::GroupParams p = q->params(r, g);
            p.scale = ql::halfToFloat(ql::floatToHalf(p.scale));
            if (f.kind == ql::FormatKind::IntAsym && p.zero == 0.f && !keepZero) p.zero = 1.f;
            if (!t->setParams(r, g, p)) return nullptr;
        }
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index c = 0; c < w.cols(); ++c)
            if (!t->setCode(r, c, ql::quantizeValue(f, t->params(r, t->groupIndex()[size_t(c)]), w(r, c))))
                return nullptr;
    auto res = std::make_shared<ql::LayerResult>();
    res->dequantized = t->dequantize();
    res->tensor = std::move(*t);
    return res;
}

// Act-order groups: column j goes to group (7j mod in) / groupSize, a permutation of the plain
// assignment (7 is prime to every width here) with groupSize columns in each group.
std::vector<int32_t> actOrder(Eigen::Index cols, int groupSize)
{
    std::vector<int32_t> g(static_cast<size_t>(cols));
    for (Eigen::Index j = 0; j < cols; ++j) g[size_t(j)] = int32_t(((7 * j) % cols) / groupSize);
    return g;
}

// The names of every linear of the model.
std::vector<std::string> linearNames(const ql::Model& m)
{
    std::vector<std::string> n;
    for (const auto& l : m.linearLayers()) n.push_back(l.name);
    return n;
}

// The linears a `dynamic` key's regex (after its "+:" or "-:") matches in full.
std::vector<std::string> matched(const std::string& key, const std::vector<std::string>& names)
{
    const std::regex re(key.substr(2));
    std::vector<std::string> m;
    for (const auto& n : names)
        if (std::regex_match(n, re)) m.push_back(n);
    return m;
}

} // namespace

class TestGptqExport : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    std::string m_fixture;
    std::optional<ql::Model> m_model;

    // A run with every linear of the fixture model quantized by spec, except those a function returns nullopt
    // for (kept float) or another spec for.
    using Chooser = std::function<std::optional<ql::FormatSpec>(const ql::LinearLayer&)>;
    bool addLayers(ql::QuantizedModel& run, const ql::WeightSource& weights, const Chooser& choose,
                   bool actOrderGroups = false)
    {
        ql::BlockWeights b;
        for (const auto& l : run.model().linearLayers()) {
            const auto spec = choose(l);
            if (!spec) continue;
            if (!weights.block(l.block, b)) return false;
            const ql::RowMatrix w = b[l.kind];
            auto r = fp16Layer(w, *spec, actOrderGroups ? actOrder(w.cols(), spec->groupSize) : std::vector<int32_t>{});
            if (!r) return false;
            run.setLayer({l.name, l.block, l.kind, ql::QuantSpec{}, r});
        }
        return true;
    }

    // Checks every quantized layer of run against the file, and every float linear's weight.
    void compareLinears(const std::map<std::string, RefTensor>& file, const ql::QuantizedModel& run,
                        const ql::WeightSource& weights)
    {
        ql::BlockWeights b;
        for (const auto& l : run.model().linearLayers()) {
            QVERIFY(weights.block(l.block, b));
            if (const ql::QuantizedLayer* q = run.layer(l.name)) {
                int bits = 0;
                const ql::RowMatrix got = refDequant(file, l.name, &bits);
                QVERIFY2(got.size() > 0, l.name.c_str());
                QCOMPARE(bits, int(q->result->tensor->format().bits));
                QVERIFY2(!file.count(l.name + ".weight"), l.name.c_str());
                const ql::RowMatrix& want = q->result->dequantized;
                for (Eigen::Index o = 0; o < want.rows(); ++o)
                    for (Eigen::Index i = 0; i < want.cols(); ++i)
                        if (got(o, i) != want(o, i))
                            QFAIL(qPrintable(QStringLiteral("%1 [%2, %3]: %4 in the file, %5 in the run")
                                                 .arg(QString::fromStdString(l.name))
                                                 .arg(o)
                                                 .arg(i)
                                                 .arg(double(got(o, i)))
                                                 .arg(double(want(o, i)))));
                const RefTensor& g = file.at(l.name + ".g_idx");
                for (Eigen::Index i = 0; i < want.cols(); ++i)
                    QCOMPARE(int32_t(refWord(g, i)), q->result->tensor->groupIndex()[size_t(i)]);
            } else {
                const ql::RowMatrix w = b[l.kind];
                QVERIFY2(holdsHalfOf(file, l.name + ".weight", w.data(), size_t(w.size())), l.name.c_str());
                QVERIFY(!file.count(l.name + ".qweight"));
            }
            const Eigen::VectorXf& bias = b.bias[size_t(l.kind)];
            if (bias.size())
                QVERIFY2(holdsHalfOf(file, l.name + ".bias", bias.data(), size_t(bias.size())), l.name.c_str());
        }
    }

    QString outPath(const QString& name) const { return m_tmp.filePath(name); }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_fixture = m_tmp.filePath(QStringLiteral("fixture")).toStdString();
        qlfix::ModelSpec spec;
        spec.hidden = 64;
        spec.intermediate = 128; // every side a multiple of 32, as GPTQ packing needs
        spec.qkvBias = true;     // biases of q/k/v and o are written too
        std::string error;
        QVERIFY2(qlfix::writeModel(m_fixture, spec, &error), error.c_str());
        std::ofstream(m_fixture + "/tokenizer_config.json") << "{\"model_max_length\": 512}\n";
        auto m = ql::Model::open(m_fixture);
        QVERIFY2(m, m ? "" : m.error().message.c_str());
        m_model.emplace(std::move(*m));
    }

    void layouts_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("groupSize"); // -1: per channel
        QTest::addColumn<bool>("actOrder");
        QTest::newRow("int4_sym g32") << QStringLiteral("int4_sym") << 32 << false;
        QTest::newRow("int4_asym g32") << QStringLiteral("int4_asym") << 32 << false;
        QTest::newRow("int8_sym per-channel") << QStringLiteral("int8_sym") << -1 << false;
        QTest::newRow("int2_asym g16") << QStringLiteral("int2_asym") << 16 << false;
        QTest::newRow("int3_asym g32") << QStringLiteral("int3_asym") << 32 << false;
        QTest::newRow("int3_sym g32 act-order") << QStringLiteral("int3_sym") << 32 << true;
        QTest::newRow("int4_sym g32 act-order") << QStringLiteral("int4_sym") << 32 << true;
    }
    void layouts()
    {
        QFETCH(QString, format);
        QFETCH(int, groupSize);
        QFETCH(bool, actOrder);
        const ql::Model& model = *m_model;
        const ql::FormatSpec spec{format.toStdString(),
                                  groupSize < 0 ? ql::Granularity::PerChannel : ql::Granularity::PerGroup,
                                  groupSize < 0 ? 128 : groupSize};
        ql::QuantizedModel run(model);
        QVERIFY(addLayers(
            run, model, [&](const ql::LinearLayer&) { return spec; }, actOrder));
        const QString out = outPath(QStringLiteral("layouts-") + QString::fromLatin1(QTest::currentDataTag()));
        auto rep = ql::exportGptq(model, run, out.toStdString());
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());

        const auto file = refRead((out + QStringLiteral("/model.safetensors")).toStdString());
        compareLinears(file, run, model);
        const ql::ModelConfig& c = model.config();
        ql::BlockWeights b;
        for (int i = 0; i < c.layers; ++i) {
            QVERIFY(model.block(i, b));
            QVERIFY(holdsHalfOf(file, ql::Model::attnNormName(i), b.attnNorm.data(), size_t(b.attnNorm.size())));
            QVERIFY(holdsHalfOf(file, ql::Model::mlpNormName(i), b.mlpNorm.data(), size_t(b.mlpNorm.size())));
        }
        const ql::RowMatrix emb = *model.tensorAsFloat("model.embed_tokens.weight");
        QVERIFY(holdsHalfOf(file, "model.embed_tokens.weight", emb.data(), size_t(emb.size())));
        QVERIFY(!file.count("lm_head.weight")); // tied, as in the model

        const bool sym = format.endsWith(QStringLiteral("_sym"));
        const int bits = format.mid(3, 1).toInt();
        const nlohmann::json cfg = readJson(out + QStringLiteral("/config.json"));
        QVERIFY(cfg.is_object());
        const nlohmann::json& qc = cfg["quantization_config"];
        QCOMPARE(qc["bits"].get<int>(), bits);
        QCOMPARE(qc["group_size"].get<int>(), groupSize);
        QCOMPARE(qc["desc_act"].get<bool>(), actOrder);
        QCOMPARE(qc["sym"].get<bool>(), sym);
        QCOMPARE(qc["damp_percent"].get<double>(), 0.01);
        QCOMPARE(qc["true_sequential"].get<bool>(), true);
        QCOMPARE(qc["quant_method"].get<std::string>(), std::string("gptq"));
        QCOMPARE(qc["checkpoint_format"].get<std::string>(), std::string("gptq"));
        QVERIFY(!qc.contains("dynamic")); // one plan for every layer
        QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("float16"));
        QCOMPARE(cfg["tie_word_embeddings"].get<bool>(), true);
        QCOMPARE(cfg["hidden_size"].get<int>(), 64); // the model's own config underneath
        QVERIFY(readJson(out + QStringLiteral("/quantize_config.json")) == qc);
        QCOMPARE(qltest::readAll(out + QStringLiteral("/tokenizer_config.json")),
                 qltest::readAll(m_fixture + "/tokenizer_config.json"));

        QCOMPARE(int(rep->layers.size()), int(model.linearLayers().size()));
        for (const auto& l : rep->layers) {
            QCOMPARE(l.bits, bits);
            QCOMPARE(l.groupSize, groupSize);
            QCOMPARE(l.descAct, actOrder);
            QCOMPARE(l.sym, sym);
        }
        QVERIFY(rep->floatModules.empty());
        QCOMPARE(rep->dynamicEntries, 0);
        QVERIFY(rep->tied);
        uint64_t bytes = 0;
        for (const QFileInfo& f : QDir(out).entryInfoList(QDir::Files)) bytes += uint64_t(f.size());
        QCOMPARE(rep->bytes, bytes);
    }

    void mixedPlanGoesInTheDynamicMap()
    {
        // Default int4_sym g32; block 1's down_proj and its q/k/v at 8 bits; block 0's o_proj float.
        const ql::Model& model = *m_model;
        ql::QuantizedModel run(model);
        QVERIFY(addLayers(run, model, [](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            if (l.block == 0 && l.kind == ql::LinearKind::O) return std::nullopt;
            const bool eight = l.block == 1 && (l.kind == ql::LinearKind::Down || l.kind == ql::LinearKind::Q ||
                                                l.kind == ql::LinearKind::K || l.kind == ql::LinearKind::V);
            return ql::FormatSpec{eight ? "int8_sym" : "int4_sym", ql::Granularity::PerGroup, 32};
        }));
        const QString out = outPath(QStringLiteral("mixed"));
        auto rep = ql::exportGptq(model, run, out.toStdString());
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());
        compareLinears(refRead((out + QStringLiteral("/model.safetensors")).toStdString()), run, model);

        const nlohmann::json qc = readJson(out + QStringLiteral("/config.json"))["quantization_config"];
        QCOMPARE(qc["bits"].get<int>(), 4);
        QCOMPARE(qc["group_size"].get<int>(), 32);
        const nlohmann::json& dyn = qc["dynamic"];
        QCOMPARE(int(dyn.size()), 3);
        QCOMPARE(rep->dynamicEntries, 3);
        const std::vector<std::string> names = linearNames(model);
        const std::string p1 = "model.layers.1.", p0 = "model.layers.0.";
        int plus = 0, minus = 0;
        for (const auto& [key, value] : dyn.items()) {
            const std::vector<std::string> m = matched(key, names);
            if (key.rfind("+:", 0) == 0) {
                ++plus;
                QCOMPARE(value["bits"].get<int>(), 8);
                QCOMPARE(value["group_size"].get<int>(), 32);
                QCOMPARE(value["sym"].get<bool>(), true);
                QCOMPARE(value["desc_act"].get<bool>(), false);
                if (m.size() == 1) {
                    QCOMPARE(m.front(), p1 + "mlp.down_proj");
                } else {
                    // The fused set in one rule, which also matches vLLM's fused module name.
                    QCOMPARE(m, (std::vector<std::string>{p1 + "self_attn.q_proj", p1 + "self_attn.k_proj",
                                                          p1 + "self_attn.v_proj"}));
                    QVERIFY(std::regex_match(p1 + "self_attn.qkv_proj", std::regex(key.substr(2))));
                    QVERIFY(!std::regex_match(p0 + "self_attn.qkv_proj", std::regex(key.substr(2))));
                }
            } else {
                ++minus;
                QVERIFY2(key.rfind("-:", 0) == 0, key.c_str());
                QCOMPARE(m, std::vector<std::string>{p0 + "self_attn.o_proj"});
                QVERIFY(value.is_object() && value.empty());
            }
        }
        QCOMPARE(plus, 2);
        QCOMPARE(minus, 1);
        QVERIFY(readJson(out + QStringLiteral("/quantize_config.json")) == qc);
        QCOMPARE(rep->floatModules, std::vector<std::string>{p0 + "self_attn.o_proj"});
        QCOMPARE(rep->defaults.bits, 4);
        const std::set<std::string> eight{p1 + "self_attn.q_proj", p1 + "self_attn.k_proj", p1 + "self_attn.v_proj",
                                          p1 + "mlp.down_proj"};
        QCOMPARE(int(rep->layers.size()), int(names.size()) - 1);
        for (const auto& l : rep->layers) QCOMPARE(l.bits, eight.count(l.module) ? 8 : 4);
    }

    void fusedPartsShareSymmetryAndActOrder()
    {
        // q symmetric, k asymmetric, v act-order: the loaders get one config for the fused
        // qkv_proj, asymmetric (every zero is stored) and act-order (every g_idx is read).
        const ql::Model& model = *m_model;
        ql::QuantizedModel run(model);
        QVERIFY(addLayers(run, model, [](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            if (l.block == 0 && l.kind == ql::LinearKind::V) return std::nullopt; // added below
            return ql::FormatSpec{l.block == 0 && l.kind == ql::LinearKind::K ? "int4_asym" : "int4_sym",
                                  ql::Granularity::PerGroup, 32};
        }));
        const ql::LinearLayer& v = model.linearLayers()[2];
        QCOMPARE(v.name, std::string("model.layers.0.self_attn.v_proj"));
        const ql::RowMatrix vw = *model.tensorAsFloat(v.name + ".weight");
        auto vr = fp16Layer(vw, {"int4_sym", ql::Granularity::PerGroup, 32}, actOrder(vw.cols(), 32));
        QVERIFY(vr);
        run.setLayer({v.name, v.block, v.kind, ql::QuantSpec{}, vr});
        const QString out = outPath(QStringLiteral("fused"));
        auto rep = ql::exportGptq(model, run, out.toStdString());
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());
        compareLinears(refRead((out + QStringLiteral("/model.safetensors")).toStdString()), run, model);
        const nlohmann::json dyn = readJson(out + QStringLiteral("/config.json"))["quantization_config"]["dynamic"];
        QCOMPARE(int(dyn.size()), 1);
        const std::string key = dyn.begin().key();
        const nlohmann::json value = dyn.begin().value();
        QCOMPARE(matched(key, linearNames(model)),
                 (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                           "model.layers.0.self_attn.v_proj"}));
        QCOMPARE(value["sym"].get<bool>(), false);
        QCOMPARE(value["desc_act"].get<bool>(), true);
        QCOMPARE(value["bits"].get<int>(), 4);
        for (const auto& l : rep->layers)
            if (l.module.find("layers.0.self_attn") != std::string::npos &&
                l.module.find("o_proj") == std::string::npos)
                QVERIFY(!l.sym && l.descAct);
    }

    void transformedFloatWeightsAreWritten()
    {
        // The run's float weights after a transform: scaled norms, an untied and edited lm_head,
        // scaled linears; quantized and float layers come from them, not from the model.
        const ql::Model& model = *m_model;
        auto fw = ql::FloatWeights::load(model);
        QVERIFY(fw);
        fw->blockWeights(0).attnNorm *= 2.f;
        fw->finalNormWeight() *= 0.5f;
        fw->lmHeadWeight().row(3).array() += 1.f;
        fw->linear(0, ql::LinearKind::Q) *= 1.5f;
        fw->linear(1, ql::LinearKind::Down) *= 3.f;
        ql::QuantizedModel run(model, *fw);
        QVERIFY(addLayers(run, *fw, [](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            if (l.block == 1 && l.kind == ql::LinearKind::Down) return std::nullopt;
            return ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 32};
        }));
        const QString out = outPath(QStringLiteral("transformed"));
        auto rep = ql::exportGptq(model, run, out.toStdString());
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());
        const auto file = refRead((out + QStringLiteral("/model.safetensors")).toStdString());
        compareLinears(file, run, *fw);
        const ql::BlockWeights& b0 = fw->blockWeights(0);
        QVERIFY(holdsHalfOf(file, ql::Model::attnNormName(0), b0.attnNorm.data(), size_t(b0.attnNorm.size())));
        QVERIFY(
            holdsHalfOf(file, "model.norm.weight", fw->finalNormWeight().data(), size_t(fw->finalNormWeight().size())));
        QVERIFY(holdsHalfOf(file, "lm_head.weight", fw->lmHeadWeight().data(), size_t(fw->lmHeadWeight().size())));
        QVERIFY(!rep->tied);
        QCOMPARE(readJson(out + QStringLiteral("/config.json"))["tie_word_embeddings"].get<bool>(), false);
        const ql::RowMatrix& down = fw->linear(1, ql::LinearKind::Down);
        QVERIFY(holdsHalfOf(file, "model.layers.1.mlp.down_proj.weight", down.data(), size_t(down.size())));
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("expected"); // parts of the message, '|'-separated
        QTest::newRow("q/k/v at different bits")
            << QStringLiteral("qkv-bits") << QStringLiteral("model.layers.0.self_attn.k_proj|int8|qkv_proj");
        QTest::newRow("gate quantized, up float")
            << QStringLiteral("gateup-float") << QStringLiteral("model.layers.1.mlp.up_proj is float|gate_up_proj");
        QTest::newRow("nf4") << QStringLiteral("nf4") << QStringLiteral("model.layers.1.mlp.down_proj|nf4");
        QTest::newRow("int5") << QStringLiteral("int5") << QStringLiteral("model.layers.1.mlp.down_proj|int5_sym");
        QTest::newRow("per tensor") << QStringLiteral("per-tensor")
                                    << QStringLiteral("model.layers.1.mlp.down_proj|per-tensor");
        QTest::newRow("zero point 0") << QStringLiteral("zero0")
                                      << QStringLiteral(
                                             "model.layers.0.self_attn.o_proj|zero point 0|output 0, group 0");
        QTest::newRow("no single format")
            << QStringLiteral("pbllm") << QStringLiteral("model.layers.0.mlp.down_proj|not codes of one format");
        QTest::newRow("online rotation") << QStringLiteral("rotation") << QStringLiteral("block 1|online");
        QTest::newRow("existing folder") << QStringLiteral("exists") << QStringLiteral("exists");
    }
    void refusals()
    {
        QFETCH(QString, what);
        QFETCH(QString, expected);
        const ql::Model& model = *m_model;
        auto fw = ql::FloatWeights::load(model);
        QVERIFY(fw);
        if (what == QStringLiteral("rotation")) {
            auto rot = ql::HadamardRotation::create(128, 1);
            QVERIFY(rot);
            fw->blockWeights(1).downInputRotation = std::make_shared<const ql::HadamardRotation>(std::move(*rot));
        }
        ql::QuantizedModel run(model, *fw);
        QVERIFY(addLayers(run, *fw, [&](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            ql::FormatSpec s{"int4_sym", ql::Granularity::PerGroup, 32};
            const bool down1 = l.block == 1 && l.kind == ql::LinearKind::Down;
            if (what == QStringLiteral("qkv-bits") && l.block == 0 && l.kind == ql::LinearKind::K)
                s.format = "int8_sym";
            if (what == QStringLiteral("gateup-float") && l.block == 1 && l.kind == ql::LinearKind::Up)
                return std::nullopt;
            if (what == QStringLiteral("nf4") && down1) s.format = "nf4";
            if (what == QStringLiteral("int5") && down1) s.format = "int5_sym";
            if (what == QStringLiteral("per-tensor") && down1) s.granularity = ql::Granularity::PerTensor;
            return s;
        }));
        if (what == QStringLiteral("zero0")) { // a first group without negative weights keeps zero 0
            ql::RowMatrix w = fw->linear(0, ql::LinearKind::O);
            w.row(0).head(32) = w.row(0).head(32).cwiseAbs();
            auto r = fp16Layer(w, {"int4_asym", ql::Granularity::PerGroup, 32}, {}, true);
            QVERIFY(r && r->tensor->zeros()(0, 0) == 0.f);
            run.setLayer({"model.layers.0.self_attn.o_proj", 0, ql::LinearKind::O, ql::QuantSpec{}, r});
        }
        if (what == QStringLiteral("pbllm")) { // a result without a single-format tensor
            auto r = std::make_shared<ql::LayerResult>();
            r->dequantized = fw->linear(0, ql::LinearKind::Down);
            run.setLayer({"model.layers.0.mlp.down_proj", 0, ql::LinearKind::Down, ql::QuantSpec{}, r});
        }
        QTemporaryDir parent(outPath(QStringLiteral("refusal-XXXXXX")));
        const QString out = parent.filePath(QStringLiteral("gptq"));
        if (what == QStringLiteral("exists")) {
            QVERIFY(QDir().mkpath(out));
            std::ofstream((out + QStringLiteral("/marker")).toStdString()) << "keep";
        }
        auto rep = ql::exportGptq(model, run, out.toStdString());
        QVERIFY(!rep);
        for (const QString& part : expected.split(QLatin1Char('|')))
            QVERIFY2(rep.error().message.find(part.toStdString()) != std::string::npos, rep.error().message.c_str());
        // Nothing is left behind: no target folder (or the old one untouched), no staging folder.
        const QStringList left = QDir(parent.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
        if (what == QStringLiteral("exists")) {
            QCOMPARE(left, QStringList{QStringLiteral("gptq")});
            QCOMPARE(QDir(out).entryList(QDir::Files), QStringList{QStringLiteral("marker")});
            // With overwrite the old folder is replaced by the complete new one.
            ql::GptqExportOptions opt;
            opt.overwrite = true;
            auto again = ql::exportGptq(model, run, out.toStdString(), opt);
            QVERIFY2(again, again ? "" : again.error().message.c_str());
            QVERIFY(!QFileInfo::exists(out + QStringLiteral("/marker")));
            QVERIFY(QFileInfo::exists(out + QStringLiteral("/model.safetensors")));
        } else {
            QVERIFY2(left.isEmpty(), qPrintable(left.join(QLatin1Char(' '))));
        }
    }

    void sharedModelExports()
    {
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        if (!QFileInfo::exists(dir + QStringLiteral("/config.json")))
            QSKIP(qPrintable(QStringLiteral("shared model missing: %1 (set QL_SHARED_DIR)").arg(dir)));
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY(model);
        // Attention at int4_asym g32; the MLP (172 wide, not a multiple of 32) stays float.
        ql::QuantizedModel run(*model);
        const auto attention = [](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            if (l.kind == ql::LinearKind::Gate || l.kind == ql::LinearKind::Up || l.kind == ql::LinearKind::Down)
                return std::nullopt;
            return ql::FormatSpec{"int4_asym", ql::Granularity::PerGroup, 32};
        };
        QVERIFY(addLayers(run, *model, attention));
        const QString out = outPath(QStringLiteral("stories260k-gptq"));
        auto rep = ql::exportGptq(*model, run, out.toStdString());
        QVERIFY2(rep, rep ? "" : rep.error().message.c_str());
        compareLinears(refRead((out + QStringLiteral("/model.safetensors")).toStdString()), run, *model);
        for (const char* f :
             {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
            QCOMPARE(qltest::readAll(out + QLatin1Char('/') + QLatin1String(f)),
                     qltest::readAll(dir + QLatin1Char('/') + QLatin1String(f)));
        const nlohmann::json cfg = readJson(out + QStringLiteral("/config.json"));
        QCOMPARE(cfg["model_type"].get<std::string>(), std::string("llama"));
        const nlohmann::json& dyn = cfg["quantization_config"]["dynamic"];
        const int layers = model->config().layers;
        QCOMPARE(int(dyn.size()), 2 * layers); // per block: gate/up together, down
        const std::vector<std::string> names = linearNames(*model);
        for (const auto& [key, value] : dyn.items()) {
            QVERIFY2(key.rfind("-:", 0) == 0, key.c_str());
            const std::vector<std::string> m = matched(key, names);
            QVERIFY(m.size() == 1 || m.size() == 2);
            for (const auto& n : m) QVERIFY(n.find(".mlp.") != std::string::npos);
        }
        QCOMPARE(int(rep->floatModules.size()), 3 * layers);

        // Quantizing down_proj, whose 172 inputs no 32-input word covers, is refused.
        ql::QuantizedModel down(*model);
        QVERIFY(addLayers(down, *model, [](const ql::LinearLayer& l) -> std::optional<ql::FormatSpec> {
            if (l.kind != ql::LinearKind::Down) return std::nullopt;
            return ql::FormatSpec{"int4_sym", ql::Granularity::PerGroup, 4};
        }));
        auto refused = ql::exportGptq(*model, down, outPath(QStringLiteral("stories260k-down")).toStdString());
        QVERIFY(!refused);
        QVERIFY2(refused.error().message.find("172") != std::string::npos, refused.error().message.c_str());
        QVERIFY2(refused.error().message.find("down_proj") != std::string::npos, refused.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestGptqExport)
#include "tst_gptqexport.moc"
