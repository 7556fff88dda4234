#pragma once

#include "quantlens/quant/quantizer.h"
#include "quantlens/quant/transform.h"
#include "quantlens/recipe/reciperunner.h"

#include <QStringList>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ql {

/// A method offered by a plugin module.
struct MethodInfo {
    std::string id;
    std::string plugin;                         ///< the module's "name" metadata
    std::string file;                           ///< the module's path
    std::shared_ptr<const Quantizer> quantizer; ///< guarded: exceptions become errors naming the plugin
};

/// A transform offered by a plugin module.
struct TransformInfo {
    std::string id;
    std::string plugin;                         ///< the module's "name" metadata
    std::string file;                           ///< the module's path
    std::shared_ptr<const Transform> transform; ///< guarded: exceptions become errors naming the plugin
};

/// Finds plugin modules, checks their metadata before loading them, and offers their methods.
/// A bad module (wrong API version, missing interface, duplicate method id, load failure) is
/// recorded as a problem and skipped; the others are still available.
class PluginRegistry {
public:
    /// The plugin folders: each entry of QL_PLUGIN_PATH (':'-separated), then
    /// <folder of the executable>/../lib/quantlens/plugins (build tree and installs alike).
    static QStringList defaultDirs();
    /// Scans folders for modules (non-recursive), in order; a method id seen before is refused.
    void scan(const QStringList& dirs);
    /// Scans defaultDirs().
    void scanDefault() { scan(defaultDirs()); }
    /// The method with this id, or null.
    const Quantizer* quantizer(const std::string& id) const;
    /// Every method found, by id.
    const std::map<std::string, MethodInfo>& methods() const { return m_methods; }
    /// The transform with this id, or null.
    const Transform* transform(const std::string& id) const;
    /// Every transform found, by id (ids are unique across methods and transforms).
    const std::map<std::string, TransformInfo>& transforms() const { return m_transforms; }
    /// The plugin calls running now in this process, each naming the plugin, the method and the
    /// layer or block, with how long it has run: what a job that does not stop is stuck in.
    static std::vector<std::string> callsInProgress();
    /// One message per module that was skipped, naming the file and the reason.
    const std::vector<std::string>& problems() const { return m_problems; }

private:
    void consider(const QString& file);

    std::map<std::string, MethodInfo> m_methods;
    std::map<std::string, TransformInfo> m_transforms;
    std::vector<std::string> m_problems;
};

/// A RecipeRunner over the plugins' methods and transforms (the registry must outlive it).
RecipeRunner makeRecipeRunner(const Model& model, const PluginRegistry& plugins, int threads);

} // namespace ql
