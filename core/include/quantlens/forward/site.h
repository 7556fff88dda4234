#pragma once

#include "quantlens/base/expected.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ql {

/// The seven linear layers of a decoder block, in execution order.
enum class LinearKind { Q = 0, K, V, O, Gate, Up, Down };
inline constexpr int kLinearCount = 7;

/// Short name of a linear kind ("q_proj" ... "down_proj").
const char* linearShortName(LinearKind k);

/// The points of a decoder block where the forward pass publishes activations, in execution
/// order. Four of them are sites, the inputs the block's linear layers read: AttnIn (q, k, v),
/// OIn (o), MlpIn (gate, up) and DownIn (down).
enum class BlockPoint : uint8_t { Input, AttnIn, Q, K, V, OIn, AttnOut, MlpIn, Gate, Up, DownIn, MlpOut, Output };
inline constexpr int kBlockPointCount = 13;

/// The four sites in execution order.
inline constexpr BlockPoint kSitePoints[] = {BlockPoint::AttnIn, BlockPoint::OIn, BlockPoint::MlpIn,
                                             BlockPoint::DownIn};
inline constexpr int kSiteCount = 4;

/// Name of a point ("input", "attn_in", "q", ..., "output").
const char* pointName(BlockPoint p);
/// The point a name spells; nullopt for anything else.
std::optional<BlockPoint> parsePoint(std::string_view name);
/// Index of a site in kSitePoints, -1 for points that are not sites.
int siteIndex(BlockPoint p);
/// The site a linear layer reads.
BlockPoint siteOf(LinearKind k);
/// The linear layers reading a site, in execution order (empty for other points).
std::span<const LinearKind> linearsReading(BlockPoint site);

/// One point of one block, named "layers.<layer>.<point>" wherever statistics are stored.
struct Site {
    int layer = 0;
    BlockPoint point = BlockPoint::AttnIn;

    /// "layers.3.down_in".
    std::string name() const;
    bool operator==(const Site&) const = default;
};

/// "layers.<layer>.<point>".
std::string siteName(int layer, BlockPoint point);
/// Parses a site name: "layers.<i>.<site>" with i a plain decimal in [0, layers) (no sign,
/// spaces or leading zeros, so each site has one spelling) and one of the four sites, or any
/// point when anyPoint. Errors name what was given and what is valid.
Expected<Site> parseSite(std::string_view name, int layers, bool anyPoint = false);
/// The point part of a site name ("layers.3.down_in" → DownIn); nullopt when the name is not
/// of that form. Does not check the layer against a model.
std::optional<BlockPoint> pointOfName(std::string_view name);

} // namespace ql
