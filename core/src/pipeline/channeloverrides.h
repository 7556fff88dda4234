#pragma once

// Salient input channels in their own format: the recipe's `channels` overrides applied to a
// layer the method has quantized.

#include "quantlens/quant/quantizer.h"

namespace ql::detail {

/// True when a spec picks channels by a selector, which needs the site's statistics.
bool needsSiteStatistics(const QuantSpec& spec);

/// Replaces the columns each override of spec.channels selects (explicit lists, or selectors
/// on in.site) by the float weight's columns rounded to nearest in the override's format, one
/// scale per output row unless the override says otherwise; a channel belongs to the first
/// override that lists it. The result then holds several formats, so its single-format tensor is
/// dropped (exports that need one fall back per tensor), and its bits and errors are recounted.
Expected<void> applyChannelOverrides(const LayerInput& in, const QuantSpec& spec, LayerResult& result);

} // namespace ql::detail
