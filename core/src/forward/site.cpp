#include "quantlens/forward/site.h"

#include <charconv>
#include <system_error>

namespace ql {

namespace {

constexpr const char* kPointNames[kBlockPointCount] = {
    "input", "attn_in", "q", "k", "v", "o_in", "attn_out", "mlp_in", "gate", "up", "down_in", "mlp_out", "output"};
constexpr LinearKind kAttnInReaders[] = {LinearKind::Q, LinearKind::K, LinearKind::V};
constexpr LinearKind kOInReaders[] = {LinearKind::O};
constexpr LinearKind kMlpInReaders[] = {LinearKind::Gate, LinearKind::Up};
constexpr LinearKind kDownInReaders[] = {LinearKind::Down};
constexpr std::string_view kPrefix = "layers.";

// Splits "layers.<i>.<rest>" with i a plain decimal (no sign or leading zeros); nullopt otherwise.
std::optional<std::pair<int, std::string_view>> splitName(std::string_view name)
{
    if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    const char* first = name.data() + kPrefix.size();
    const char* end = name.data() + name.size();
    int layer = 0;
    const bool digit = first != end && *first >= '0' && *first <= '9'; // from_chars would take a '-'
    const auto [next, ec] = std::from_chars(first, end, layer);
    if (!digit || ec != std::errc() || (*first == '0' && next - first > 1) || next == end || *next != '.')
        return std::nullopt;
    return std::pair{layer, std::string_view(next + 1, size_t(end - next - 1))};
}

} // namespace

const char* linearShortName(LinearKind k)
{
    static constexpr const char* names[kLinearCount] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"};
    return names[static_cast<int>(k)];
}

const char* pointName(BlockPoint p)
{
    return kPointNames[static_cast<int>(p)];
}

std::optional<BlockPoint> parsePoint(std::string_view name)
{
    for (int i = 0; i < kBlockPointCount; ++i)
        if (name == kPointNames[i]) return static_cast<BlockPoint>(i);
    return std::nullopt;
}

int siteIndex(BlockPoint p)
{
    for (int i = 0; i < kSiteCount; ++i)
        if (kSitePoints[i] == p) return i;
    return -1;
}

BlockPoint siteOf(LinearKind k)
{
    switch (k) {
    case LinearKind::Q:
    case LinearKind::K:
    case LinearKind::V: return BlockPoint::AttnIn;
    case LinearKind::O: return BlockPoint::OIn;
    case LinearKind::Gate:
    case LinearKind::Up: return BlockPoint::MlpIn;
    case LinearKind::Down: return BlockPoint::DownIn;
    }
    return BlockPoint::AttnIn;
}

std::span<const LinearKind> linearsReading(BlockPoint site)
{
    switch (site) {
    case BlockPoint::AttnIn: return kAttnInReaders;
    case BlockPoint::OIn: return kOInReaders;
    case BlockPoint::MlpIn: return kMlpInReaders;
    case BlockPoint::DownIn: return kDownInReaders;
    default: return {};
    }
}

std::string Site::name() const
{
    return siteName(layer, point);
}

std::string siteName(int layer, BlockPoint point)
{
    return std::string(kPrefix) + std::to_string(layer) + "." + pointName(point);
}

Expected<Site> parseSite(std::string_view name, int layers, bool anyPoint)
{
    const auto invalid = [&](const std::string& why) {
        return makeError("unknown site \"" + std::string(name) + "\" (" + why +
                         "); valid sites are layers.<i>.attn_in, layers.<i>.o_in, layers.<i>.mlp_in and "
                         "layers.<i>.down_in with 0 <= i < " +
                         std::to_string(layers) + " (the model has " + std::to_string(layers) + " layers)");
    };
    if (name.substr(0, kPrefix.size()) != kPrefix) return invalid("does not start with \"layers.\"");
    const auto split = splitName(name);
    if (!split) return invalid("no layer number after \"layers.\"");
    const auto point = parsePoint(split->second);
    if (!point || (!anyPoint && siteIndex(*point) < 0))
        return invalid("\"" + std::string(split->second) + "\" is not a site");
    if (split->first >= layers) return invalid("layer " + std::to_string(split->first) + " does not exist");
    return Site{split->first, *point};
}

std::optional<BlockPoint> pointOfName(std::string_view name)
{
    const auto split = splitName(name);
    return split ? parsePoint(split->second) : std::nullopt;
}

} // namespace ql
