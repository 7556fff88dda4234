#include "quantlens/export/gptqexport.h"

#include "export/embeddinghead.h"
#include "export/modelfiles.h"

#include "quantlens/base/stagedfolder.h"
#include "quantlens/model/safetensorswriter.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <variant>

namespace ql {

namespace {

// How the loaders describe one quantized linear.
struct GptqxPlan {
    int bits = 0;
    int groupSize = -1; // -1: per output channel
    bool descAct = false;
    bool sym = true;

    bool operator==(const GptqxPlan&) const = default;
};

// The linears of a block as the loaders group them: vLLM loads q/k/v as one qkv_proj and
// gate/up as one gate_up_proj, so their parts share one config, and `dynamic` rules are matched
// against the fused name there (GPTQModel matches the separate names).
struct GptqxUnit {
    std::vector<LinearKind> kinds;
    const char* fused; // vLLM's module name, or null
    const char* parts; // for messages
};

const std::vector<GptqxUnit>& gptqxUnits()
{
    static const std::vector<GptqxUnit> units{
        {{LinearKind::Q, LinearKind::K, LinearKind::V}, "qkv_proj", "q/k/v"},
        {{LinearKind::O}, nullptr, "o"},
        {{LinearKind::Gate, LinearKind::Up}, "gate_up_proj", "gate/up"},
        {{LinearKind::Down}, nullptr, "down"},
    };
    return units;
}

std::string gptqxNumber(double v)
{
    std::ostringstream s;
    s << (v == 0 ? 0.0 : v); // no "-0" in messages
    return s.str();
}

std::string gptqxDescribe(const GptqxPlan& p)
{
    return "int" + std::to_string(p.bits) +
           (p.groupSize < 0 ? std::string(" per channel") : " in groups of " + std::to_string(p.groupSize));
}

// An anchored regex matching exactly the unit's modules (and vLLM's fused name for them).
std::string gptqxUnitRegex(int block, const GptqxUnit& unit)
{
    auto escape = [](const std::string& s) {
        std::string r;
        for (char ch : s) {
            if (ch == '.') r += '\\';
            r += ch;
        }
        return r;
    };
    const std::string first = Model::linearName(block, unit.kinds.front());
    const size_t dot = first.rfind('.');
    if (unit.kinds.size() == 1) return "^" + escape(first) + "$";
    std::string alternatives;
    for (LinearKind k : unit.kinds) {
        const std::string name = Model::linearName(block, k);
        alternatives += name.substr(name.rfind('.') + 1) + "|";
    }
    return "^" + escape(first.substr(0, dot + 1)) + "(" + alternatives + unit.fused + ")$";
}

// The loaders' description of t, or why they cannot run it.
Expected<GptqxPlan> gptqxPlan(const std::string& name, const QuantizedTensor& t)
{
    const WeightFormat& f = t.format();
    const bool integer = f.kind == FormatKind::IntSym || f.kind == FormatKind::IntAsym;
    if (!integer || (f.bits != 2 && f.bits != 3 && f.bits != 4 && f.bits != 8))
        return makeError(name + ": " + f.id +
                         " has no GPTQ layout; GPTQ checkpoints hold int2, int3, int4 and int8 codes (symmetric or "
                         "asymmetric)");
    const FormatSpec& s = t.spec();
    if (s.granularity == Granularity::PerTensor)
        return makeError(name + ": per-tensor parameters; GPTQ checkpoints hold a scale per group or per output "
                                "channel (group_size -1)");
    if (t.rows() % 32 != 0 || t.cols() % 32 != 0)
        return makeError(name + ": a [" + std::to_string(t.rows()) + ", " + std::to_string(t.cols()) +
                         "] weight; GPTQ packs codes in words spanning 32 inputs (qweight) and 32 outputs (qzeros), "
                         "so both sides must be multiples of 32");
    GptqxPlan p{f.bits, -1, false, f.kind == FormatKind::IntSym};
    if (s.granularity == Granularity::PerGroup) {
        if (t.cols() % s.groupSize != 0)
            return makeError(name + ": groups of " + std::to_string(s.groupSize) + " do not divide its " +
                             std::to_string(t.cols()) + " input columns; GPTQ loaders expect in / group_size groups");
        p.groupSize = s.groupSize;
        for (Eigen::Index j = 0; j < t.cols(); ++j)
            if (t.groupIndex()[size_t(j)] != j / s.groupSize) p.descAct = true;
    }
    return p;
}

// Float values as an fp16 tensor; values fp16 cannot hold are refused rather than written as inf.
Expected<TensorData> gptqxHalf(std::string name, std::vector<int64_t> shape, const float* v, size_t n)
{
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) {
        h[i] = floatToHalf(v[i]);
        if ((h[i] & 0x7c00) == 0x7c00)
            return makeError(name + ": value " + gptqxNumber(v[i]) + " at index " + std::to_string(i) +
                             " does not fit fp16 (largest 65504), the dtype GPTQ checkpoints store floats in");
    }
    return makeTensorData(std::move(name), DType::F16, std::move(shape), h.data(), n);
}

// The four tensors of a quantized linear (REFERENCE.md): qweight [in·bits/32, out], qzeros
// [groups, out·bits/32] holding zero - 1, scales [groups, out] fp16, g_idx [in].
Expected<void> gptqxQuantized(const std::string& name, const QuantizedTensor& t, std::vector<TensorData>& out)
{
    const int bits = t.format().bits, groups = t.groups();
    const Eigen::Index rows = t.rows(), cols = t.cols(), words = t.wordsPerRow();
    // Column o of qweight is one least-significant-first bit stream of the inputs' codes; a
    // QuantizedTensor row keeps exactly that stream across its columns (quantizedtensor.h), and
    // with cols % 32 == 0 it has no padding, so the packed rows transpose into place unchanged.
    // For 3 bits this is AutoGPTQ's 10 | 1 | 10 | 1 | 10 pattern (codes 10 and 21 straddle words).
    std::vector<uint32_t> qweight(size_t(words * rows));
    const std::vector<uint32_t>& codes = t.packedCodes();
    for (Eigen::Index o = 0; o < rows; ++o)
        for (Eigen::Index w = 0; w < words; ++w) qweight[size_t(w * rows + o)] = codes[size_t(o * words + w)];

    // A group no column uses (act-order can leave one) is never read; it gets a neutral code.
    std::vector<bool> used(size_t(groups), false);
    for (int32_t g : t.groupIndex()) used[size_t(g)] = true;
    const float top = float(1u << bits);
    const Eigen::Index zeroWords = rows * bits / 32;
    std::vector<uint32_t> qzeros(size_t(groups * zeroWords), 0u);
    std::vector<uint16_t> scales(size_t(groups * rows));
    for (int g = 0; g < groups; ++g)
        for (Eigen::Index o = 0; o < rows; ++o) {
            float z = used[size_t(g)] ? t.zeros()(o, g) : top / 2;
            const float s = used[size_t(g)] ? t.scales()(o, g) : 1.f;
            const std::string where = " at output " + std::to_string(o) + ", group " + std::to_string(g);
            if (z != std::floor(z))
                return makeError(name + ": zero point " + gptqxNumber(z) + where +
                                 " is not an integer; GPTQ stores integer zero codes");
            if (z < 1.f || z > top)
                return makeError(name + ": zero point " + gptqxNumber(z) + where +
                                 "; the v1 GPTQ format stores zero - 1 in " + std::to_string(bits) +
                                 " bits, so zeros must lie in [1, " + std::to_string(1u << bits) +
                                 "] (0 comes from a group without negative weights: quantize the layer symmetric "
                                 "or with larger groups)");
            // Packed along the outputs, least significant first; a 3-bit zero may straddle words.
            const uint32_t v = uint32_t(z) - 1u;
            const int64_t bit = int64_t(o) * bits;
            const size_t word = size_t(g * zeroWords + bit / 32);
            const int shift = int(bit % 32);
            qzeros[word] |= v << shift;
            if (shift + bits > 32) qzeros[word + 1] |= v >> (32 - shift);
            scales[size_t(g * rows + o)] = floatToHalf(s);
            if ((scales[size_t(g * rows + o)] & 0x7c00) == 0x7c00)
                return makeError(name + ": scale " + gptqxNumber(s) + where +
                                 " does not fit fp16 (largest 65504), the dtype of GPTQ scales");
        }
    out.push_back(makeTensorData(name + ".qweight", DType::I32, {words, rows}, qweight.data(), qweight.size()));
    out.push_back(makeTensorData(name + ".qzeros", DType::I32, {groups, zeroWords}, qzeros.data(), qzeros.size()));
    out.push_back(makeTensorData(name + ".scales", DType::F16, {groups, rows}, scales.data(), scales.size()));
    out.push_back(makeTensorData(name + ".g_idx", DType::I32, {cols}, t.groupIndex().data(), t.groupIndex().size()));
    return {};
}

// damp_percent for the config: the option, else the first GPTQ layer's "damp", else GPTQ's 0.01.
double gptqxDamp(const QuantizedModel& run, double asked)
{
    if (asked >= 0) return asked;
    for (const auto& [name, l] : run.layers()) {
        const auto it = l.spec.params.find("damp");
        if (l.spec.method == "gptq" && it != l.spec.params.end()) {
            if (const auto* d = std::get_if<double>(&it->second)) return *d;
            if (const auto* i = std::get_if<int64_t>(&it->second)) return double(*i);
        }
    }
    return 0.01;
}

// Every linear's plan (null: float) and quantized layer, checked before anything is written.
struct GptqxRunPlan {
    std::vector<std::optional<GptqxPlan>> plans; // by block · kLinearCount + kind
    std::vector<const QuantizedLayer*> layers;

