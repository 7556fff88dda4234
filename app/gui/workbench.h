#pragma once

#include "jobrunner.h"
#include "planexport.h"
#include "methodcompare.h"
#include "paretosweep.h"
#include "plansession.h"
#include "pluginregistry.h"
#include "project.h"
#include "selection.h"
#include "snapshot.h"

#include "quantlens/text/calibration.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <QObject>

#include <memory>

namespace ql {

/// The open project and everything loaded for it (model, tokenizer, calibration windows,
/// analysis), and the jobs that produce them. Not a widget: MainWindow wires it to the views,
/// tests drive it directly. Every slow step is a Job; its result replaces the snapshot
/// atomically on the UI thread, so a failed or canceled job leaves the project as it was.
class Workbench : public QObject {
    Q_OBJECT
public:
    explicit Workbench(QObject* parent = nullptr);

    /// The project (paths and calibration settings).
    const Project& project() const { return m_project; }
    /// What the views show now (never null).
    SnapshotPtr snapshot() const { return m_snapshot; }
    /// The window's one selection.
    Selection* selection() { return &m_selection; }
    /// The jobs of this session.
    JobRunner* jobs() { return &m_jobs; }
    /// The quantization plan of the open model.
    PlanSession* plan() { return &m_plan; }
    /// The size-quality sweep of the plan's model.
    ParetoSweep* pareto() { return &m_pareto; }
    /// Methods side by side on one layer of the plan's model.
    MethodCompare* compare() { return &m_compare; }
    /// The methods and transforms the plugins offer.
    const PluginRegistry& plugins() const { return m_plugins; }
    /// True once a model is open.
    bool hasModel() const { return m_model != nullptr; }

    /// Opens a model folder as a new, unsaved project (a job); an existing store is not touched.
    Job* openModel(const QString& dir);
    /// Opens a project file: its model, calibration and, when it matches them, its analysis store.
    Job* openProject(const QString& path);
    /// Saves the project (to `path`, or to its own path when empty).
    Expected<void> saveProject(const QString& path = {});
    /// Sets the calibration text and windows (used by the next analysis).
    void setCalibration(const QString& file, const CalibrationSpec& spec);
    /// Sets the products of the plan's quick measure: "auto", "fp32" or "bf16" (Project::quickCompute).
    void setQuickCompute(const QString& compute);
    /// Sets the sensitivity mode of the next analysis: none, proxy, fisher or full.
    void setSensitivity(const QString& mode, int klSamples = 4);
    /// Sets what the next analysis measures each layer with: methods (rtn, gptq), widths and
    /// groups (0: per row), every combination; none may be empty.
    void setSensitivityOptions(const std::vector<std::string>& methods, const std::vector<int>& bits,
                               const std::vector<int>& groups);
    /// Runs the analysis of the project's model on its calibration windows and writes the store.
    Job* runAnalysis();
    /// Exports (or previews) the plan's current run as the request says; done gets the outcome.
    Job* exportPlan(const ExportRequest& request, std::function<void(ExportOutcome&)> done);
    /// Captures one site's activations for one calibration window (the heat map's data).
    Job* requestSiteSample(const QString& site, int sample);

signals:
    /// A new snapshot (model opened, analysis loaded or computed).
    void snapshotChanged(ql::SnapshotPtr snapshot);
    /// The project's paths or settings changed.
    void projectChanged();
    /// A site sample is ready.
    void siteSampleReady(std::shared_ptr<const ql::SiteSample> sample);
    /// Something failed; the message names the file or input at fault.
    void failed(const QString& title, const QString& message);

private:
    struct Loaded; // what a load job produces
    void adopt(Loaded& loaded);
    void publish(std::shared_ptr<const AnalysisResult> analysis);
    Job* watch(Job* job, const QString& what);
    Job* openProjectData(const Project& project, const QString& name);

    Project m_project;
    PluginRegistry m_plugins; // before the jobs: a running job may use a plugin's method
    JobRunner m_jobs;
    PlanSession m_plan{&m_jobs, &m_plugins}; // after the jobs: its jobs end before they do
    ParetoSweep m_pareto{&m_jobs, &m_plugins};
    MethodCompare m_compare{&m_jobs, &m_plugins};
    Selection m_selection;
    std::shared_ptr<const Model> m_model;
    std::shared_ptr<Tokenizer> m_tokenizer;
    std::shared_ptr<const CalibrationSet> m_calib;
    std::string m_modelSha;
    std::vector<std::string> m_pieces;
    SnapshotPtr m_snapshot;
};

} // namespace ql
