#pragma once

#include "jobrunner.h"
#include "paretoview.h"

#include "quantlens/analysis/analysis.h"

#include <QObject>
#include <QPointer>

#include <memory>
#include <string>
#include <vector>

namespace ql {

class PlanSession;
class PluginRegistry;

/// A sweep over the size-quality plane for the plan's model: the uniform plan of every option
/// the analysis measured, then each allocator's plan at each budget, quantized and measured on
/// the plan's quick slice in one background job that reports each point as soon as it is
/// measured. Its own runner and evaluator, so the live what-if goes on beside it.
class ParetoSweep : public QObject {
    Q_OBJECT
public:
    /// A sweep whose job runs on `jobs` with the methods of `plugins` (both outlive it).
    ParetoSweep(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent = nullptr);
    ~ParetoSweep() override;

    /// Starts a sweep of `session`'s model (cancelling a running one) over `budgets` in bits per
    /// weight and `allocators` (allocate's names). Errors when no model is open, the analysis
    /// has no sensitivity, or a name is unknown.
    Expected<Job*> start(const PlanSession& session, std::shared_ptr<const AnalysisResult> analysis,
                         const std::vector<double>& budgets, const std::vector<std::string>& allocators);
    /// The running or last sweep's job (null before the first).
    Job* job() const { return m_job; }

signals:
    /// A new sweep began: earlier points are void.
    void started();
    /// One plan was measured.
    void pointMeasured(const ql::ParetoPoint& point);

private:
    JobRunner* m_jobs;
    const PluginRegistry* m_plugins;
    QPointer<Job> m_job;
};

} // namespace ql
