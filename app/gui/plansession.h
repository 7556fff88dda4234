#pragma once

#include "jobrunner.h"
#include "plansnapshot.h"
#include "project.h"

#include "quantlens/alloc/measuredoptions.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/recipe/reciperunner.h"
#include "quantlens/store/rundiff.h"
#include "quantlens/text/tokenizer.h"

#include <QObject>
#include <QUndoStack>

#include <memory>
#include <optional>

namespace ql {

class PluginRegistry;
struct WhatIfState;

/// The quantization plan of the open model: its recipe, every edit as an undoable command, and
/// the live what-if. Each change re-runs, in the background, only what it affects: the runner
/// re-quantizes the layers whose spec changed (the layer columns update when that is done), then
/// the quick evaluator measures KL, top-1 and perplexity from the first changed block on. A
/// newer change cancels a stale run. Not a widget: the window wires it to the PlanEditor.
class PlanSession : public QObject {
    Q_OBJECT
public:
    /// A session whose jobs run on `jobs` and whose methods come from `plugins` (both outlive it).
    PlanSession(JobRunner* jobs, const PluginRegistry* plugins, QObject* parent = nullptr);
    ~PlanSession() override;

    /// A new model: its plan is the project's, or the default (RTN W4 asym g128) when it has none.
    void setModel(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer,
                  const Project& project, const std::string& modelSha256);
    /// The project's calibration and evaluation settings changed (the plan stays).
    void setProject(const Project& project);
    /// The undo stack of plan edits (the window's Edit menu).
    QUndoStack* undoStack() { return &m_undo; }
    /// The plan now.
    const Recipe& recipe() const { return m_recipe; }
    /// What the editor shows (never null).
    PlanSnapshotPtr snapshot() const { return m_snapshot; }
    /// Measures after each change when on (the default); tests and benchmarks may turn it off.
    void setLive(bool live);
    /// Starts the live what-if for this model: the window calls it when the plan is first shown
    /// or edited, so opening a large model does not start quantizing it unasked.
    void activate();
    /// The run of the plan as it is now (null until the what-if or a Quantize has run it).
    std::shared_ptr<const RecipeRun> currentRun() const;
    /// True while a what-if job runs or waits.
    bool busy() const { return m_job != nullptr || m_pending; }

    /// Sets `key` to `value` on `layers` as one undo step (see docs/recipe.md "Plan edits").
    /// Nothing changes when the edit is invalid; the error names the layer and the field.
    Expected<void> edit(const QStringList& layers, const QString& key, const QString& value);
    /// Gives `channels` to every layer that reads `site` (e.g. "layers.3.down_in"), replacing
    /// their salient channel lists, as one undo step.
    Expected<void> setSalientChannels(const QString& site, const ChannelOverride& channels);
    /// Replaces the plan by a recipe (undoable); errors name the JSON path.
    Expected<void> setRecipeJson(const QString& json);
    /// Replaces the plan by `recipe` (undoable); `text` names the step in the Edit menu.
    Expected<void> setRecipe(const Recipe& recipe, const QString& text);
    /// The open model (null before one is opened) and its tokenizer.
    std::shared_ptr<const Model> model() const { return m_model; }
    std::shared_ptr<const Tokenizer> tokenizer() const { return m_tokenizer; }
    /// `recipe` as it runs here: with the project's calibration text when it names none.
    Recipe runnable(const Recipe& recipe) const;
    /// The quick slice's settings and text (the evaluation text, else the calibration text).
    EvalOptions evalOptions() const;
    std::string evalFile() const;
    /// Replaces the plan (undoably) by an allocator's widths per layer within bitsPerWeight of the
    /// linears, from the analysis's sensitivity (its end-to-end KL when it has it, else the proxy).
    Expected<Allocation> fitToBudget(const AnalysisResult& analysis, double bitsPerWeight,
                                     const std::string& allocator);
    /// Replaces the plan by a recipe loaded from a file (undoable).
    Expected<void> loadRecipe(const QString& path);
    /// Evaluates the plan's current run on the whole evaluation text (windows of the quick
    /// slice's length, llama.cpp protocol) as a job; the result shows with the plan.
    Job* evaluateFully();
    /// Quantizes the plan into a new run folder as a job and keeps it by name with its results
    /// (the current run when there is one, else a fresh run of the plan).
    Job* quantize(const QString& name, const QString& folder);
    /// The plans quantized so far, oldest first.
    const QList<SavedRun>& runs() const { return m_runs; }
    /// Makes a kept run's recipe the plan (undoable).
    Expected<void> restoreRun(int index);
    /// Kept runs a and b compared layer by layer (their folders' resolved specs and reports).
    Expected<RunDiff> diffRuns(int a, int b) const;
    /// Writes the plan as a recipe file (with the model's hash).
    Expected<void> saveRecipe(const QString& path) const;

signals:
    /// A new plan snapshot (an edit, a run's layer reports or a measure).
    void planChanged(ql::PlanSnapshotPtr plan);
    /// A run was kept (runs() changed).
    void runsChanged();
    /// A what-if ended with its measure published (or failed); tests wait on it.
    void measured();
    /// Something failed; the message names the input at fault.
    void failed(const QString& title, const QString& message);

private:
    friend class PlanCommand;
    void adoptRecipe(const Recipe& recipe);
    Expected<void> pushRecipe(Recipe next, const QString& text);
    void publish();
    void schedule();
    void startRun();
    void startMeasure(std::shared_ptr<RecipeRun> run);
    void jobEnded();

    JobRunner* m_jobs;
    const PluginRegistry* m_plugins;
    QUndoStack m_undo;
    std::shared_ptr<const Model> m_model;
    std::shared_ptr<const Tokenizer> m_tokenizer;
    Project m_project;
    std::string m_modelSha;
    Recipe m_recipe;
    Expected<std::map<std::string, QuantSpec>> m_resolved = std::map<std::string, QuantSpec>{};
    PlanSnapshotPtr m_snapshot;
    bool m_live = true;
    bool m_active = false; ///< the plan was shown or edited since the model was opened

    std::shared_ptr<WhatIfState> m_state; ///< the runner and quick evaluator, one job at a time
    std::shared_ptr<RecipeRun> m_lastRun; ///< the last finished run (its layer reports)
    std::optional<PlanMeasure> m_measure; ///< of m_measuredRecipe
    std::optional<PlanMeasure> m_full;    ///< a full evaluation of m_fullRecipe
    Recipe m_fullRecipe;
    QList<SavedRun> m_runs;
    Recipe m_measuredRecipe;
    Job* m_job = nullptr;
    bool m_pending = false;
};

} // namespace ql
