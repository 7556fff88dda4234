#pragma once

#include "jobrunner.h"

#include "quantlens/recipe/layercompare.h"

#include <QObject>
#include <QPointer>

#include <string>
#include <vector>

namespace ql {

class PlanSession;
class PluginRegistry;

/// Methods side by side on one layer of the plan's model, as a background job: each method
/// quantizes the layer alone at the plan's format for it, with the method's default parameters,
/// and is measured on the plan's quick slice (its own evaluator, beside the live what-if).
class MethodCompare : public QObject {
    Q_OBJECT
public:
    /// A comparison whose job runs on `jobs` with the methods of `plugins` (both outlive it).
    MethodCompare(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent = nullptr);
    ~MethodCompare() override;

    /// Starts comparing `methods` on `layer` (cancelling a running comparison). Each is a plugin
    /// method id, or transforms then a method joined by '+' ("hadamard+gptq"); a transform alone
    /// ("awq") runs with the plan's method for the layer. Errors name an unknown layer, method or
    /// transform, or a missing model or quick-slice text.
    Expected<Job*> start(const PlanSession& session, const std::string& layer, const std::vector<std::string>& methods);
    /// What a comparison offers by default: every method, then every transform before the plan's
    /// method, and Hadamard rotation before GPTQ when both exist (QuaRot's pairing).
    std::vector<std::string> defaultCandidates() const;
    /// The running or last comparison's job (null before the first).
    Job* job() const { return m_job; }

signals:
    /// Every method was measured.
    void compared(const ql::LayerComparison& comparison);

private:
    JobRunner* m_jobs;
    const PluginRegistry* m_plugins;
    QPointer<Job> m_job;
};

} // namespace ql