    static size_t slot(int block, LinearKind k) { return size_t(block) * kLinearCount + size_t(k); }
    const std::optional<GptqxPlan>& plan(int block, LinearKind k) const { return plans[slot(block, k)]; }
};

Expected<GptqxRunPlan> gptqxPlanRun(const Model& model, const QuantizedModel& run)
{
    const int blocks = model.config().layers;
    GptqxRunPlan r{std::vector<std::optional<GptqxPlan>>(size_t(blocks) * kLinearCount),
                   std::vector<const QuantizedLayer*>(size_t(blocks) * kLinearCount, nullptr)};
    if (run.layers().empty()) return makeError("the run quantized no layer; a GPTQ checkpoint needs at least one");
    for (const auto& [name, layer] : run.layers()) {
        const auto parsed = Model::parseLinearName(name);
        if (!parsed || parsed->first >= blocks)
            return makeError(name + ": not a linear layer of " + model.dir() + "; GPTQ export writes its linears");
        if (!layer.result || !layer.result->tensor)
            return makeError(
                name +
                ": the run's result is not codes of one format (e.g. PB-LLM's binary weights "
                "with a salient part, or salient channels in another format); GPTQ checkpoints hold one integer format "
                "per layer");
        const QuantizedTensor& t = *layer.result->tensor;
        const size_t s = GptqxRunPlan::slot(parsed->first, parsed->second);
        const LinearLayer& l = model.linearLayers()[s];
        if (t.rows() != l.outFeatures || t.cols() != l.inFeatures)
            return makeError(name + ": the run's codes are [" + std::to_string(t.rows()) + ", " +
                             std::to_string(t.cols()) + "], the model's weight [" + std::to_string(l.outFeatures) +
                             ", " + std::to_string(l.inFeatures) + "]");
        auto p = gptqxPlan(name, t);
        if (!p) return p.error();
        r.plans[s] = *p;
        r.layers[s] = &layer;
    }
    // Fused parts must agree on bits and groups, and be all quantized or all float. Symmetry and
    // act-order may differ: the unit is then asymmetric (every zero is stored) and act-order (every
    // g_idx is read), which loses nothing.
    for (int i = 0; i < blocks; ++i)
        for (const GptqxUnit& u : gptqxUnits()) {
            if (u.kinds.size() < 2) continue;
            const std::string set = std::string("vLLM loads ") + u.parts + " of a block as one " + u.fused;
            const std::optional<GptqxPlan>& first = r.plan(i, u.kinds.front());
            const std::string firstName = Model::linearName(i, u.kinds.front());
            GptqxPlan joint = first.value_or(GptqxPlan{});
            for (LinearKind k : u.kinds) {
                const std::optional<GptqxPlan>& p = r.plan(i, k);
                const std::string name = Model::linearName(i, k);
                if (p.has_value() != first.has_value())
                    return makeError((p ? firstName : name) + " is float while " + (p ? name : firstName) +
                                     " is quantized; " + set + ", whose parts must all be quantized or all float");
                if (p && (p->bits != first->bits || p->groupSize != first->groupSize))
                    return makeError(name + " is " + gptqxDescribe(*p) + " but " + firstName + " is " +
                                     gptqxDescribe(*first) + "; " + set +
                                     " with one bit width and group size, so they must match");
                if (p) joint.sym = joint.sym && p->sym, joint.descAct = joint.descAct || p->descAct;
            }
            if (first)
                for (LinearKind k : u.kinds) r.plans[GptqxRunPlan::slot(i, k)] = joint;
        }
    return r;
}

// The `dynamic` map against the most common plan (the first of equals), which becomes the
// top-level config; fills the report's layers, float modules and defaults.
nlohmann::json gptqxDynamic(const GptqxRunPlan& r, int blocks, GptqExportReport& report)
{
    std::vector<std::pair<GptqxPlan, int>> counts;
    for (const auto& p : r.plans) {
        if (!p) continue;
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& e) { return e.first == *p; });
        if (it == counts.end())
            counts.emplace_back(*p, 1);
        else
            ++it->second;
    }
    GptqxPlan def = counts.front().first;
    int best = 0;
    for (const auto& [p, n] : counts)
        if (n > best) def = p, best = n;
    report.defaults = {"", def.bits, def.groupSize, def.descAct, def.sym, {}};

    nlohmann::json dynamic = nlohmann::json::object();
    for (int i = 0; i < blocks; ++i)
        for (const GptqxUnit& u : gptqxUnits()) {
            const std::optional<GptqxPlan>& p = r.plan(i, u.kinds.front());
            const std::string regex = gptqxUnitRegex(i, u);
            if (!p)
                dynamic["-:" + regex] = nlohmann::json::object();
            else if (!(*p == def))
                dynamic["+:" + regex] = {
                    {"bits", p->bits}, {"group_size", p->groupSize}, {"desc_act", p->descAct}, {"sym", p->sym}};
            for (LinearKind k : u.kinds) {
                const std::string name = Model::linearName(i, k);
                if (!p) {
                    report.floatModules.push_back(name);
                    continue;
                }
                GptqExportReport::Layer e{name, p->bits, p->groupSize, p->descAct, p->sym, {}};
                if (r.layers[GptqxRunPlan::slot(i, k)]->spec.activations.active())
                    e.note = "the run simulates activation quantization here; a GPTQ checkpoint is weight-only and "
                             "loaders keep activations in fp16";
                report.layers.push_back(std::move(e));
            }
        }
    report.dynamicEntries = int(dynamic.size());
    return dynamic;
}

