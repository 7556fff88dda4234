#pragma once

// The Qt interface every QuantLens plugin module implements. A module carries metadata JSON
// ({"apiVersion": N, "name": "...", "methods": ["id", ...], "kind": "quantizer" | "transform",
// "description": "..."}) that the host reads before loading it, so a module built for another
// API version is never loaded. "methods" lists the ids of its quantizers and transforms alike.

#include "quantlens/quant/blockquantizer.h"
#include "quantlens/quant/quantizer.h"
#include "quantlens/quant/transform.h"

#include <QtPlugin>

#include <memory>
#include <vector>

/// A plugin module: a factory of quantization methods and function-preserving transforms.
class QuantLensPlugin {
public:
    virtual ~QuantLensPlugin() = default;
    /// The quantizers this module provides; their ids must be among the metadata's "methods".
    virtual std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const = 0;
    /// The transforms this module provides; their ids must be among the metadata's "methods".
    virtual std::vector<std::shared_ptr<ql::Transform>> transforms() const { return {}; }
};

#define QuantLensPlugin_iid "org.quantlens.QuantLensPlugin"
Q_DECLARE_INTERFACE(QuantLensPlugin, QuantLensPlugin_iid)
