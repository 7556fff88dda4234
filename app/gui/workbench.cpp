#include "workbench.h"

#include "quantlens/export/openedmodel.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/forward/sitecapture.h"

#include <QDir>
#include <QFileInfo>

namespace ql {

struct Workbench::Loaded {
    Project project;
    std::shared_ptr<const Model> model;
    std::shared_ptr<Tokenizer> tokenizer;
    std::shared_ptr<const CalibrationSet> calib;
    std::string modelSha;
    std::shared_ptr<const AnalysisResult> analysis;
    std::vector<std::string> pieces; ///< token id → text, read here rather than on the UI thread
    QString storeProblem;            ///< why an existing store was not used
};

namespace {

CalibrationSpec effectiveSpec(const Project& p)
{
    CalibrationSpec s = p.calib;
    s.heldOut = parseSensitivityMode(p.sensitivity.toStdString()) == SensitivityMode::Full ? p.klSamples : 0;
    return s;
}

bool sameWindows(const CalibrationSet* c, const CalibrationSpec& s)
{
    return c && c->spec.samples == s.samples && c->spec.seqlen == s.seqlen && c->spec.sampling == s.sampling &&
           c->spec.seed == s.seed && c->spec.heldOut == s.heldOut;
}

// The project's calibration windows. `cached` is reused only when the text has the same content
// (by hash, so a changed file or another file with other text is never mistaken for it) and
// the windows are cut the same way.
Expected<std::shared_ptr<const CalibrationSet>> loadCalibration(const Project& p, const Tokenizer& tok,
                                                                std::shared_ptr<const CalibrationSet> cached = nullptr)
{
    auto text = readCalibrationText(p.calibFile.toStdString());
    if (!text) return text.error();
    if (text->empty()) return makeError(p.calibFile.toStdString() + ": the calibration file is empty");
    if (sameWindows(cached.get(), effectiveSpec(p)) && cached->textSha256 == sha256Hex(text->data(), text->size()))
        return cached;
    auto set = makeCalibrationSet(*text, tok, effectiveSpec(p));
    if (!set) return makeError(p.calibFile.toStdString() + ": " + set.message());
    return std::make_shared<const CalibrationSet>(std::move(*set));
}

} // namespace

Workbench::Workbench(QObject* parent) : QObject(parent), m_snapshot(std::make_shared<AnalysisSnapshot>())
{
    m_plugins.scanDefault();
    m_jobs.setStallReporter(&PluginRegistry::callsInProgress);
    connect(&m_plan, &PlanSession::failed, this, &Workbench::failed);
}

Job* Workbench::watch(Job* job, const QString& what)
{
    connect(job, &Job::finished, this, [this, job, what]() {
        if (job->state() == Job::State::Failed) emit failed(what, job->error());
    });
    return job;
}

Job* Workbench::openModel(const QString& dir)
{
    Project p;
    p.modelDir = QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
    p.calibFile = m_project.calibFile; // keep the calibration choice across models
    p.calib = m_project.calib;
    p.sensitivity = m_project.sensitivity;
    p.klSamples = m_project.klSamples;
    p.sensMethods = m_project.sensMethods;
    p.sensBits = m_project.sensBits;
    p.sensGroups = m_project.sensGroups;
    return openProjectData(p, QFileInfo(p.modelDir).fileName());
}

Job* Workbench::openProject(const QString& path)
{
    auto p = Project::load(path);
    if (!p) {
        emit failed(tr("Open project"), QString::fromStdString(p.message()));
        return nullptr;
    }
    return openProjectData(*p, QFileInfo(path).fileName());
}

Job* Workbench::openProjectData(const Project& project, const QString& name)
{
    auto work = [project](Job& job) -> Expected<std::shared_ptr<Loaded>> {
        auto out = std::make_shared<Loaded>();
        out->project = project;
        job.message("opening the model");
        // A folder, or a .gguf file read through a temporary folder that lives as long as the model.
        auto opened = OpenedModel::open(project.modelDir.toStdString());
        if (!opened) return opened.error();
        auto kept = std::make_shared<OpenedModel>(std::move(*opened));
        if (!kept->tokenizer) return makeError(kept->tokenizerError);
        out->model = std::shared_ptr<const Model>(kept, &kept->model);
        out->tokenizer = kept->tokenizer;
        out->pieces.resize(size_t(out->tokenizer->vocabSize()));
        for (int32_t i = 0; i < out->tokenizer->vocabSize(); ++i) out->pieces[size_t(i)] = out->tokenizer->tokenText(i);
        if (job.isCanceled()) return makeError(canceledMessage());
        job.message("hashing the weights");
        job.progress(0.2);
        auto sha = sha256OfFiles(out->model->weightFiles());
        if (!sha) return sha.error();
        out->modelSha = *sha;
        if (!project.calibFile.isEmpty()) {
            job.message("tokenizing the calibration text");
            job.progress(0.5);
            auto calib = loadCalibration(project, *out->tokenizer);
            if (!calib) return calib.error();
            out->calib = *calib;
        }
        if (out->calib && !project.storeFile.isEmpty() && QFileInfo::exists(project.storeFile)) {
            job.message("reading the analysis store");
            job.progress(0.8);
            const std::string path = project.storeFile.toStdString();
            auto stored = AnalysisStore::openFor(path, out->modelSha, out->calib->sha256);
            const AnalyzeOptions asked = project.analyzeOptions();
            const AnalysisRequest request{out->modelSha, out->calib->sha256, asked.sensitivity,
                                          out->calib->heldOutSha256, sensitivityOptions(asked)};
            const std::string missing = stored ? AnalysisStore::missing(*stored, request) : stored.message();
            if (missing.empty())
                out->analysis = std::make_shared<const AnalysisResult>(std::move(*stored));
            else
                out->storeProblem = QString::fromStdString(stored ? path + " does not serve this project: " + missing
                                                                  : missing);
        }
        return out;
    };
    auto done = [this](std::shared_ptr<Loaded>& loaded) { adopt(*loaded); };
    return watch(m_jobs.run<std::shared_ptr<Loaded>>(tr("Open %1").arg(name), work, done), tr("Open %1").arg(name));
}

void Workbench::adopt(Loaded& l)
{
    m_project = l.project;
    m_model = l.model;
    m_tokenizer = l.tokenizer;
    m_calib = l.calib;
    m_modelSha = l.modelSha;
    m_pieces = std::move(l.pieces);
    publish(l.analysis);
    m_plan.setModel(m_model, m_tokenizer, m_project, m_modelSha);
    emit projectChanged();
    if (!l.storeProblem.isEmpty())
        emit failed(tr("Analysis store not used"), l.storeProblem + tr("\nRun the analysis again to replace it."));
}

Expected<void> Workbench::saveProject(const QString& path)
{
    const QString target = path.isEmpty() ? m_project.path : path;
    if (target.isEmpty()) return makeError("the project has no file name yet");
    if (!path.isEmpty() && path != m_project.path) m_project.storeFile = Project::defaultStore(path);
    if (m_model) {
        m_project.planJson = QString::fromStdString(recipeToJson(m_plan.recipe()));
        m_project.runs = m_plan.runs();
    }
    QL_TRY(m_project.save(target));
    // An analysis computed before the project had a file goes into its store now.
    if (m_snapshot->analysis && !QFileInfo::exists(m_project.storeFile))
        QL_TRY(AnalysisStore::write(m_project.storeFile.toStdString(), *m_snapshot->analysis));
    emit projectChanged();
    return {};
}

void Workbench::setCalibration(const QString& file, const CalibrationSpec& spec)
{
    m_project.calibFile = file.isEmpty() ? file : QFileInfo(file).absoluteFilePath();
    m_project.calib = spec;
    m_plan.setProject(m_project);
    emit projectChanged();
}

void Workbench::setQuickCompute(const QString& compute)
{
    m_project.quickCompute = compute;
    m_plan.setProject(m_project);
    emit projectChanged();
}

void Workbench::setSensitivity(const QString& mode, int klSamples)
{
    m_project.sensitivity = mode;
    m_project.klSamples = klSamples;
    emit projectChanged();
}

void Workbench::setSensitivityOptions(const std::vector<std::string>& methods, const std::vector<int>& bits,
                                      const std::vector<int>& groups)
{
    if (methods.empty() || bits.empty() || groups.empty()) return;
    m_project.sensMethods = methods;
    m_project.sensBits = bits;
    m_project.sensGroups = groups;
    emit projectChanged();
}

Job* Workbench::runAnalysis()
{
    if (!m_model) {
        emit failed(tr("Analysis"), tr("Open a model folder first."));
        return nullptr;
    }
    if (m_project.calibFile.isEmpty()) {
        emit failed(tr("Analysis"), tr("Choose a calibration text first (Analysis > Calibration)."));
        return nullptr;
    }
    const Project project = m_project;
    auto model = m_model;
    auto tok = m_tokenizer;
    auto calib = m_calib;
    const std::string sha = m_modelSha;
    struct Out {
        std::shared_ptr<const CalibrationSet> calib;
        std::shared_ptr<const AnalysisResult> result;
    };
    auto work = [project, model, tok, calib, sha](Job& job) -> Expected<Out> {
        Out out{nullptr, nullptr};
        AnalyzeOptions opt = project.analyzeOptions();
        opt.modelSha256 = sha;
        // Refused before any work when it will not fit, rather than killed part way.
        QL_TRY(checkMemory(estimateMemory(*model, analysisMemoryJob(opt, effectiveSpec(project))), availableMemory(),
                           project.modelDir.toStdString() + ": analysing"));
        job.message("reading the calibration text");
        auto c = loadCalibration(project, *tok, calib);
        if (!c) return c.error();
        out.calib = *c;
        auto r = analyze(*model, *out.calib, opt, &job);
        if (!r) return r.error();
        // The store is replaced only by a complete result (AnalysisStore writes through a temporary file).
        if (!project.storeFile.isEmpty()) QL_TRY(AnalysisStore::write(project.storeFile.toStdString(), *r));
        out.result = std::make_shared<const AnalysisResult>(std::move(*r));
        return out;
    };
    auto done = [this, model](Out& out) {
        if (model != m_model) return; // another model was opened meanwhile
        m_calib = out.calib;
        publish(out.result);
    };
    const QString title = tr("Analysis of %1").arg(QFileInfo(m_project.modelDir).fileName());
    return watch(m_jobs.run<Out>(title, work, done), title);
}

Job* Workbench::exportPlan(const ExportRequest& request, std::function<void(ExportOutcome&)> done)
{
    ExportInputs in{m_model, m_tokenizer, m_plan.currentRun(), m_snapshot->analysis, m_modelSha};
    const QString title = request.preview
                              ? tr("Preview of the %1 export").arg(request.format)
                              : tr("Export %1 to %2").arg(request.format, QFileInfo(request.path).fileName());
    Job* job = m_jobs.run<ExportOutcome>(title, exportWork(request, in), std::move(done));
    return request.preview ? job : watch(job, title);
}

Job* Workbench::requestSiteSample(const QString& site, int sample)
{
    if (!m_model || !m_calib || sample < 0 || size_t(sample) >= m_calib->windows.size()) return nullptr;
    auto model = m_model;
    auto calib = m_calib;
    auto work = [model, calib, site, sample](Job& job) -> Expected<std::shared_ptr<const SiteSample>> {
        auto s = std::make_shared<SiteSample>();
        s->site = site.toStdString();
        s->sample = sample;
        s->tokens = calib->windows[size_t(sample)];
        auto values = captureSite(*model, model->config(), s->tokens, s->site, 0, &job);
        if (!values) return values.error();
        s->values = std::move(*values);
        return std::shared_ptr<const SiteSample>(s);
    };
    auto done = [this, model](std::shared_ptr<const SiteSample>& s) {
        if (model == m_model) emit siteSampleReady(s);
    };
    const QString title = tr("Activations of %1, sample %2").arg(site).arg(sample);
    return watch(m_jobs.run<std::shared_ptr<const SiteSample>>(title, work, done), title);
}

void Workbench::publish(std::shared_ptr<const AnalysisResult> analysis)
{
    auto s = std::make_shared<AnalysisSnapshot>();
    if (m_model) {
        s->modelName = QFileInfo(m_project.modelDir).fileName().toStdString();
        s->layers = m_model->linearLayers();
        s->blocks = m_model->config().layers;
        s->hidden = m_model->config().hidden;
    }
    s->analysis = std::move(analysis);
    if (m_calib) {
        s->seqlen = m_calib->spec.seqlen;
        for (const auto& w : m_calib->windows) s->calibTokens.insert(s->calibTokens.end(), w.begin(), w.end());
    }
    s->tokenPieces = m_pieces;
    m_snapshot = s;
    emit snapshotChanged(m_snapshot);

    // Keep the selection when the model still has it; otherwise show the loudest site.
    bool known = false;
    for (const auto& l : s->layers) known = known || QString::fromStdString(l.name) == m_selection.layer();
    if (known || s->layers.empty()) return;
    QString pick = QString::fromStdString(s->layers.front().name);
    if (s->analysis) {
        double best = -1;
        for (const auto& site : s->analysis->sites)
            if (site.absmaxSite > best) {
                best = site.absmaxSite;
                for (const auto& l : s->layers)
                    if (l.site == site.name) {
                        pick = QString::fromStdString(l.name);
                        break;
                    }
            }
    }
    m_selection.selectLayer(pick);
}

} // namespace ql