// Every tensor of the checkpoint: the run's float weights (transformed ones when the recipe had
// transforms) in fp16 and the quantized linears' four tensors. Sets tied when the lm_head is
// still the embedding.
Expected<std::vector<TensorData>> gptqxTensors(const ModelConfig& c, const QuantizedModel& run, const GptqxRunPlan& r,
                                               bool& tied, Feedback* fb)
{
    std::vector<TensorData> tensors;
    auto add = [&tensors](Expected<TensorData> t) -> Expected<void> {
        if (!t) return t.error();
        tensors.push_back(std::move(*t));
        return {};
    };
    auto both = readEmbeddingAndHead(run, c);
    if (!both) return both.error();
    const RowMatrix &emb = both->embedding, &head = both->lmHead;
    QL_TRY(add(gptqxHalf("model.embed_tokens.weight", {c.vocab, c.hidden}, emb.data(), size_t(emb.size()))));
    tied = both->tied();
    if (!tied) QL_TRY(add(gptqxHalf("lm_head.weight", {head.rows(), head.cols()}, head.data(), size_t(head.size()))));
    auto norm = run.finalNorm();
    if (!norm) return norm.error();
    QL_TRY(add(gptqxHalf("model.norm.weight", {norm->size()}, norm->data(), size_t(norm->size()))));
    BlockWeights b;
    for (int i = 0; i < c.layers; ++i) {
        if (fb && fb->isCanceled()) return makeError(canceledMessage());
        QL_TRY(run.block(i, b));
        if (b.downInputRotation)
            return makeError("block " + std::to_string(i) +
                             " rotates down_proj's input online (QuaRot's online Hadamard), which GPTQ loaders cannot "
                             "run; export the run as GGUF or quantize without the online rotation");
        QL_TRY(
            add(gptqxHalf(Model::attnNormName(i), {b.attnNorm.size()}, b.attnNorm.data(), size_t(b.attnNorm.size()))));
        QL_TRY(add(gptqxHalf(Model::mlpNormName(i), {b.mlpNorm.size()}, b.mlpNorm.data(), size_t(b.mlpNorm.size()))));
        for (int k = 0; k < kLinearCount; ++k) {
            const LinearKind kind = LinearKind(k);
            const std::string name = Model::linearName(i, kind);
            if (const QuantizedLayer* q = r.layers[GptqxRunPlan::slot(i, kind)]) {
                QL_TRY(gptqxQuantized(name, *q->result->tensor, tensors));
            } else {
                const ConstRowMap w = b[kind];
                QL_TRY(add(gptqxHalf(name + ".weight", {w.rows(), w.cols()}, w.data(), size_t(w.size()))));
            }
            const Eigen::VectorXf& bias = b.bias[size_t(k)];
            if (bias.size()) QL_TRY(add(gptqxHalf(name + ".bias", {bias.size()}, bias.data(), size_t(bias.size()))));
        }
        if (fb) fb->progress(0.9 * double(i + 1) / c.layers);
    }
    return tensors;
}

} // namespace

