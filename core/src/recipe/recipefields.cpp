#include "recipe/recipefields.h"

#include "quantlens/quant/formats.h"
#include "quantlens/base/glob.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

namespace ql::detail {

namespace {

bool isIdentifier(std::string_view s)
{
    if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Levenshtein distance, for "did you mean" on misspelt keys.
size_t editDistance(std::string_view a, std::string_view b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// Walks the document once before the real parse: nlohmann keeps one of two equal keys without
// a word, and in a recipe a repeated key is almost always an edit gone wrong.
class DuplicateKeyCheck final : public nlohmann::json_sax<Json> {
public:
    std::string error;

    bool null() override { return element(); }
    bool boolean(bool) override { return element(); }
    bool number_integer(number_integer_t) override { return element(); }
    bool number_unsigned(number_unsigned_t) override { return element(); }
    bool number_float(number_float_t, const string_t&) override { return element(); }
    bool string(string_t&) override { return element(); }
    bool binary(binary_t&) override { return element(); }
    bool start_object(std::size_t) override
    {
        element();
        m_stack.push_back({});
        return true;
    }
    bool key(string_t& k) override
    {
        Frame& top = m_stack.back();
        if (!top.keys.insert(k).second) {
            std::string path;
            for (size_t i = 0; i + 1 < m_stack.size(); ++i) path = selector(path, m_stack[i]);
            error = errorAt(childPath(path, k), "duplicate key").message;
            return false;
        }
        top.key = k;
        return true;
    }
    bool end_object() override { return pop(); }
    bool start_array(std::size_t) override
    {
        element();
        m_stack.push_back({});
        m_stack.back().array = true;
        return true;
    }
    bool end_array() override { return pop(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override
    {
        // Drop nlohmann's "[json.exception.parse_error.101] " prefix; the rest names line and column.
        std::string what = e.what();
        const size_t cut = what.find("] ");
        error = "invalid JSON: " + (cut == std::string::npos ? what : what.substr(cut + 2));
        return false;
    }

private:
    struct Frame {
        bool array = false;
        size_t count = 0;
        std::string key;
        std::set<std::string> keys;
    };
    bool element()
    {
        if (!m_stack.empty() && m_stack.back().array) ++m_stack.back().count;
        return true;
    }
    bool pop()
    {
        m_stack.pop_back();
        return true;
    }
    static std::string selector(const std::string& path, const Frame& f)
    {
        return f.array ? itemPath(path, f.count - 1) : childPath(path, f.key);
    }
    std::vector<Frame> m_stack;
};

} // namespace

std::string childPath(const std::string& parent, std::string_view key)
{
    if (isIdentifier(key)) return parent.empty() ? std::string(key) : parent + "." + std::string(key);
    return parent + "[" + Json(std::string(key)).dump() + "]";
}

std::string itemPath(const std::string& parent, size_t i)
{
    return parent + "[" + std::to_string(i) + "]";
}

Error errorAt(const std::string& path, const std::string& message)
{
    return makeError(path.empty() ? message : path + ": " + message);
}

std::string shortDump(const Json& v)
{
    std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

Expected<Json> parseStrictJson(std::string_view text)
{
    DuplicateKeyCheck check;
    if (!Json::sax_parse(text.begin(), text.end(), &check) || !check.error.empty())
        return makeError(check.error.empty() ? "invalid JSON" : check.error);
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return makeError("invalid JSON");
    return j;
}

Expected<void> checkKeys(const Json& obj, const std::string& path, std::initializer_list<std::string_view> allowed)
{
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const std::string& k = it.key();
        if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
        std::string list, near;
        size_t best = 3; // suggest only spellings within two edits
        for (std::string_view a : allowed) {
            list += (list.empty() ? "" : ", ") + std::string(a);
            const size_t d = editDistance(k, a);
            if (d < best) best = d, near = a;
        }
        return errorAt(childPath(path, k), "unknown key" +
                                               (near.empty() ? std::string() : " (did you mean \"" + near + "\"?)") +
                                               "; expected one of: " + list);
    }
    return {};
}

Expected<int64_t> readInt(const Json& v, const std::string& path, int64_t lo, int64_t hi)
{
    // An upper bound of int32 or more is a representation limit, not a rule worth stating.
    const std::string range = hi >= std::numeric_limits<int32_t>::max()
                                  ? " >= " + std::to_string(lo)
                                  : " in " + std::to_string(lo) + ".." + std::to_string(hi);
    const auto fail = [&] { return errorAt(path, "expected an integer" + range + ", got " + shortDump(v)); };
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > uint64_t(hi) || int64_t(u) < lo) return fail();
        return int64_t(u);
    }
    if (!v.is_number_integer()) return fail();
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) return fail();
    return i;
}

Expected<uint64_t> readUnsigned(const Json& v, const std::string& path)
{
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
    return errorAt(path, "expected an integer >= 0, got " + shortDump(v));
}

Expected<bool> readBool(const Json& v, const std::string& path)
{
    if (!v.is_boolean()) return errorAt(path, "expected true or false, got " + shortDump(v));
    return v.get<bool>();
}

Expected<std::string> readString(const Json& v, const std::string& path, bool allowEmpty)
{
    if (!v.is_string()) return errorAt(path, "expected a string, got " + shortDump(v));
    std::string s = v.get<std::string>();
    if (!allowEmpty && s.empty()) return errorAt(path, "expected a non-empty string");
    return s;
}

Expected<std::string> readMethod(const Json& v, const std::string& path)
{
    auto s = readString(v, path, false);
    if (!s) return s.error();
    const bool ok = std::all_of(s->begin(), s->end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    if (!ok) return errorAt(path, "expected a method id (lower-case letters, digits, '_', '-'), got " + shortDump(v));
    return s;
}

Expected<std::string> readGlob(const Json& v, const std::string& path)
{
    auto s = readString(v, path, false);
    if (!s) return s.error();
    if (auto ok = checkGlob(*s); !ok) return errorAt(path, ok.message());
    return s;
}

Expected<ParamMap> readParams(const Json& v, const std::string& path)
{
    if (!v.is_object()) return errorAt(path, "expected an object of parameter values, got " + shortDump(v));
    ParamMap params;
    for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string p = childPath(path, it.key());
        const Json& x = it.value();
        if (it.key().empty()) return errorAt(p, "empty parameter name");
        if (x.is_boolean())
            params[it.key()] = x.get<bool>();
        else if (x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
            return errorAt(p, "integer out of range, got " + shortDump(x));
        else if (x.is_number_integer())
            params[it.key()] = x.get<int64_t>();
        else if (x.is_number_float() && std::isfinite(x.get<double>()))
            params[it.key()] = x.get<double>();
        else if (x.is_string())
            params[it.key()] = x.get<std::string>();
        else
            return errorAt(p, "expected a flag, number or string, got " + shortDump(x));
    }
    return params;
}

Json paramsJson(const ParamMap& params)
{
    Json j = Json::object();
    for (const auto& entry : params) std::visit([&](const auto& x) { j[entry.first] = x; }, entry.second);
    return j;
}

Expected<WeightFields> readWeightFields(const Json& obj, const std::string& path)
{
    WeightFields f;
    if (obj.contains("format")) {
        const std::string p = childPath(path, "format");
        auto s = readString(obj["format"], p);
        if (!s) return s.error();
        if (auto found = findFormat(*s); !found) return errorAt(p, found.message());
        f.format = *s;
    }
    if (obj.contains("bits")) {
        auto b = readInt(obj["bits"], childPath(path, "bits"), 2, 8);
        if (!b) return b.error();
        f.bits = int(*b);
    }
    if (obj.contains("sym")) {
        auto s = readBool(obj["sym"], childPath(path, "sym"));
        if (!s) return s.error();
        f.symmetric = *s;
    }
    if (f.format && (f.bits || f.symmetric))
        return errorAt(childPath(path, f.bits ? "bits" : "sym"),
                       "give either \"format\" or \"bits\"/\"sym\", not both");
    if (obj.contains("group")) {
        const std::string p = childPath(path, "group");
        const Json& g = obj["group"];
        if (g.is_string() && g.get<std::string>() == "per_channel")
            f.granularity = Granularity::PerChannel;
        else if (g.is_string() && g.get<std::string>() == "per_tensor")
            f.granularity = Granularity::PerTensor;
        else if (g.is_number_integer() && (g == 0 || g == -1)) // GPTQ's group_size -1: per channel
            f.granularity = Granularity::PerChannel;
        else {
            auto n = readInt(g, p, 1, std::numeric_limits<int32_t>::max());
            if (!n)
                return errorAt(p, "expected a group size (a positive integer), 0 or -1 for per channel, "
                                  "\"per_channel\" or \"per_tensor\", got " +
                                      shortDump(g));
            f.granularity = Granularity::PerGroup;
            f.groupSize = int(*n);
        }
    }
    if (obj.contains("granularity")) {
        const std::string p = childPath(path, "granularity");
        const Json& g = obj["granularity"];
        const std::string s = g.is_string() ? g.get<std::string>() : std::string();
        const std::optional<Granularity> named = granularityFromName(s);
        if (!named) return errorAt(p, "expected \"per_group\", \"per_channel\" or \"per_tensor\", got " + shortDump(g));
        const Granularity gran = *named;
        if (f.granularity && *f.granularity != gran)
            return errorAt(p, std::string("\"") + s + "\" contradicts \"group\": " + shortDump(obj["group"]));
        f.granularity = gran;
    }
    return f;
}

Expected<FormatSpec> toFormatSpec(const WeightFields& f, const std::string& path, Granularity fallback)
{
    FormatSpec spec;
    if (f.format) {
        spec.format = *f.format;
    } else if (f.bits) {
        auto id = intFormatId(*f.bits, f.symmetric.value_or(false));
        if (!id) return errorAt(childPath(path, "bits"), id.message());
        spec.format = *id;
    } else if (f.symmetric) {
        return errorAt(childPath(path, "sym"), "\"sym\" needs \"bits\" (or give a \"format\")");
    } else {
        return errorAt(path, "no weight format; give \"format\" (a format id) or \"bits\" (an integer format)");
    }
    spec.granularity = f.granularity.value_or(fallback);
    // Only per-group specs carry a size; 0 elsewhere keeps equal plans equal.
    spec.groupSize = spec.granularity == Granularity::PerGroup ? f.groupSize.value_or(128) : 0;
    return spec;
}

Json groupJson(Granularity g, int groupSize)
{
    if (g == Granularity::PerGroup) return groupSize;
    return granularityName(g);
}

void writeFormatSpec(Json& out, const FormatSpec& spec)
{
    out["format"] = spec.format;
    out["group"] = groupJson(spec.granularity, spec.groupSize);
}

Expected<ActFields> readActivations(const Json& v, const std::string& path)
{
    if (!v.is_object()) return errorAt(path, "expected an object, got " + shortDump(v));
    QL_TRY(checkKeys(v, path, {"bits", "granularity", "sym"}));
    ActFields a;
    if (v.contains("bits")) {
        const std::string p = childPath(path, "bits");
        auto b = readInt(v["bits"], p, 0, 16);
        if (!b || *b == 1)
            return errorAt(p, "expected 0 (no activation quantization) or an integer in 2..16, got " +
                                  shortDump(v["bits"]));
        a.bits = int(*b);
    }
    if (v.contains("granularity")) {
        const std::string p = childPath(path, "granularity");
        const Json& g = v["granularity"];
        if (g == "per_token")
            a.perToken = true;
        else if (g == "per_tensor")
            a.perToken = false;
        else
            return errorAt(p, "expected \"per_token\" or \"per_tensor\", got " + shortDump(g));
    }
    if (v.contains("sym")) {
        auto s = readBool(v["sym"], childPath(path, "sym"));
        if (!s) return s.error();
        a.symmetric = *s;
    }
    return a;
}

Json activationsJson(const ActQuantSpec& a)
{
    Json j = Json::object();
    j["bits"] = a.bits;
    j["granularity"] = a.perToken ? "per_token" : "per_tensor";
    j["sym"] = a.symmetric;
    return j;
}

Expected<ChannelOverride> readChannelOverride(const Json& v, const std::string& path)
{
    if (!v.is_object()) return errorAt(path, "expected an object, got " + shortDump(v));
    QL_TRY(checkKeys(v, path, {"channels", "select", "value", "format", "bits", "sym", "group", "granularity"}));
    ChannelOverride c;
    const bool list = v.contains("channels"), select = v.contains("select");
    if (list == select)
        return errorAt(path, "give either \"channels\" (a list of input channels) or \"select\" (a selector)");
    if (list) {
        const std::string p = childPath(path, "channels");
        const Json& a = v["channels"];
        if (!a.is_array() || a.empty())
            return errorAt(p, "expected a non-empty array of input channel indices, got " + shortDump(a));
        std::set<int32_t> seen;
        for (size_t i = 0; i < a.size(); ++i) {
            auto ch = readInt(a[i], itemPath(p, i), 0, std::numeric_limits<int32_t>::max());
            if (!ch) return ch.error();
            if (!seen.insert(int32_t(*ch)).second)
                return errorAt(itemPath(p, i), "channel " + std::to_string(*ch) + " listed twice");
            c.channels.push_back(int32_t(*ch));
        }
        if (v.contains("value"))
            return errorAt(childPath(path, "value"), "\"value\" goes with \"select\", not with a channel list");
    } else {
        const std::string p = childPath(path, "select");
        if (v["select"] != "top_absmax_percent")
            return errorAt(p, "unknown selector " + shortDump(v["select"]) + "; expected one of: top_absmax_percent");
        c.selector = "top_absmax_percent";
        const std::string pv = childPath(path, "value");
        if (!v.contains("value")) return errorAt(pv, "missing; the selector needs a percentage in (0, 100]");
        const Json& x = v["value"];
        if (!x.is_number() || !(x.get<double>() > 0 && x.get<double>() <= 100))
            return errorAt(pv, "expected a percentage in (0, 100], got " + shortDump(x));
        c.selectorValue = x.get<double>();
    }
    auto fields = readWeightFields(v, path);
    if (!fields) return fields.error();
    // Salient columns are few, so one scale per output row over them is the natural default.
    auto spec = toFormatSpec(*fields, path, Granularity::PerChannel);
    if (!spec) return spec.error();
    c.weight = *spec;
    return c;
}

Json channelOverrideJson(const ChannelOverride& c)
{
    Json j = Json::object();
    if (c.selector.empty()) {
        j["channels"] = c.channels;
    } else {
        j["select"] = c.selector;
        j["value"] = c.selectorValue;
    }
    writeFormatSpec(j, c.weight);
    return j;
}

} // namespace ql::detail
