#pragma once

// The Qt interface every QuantLens plugin module implements. A module carries metadata JSON
// ({"apiVersion": N, "name": "...", "methods": ["id", ...], "description": "..."}) that the
// host reads before loading it, so a module built for another API version is never loaded.

#include "quantlens/quantizer.h"

#include <QtPlugin>

#include <memory>
#include <vector>

/// A plugin module: a factory of quantization methods.
class QuantLensPlugin {
public:
    virtual ~QuantLensPlugin() = default;
    /// The quantizers this module provides; their ids must be the metadata's "methods".
    virtual std::vector<std::shared_ptr<ql::Quantizer>> quantizers() const = 0;
};

#define QuantLensPlugin_iid "org.quantlens.QuantLensPlugin"
Q_DECLARE_INTERFACE(QuantLensPlugin, QuantLensPlugin_iid)