Expected<GptqExportReport> exportGptq(const Model& model, const QuantizedModel& run, const std::string& outDir,
                                      const GptqExportOptions& opt, Feedback* fb)
{
    namespace fs = std::filesystem;
    const auto t0 = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    auto plan = gptqxPlanRun(model, run);
    if (!plan) return plan.error();
    GptqExportReport report;
    const nlohmann::json dynamic = gptqxDynamic(*plan, c.layers, report);
    if (opt.dryRun) return report;
    const GptqExportReport::Layer& def = report.defaults;
    nlohmann::json qc = {{"bits", def.bits},
                         {"group_size", def.groupSize},
                         {"desc_act", def.descAct},
                         {"sym", def.sym},
                         {"damp_percent", gptqxDamp(run, opt.dampPercent)},
                         {"true_sequential", opt.trueSequential},
                         {"lm_head", false},
                         {"quant_method", "gptq"},
                         {"checkpoint_format", "gptq"}};
    if (!dynamic.empty()) qc["dynamic"] = dynamic;
    auto read = readConfigJson(model.folder());
    if (!read) return makeError(read.message() + "; the checkpoint's config.json extends it");
    nlohmann::json cfg = std::move(*read);

    auto staged = StagedFolder::begin(outDir, opt.overwrite);
    if (!staged) return staged.error();
    const fs::path dir(staged->path());
    {
        auto tensors = gptqxTensors(c, run, *plan, report.tied, fb);
        if (!tensors) return tensors.error();
        QL_TRY(writeSafetensorsFile((dir / "model.safetensors").string(), *tensors, {{"format", "pt"}}));
    }
    cfg["quantization_config"] = qc;
    cfg["torch_dtype"] = "float16";
    cfg["tie_word_embeddings"] = report.tied;
    QL_TRY(writeTextFile(dir / "config.json", cfg.dump(2) + "\n"));
    QL_TRY(writeTextFile(dir / "quantize_config.json", qc.dump(2) + "\n"));
    QL_TRY(staged->copyModelFiles(model.folder()));
    QL_TRY(staged->commit());

    std::error_code ec;
    for (const auto& e : fs::directory_iterator(outDir, ec))
        if (e.is_regular_file(ec)) report.bytes += e.file_size(ec);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (fb) fb->progress(1.0);
    return report;
}

} // namespace ql
