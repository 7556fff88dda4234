#pragma once

// Internals shared by the recipe reader, writer and resolver: JSON paths, strict parsing with
// duplicate-key detection, typed readers that name the path on error, and the JSON form of
// the pieces of a spec. Private to core, so nlohmann stays out of the public headers.

#include "quantlens/base/expected.h"
#include "quantlens/quant/quantspec.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace ql::detail {

// Ordered, so overrides and params keep the order they were written in.
using Json = nlohmann::ordered_json;

/// Path of a member: parent.key, or parent["key"] when the key is not an identifier.
std::string childPath(const std::string& parent, std::string_view key);
/// Path of an array element: parent[i].
std::string itemPath(const std::string& parent, size_t i);
/// "path: message", or the message alone at the root.
Error errorAt(const std::string& path, const std::string& message);
/// A value as JSON text for an error message, shortened when long.
std::string shortDump(const Json& v);

/// Parses strict JSON, rejecting duplicate keys (which a plain parse silently collapses).
Expected<Json> parseStrictJson(std::string_view text);

/// Errors on the first key of obj not in allowed, suggesting a near spelling.
Expected<void> checkKeys(const Json& obj, const std::string& path, std::initializer_list<std::string_view> allowed);

Expected<int64_t> readInt(const Json& v, const std::string& path, int64_t lo, int64_t hi);
Expected<uint64_t> readUnsigned(const Json& v, const std::string& path);
Expected<bool> readBool(const Json& v, const std::string& path);
Expected<std::string> readString(const Json& v, const std::string& path, bool allowEmpty = true);
/// A method id: lower-case letters, digits, '_' and '-'.
Expected<std::string> readMethod(const Json& v, const std::string& path);
/// A glob (checked with checkGlob).
Expected<std::string> readGlob(const Json& v, const std::string& path);
Expected<ParamMap> readParams(const Json& v, const std::string& path);

/// The weight-format members of a rule, override or channel entry, as written.
struct WeightFields {
    std::optional<std::string> format;
    std::optional<int> bits;
    std::optional<bool> symmetric;
    std::optional<Granularity> granularity;
    std::optional<int> groupSize; ///< only with PerGroup
};
/// Reads format / bits / sym / group / granularity of obj (other keys are the caller's).
Expected<WeightFields> readWeightFields(const Json& obj, const std::string& path);
/// A complete FormatSpec from fields; a format is required; `fallback` is the granularity
/// used when none is written (PerGroup means groups of 128).
Expected<FormatSpec> toFormatSpec(const WeightFields& f, const std::string& path, Granularity fallback);
/// Writes format and group of a complete spec.
void writeFormatSpec(Json& out, const FormatSpec& spec);
/// Writes the group member for a granularity and (PerGroup) size.
Json groupJson(Granularity g, int groupSize);

/// The activation members as written.
struct ActFields {
    std::optional<int> bits;
    std::optional<bool> perToken;
    std::optional<bool> symmetric;
};
Expected<ActFields> readActivations(const Json& v, const std::string& path);
Json activationsJson(const ActQuantSpec& a);

Expected<ChannelOverride> readChannelOverride(const Json& v, const std::string& path);
Json channelOverrideJson(const ChannelOverride& c);
Json paramsJson(const ParamMap& params);

} // namespace ql::detail
