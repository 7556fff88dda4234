// The plan editor in the window: edits through the table (one row, many rows), undo and redo,
// the parameter form from a method's declarations, the live what-if against a fresh
// evaluation, and the plan in the project file. Runs on a fixture model (no ../shared needed).
#include "fixturemodel.h"
#include "guitestutil.h"
#include "exportdialog.h"
#include "mainwindow.h"
#include "outliersview.h"
#include "compareview.h"
#include "paretoview.h"
#include "rundiffview.h"
#include "histogrammodel.h"
#include "histogramchart.h"
#include "quantlens/quant/rtn.h"
#include "chartpanel.h"
#include "salientpicker.h"
#include "paramform.h"
#include "planeditor.h"
#include "plantablemodel.h"
#include "workbench.h"
#include "quantlens/forward/sitecapture.h"
#include "pluginregistry.h"

#include "quantlens/export/ggufreader.h"
#include "quantlens/forward/bf16gemm.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/recipe/planedit.h"
#include "quantlens/store/runstate.h"
#include "quantlens/text/calibration.h"

#include <QAbstractSpinBox>
#include <QJsonObject>
#include <QJsonDocument>
#include <QJsonArray>
#include <QChart>
#include <QChartView>
#include <QScatterSeries>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QTableWidget>
#include <QDoubleSpinBox>
#include <QItemSelectionModel>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <set>
#include <QPushButton>
#include <QSpinBox>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <fstream>

#include <nlohmann/json.hpp>

using namespace ql;
using qltest::finish;

namespace {

// Waits until the plan session has measured the plan it holds now.
bool settle(PlanSession* plan, int ms = 120000)
{
    QElapsedTimer t;
    t.start();
    while (plan->busy() || !plan->snapshot()->measure) {
        if (t.elapsed() > ms) return false;
        QSignalSpy spy(plan, &PlanSession::measured);
        spy.wait(std::max(1, ms - int(t.elapsed())));
    }
    return true;
}

const QuantSpec& specOf(PlanSession* plan, const std::string& layer)
{
    for (const PlanRow& r : plan->snapshot()->rows)
        if (r.layer == layer) return r.spec;
    static QuantSpec none;
    return none;
}

int bitsOf(PlanSession* plan, const std::string& layer)
{
    auto f = findFormat(specOf(plan, layer).weight.format);
    return f ? int((*f)->bits) : -1;
}

} // namespace

class TestGuiPlan : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_project;

    QString path(const QString& name) const { return m_tmp.path() + QLatin1Char('/') + name; }

    // A workbench with the fixture project open; live what-if off unless asked for.
    void open(Workbench& wb, bool live = false)
    {
        wb.plan()->setLive(live);
        Job* job = wb.openProject(m_project);
        QVERIFY(finish(job));
        if (live) wb.plan()->activate();
        QCOMPARE(job->state(), Job::State::Succeeded);
        QVERIFY(wb.plan()->snapshot()->error.empty());
        QVERIFY(!wb.plan()->snapshot()->rows.empty());
    }

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        const std::string text = qlfix::storyText(400);
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        spec.layers = 4;
        spec.weightStd = 0.3f; // peaked enough that quantization moves the KL measurably
        std::string err;
        QVERIFY2(qlfix::writeTokenizedModel(path(QStringLiteral("model")).toStdString(), spec, text, &err),
                 err.c_str());
        std::ofstream(path(QStringLiteral("calib.txt")).toStdString()) << text;
        m_project = path(QStringLiteral("plan.qlproj"));
        std::ofstream(m_project.toStdString())
            << R"({"version": 1, "model": "model", "calibration": {"file": "calib.txt", "samples": 4, "seqlen": 32,
                 "sampling": "contiguous"}, "evaluation": {"quick_windows": 4, "quick_ctx": 64}})";
    }

    void editUndoRedoThroughTheTable()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        QVERIFY(editor);
        PlanTableModel* model = editor->model();
        QCOMPARE(model->rowCount(), int(wb.plan()->snapshot()->rows.size()));
        const int row = model->rowOfLayer(QStringLiteral("model.layers.2.mlp.down_proj"));
        QVERIFY(row >= 0);
        const std::string layer = "model.layers.2.mlp.down_proj";
        QCOMPARE(bitsOf(wb.plan(), layer), 4); // the default plan: RTN W4 asym g128
        const double sizeBefore = double(wb.plan()->snapshot()->size.modelBytes);

        // The table offers editing only where the edit is meaningful, and edits leave as requests.
        const QModelIndex bits = model->index(row, PlanTableModel::BitsColumn);
        QVERIFY(model->flags(bits) & Qt::ItemIsEditable);
        QVERIFY(!(model->flags(model->index(row, PlanTableModel::LayerColumn)) & Qt::ItemIsEditable));
        QVERIFY(model->setData(bits, 3));
        QCOMPARE(bitsOf(wb.plan(), layer), 3);
        QCOMPARE(model->data(bits, Qt::EditRole).toInt(), 3);
        QCOMPARE(bitsOf(wb.plan(), "model.layers.2.mlp.up_proj"), 4);         // only the edited layer
        QVERIFY(double(wb.plan()->snapshot()->size.modelBytes) < sizeBefore); // size follows at once
        QVERIFY(QString::fromStdString(wb.plan()->snapshot()->rows[size_t(row)].source)
                    .contains(QStringLiteral("overrides[0]")));

        // The Edit menu's actions are the undo stack's, with the usual shortcuts.
        QAction* undo = nullptr;
        QAction* redo = nullptr;
        for (QAction* a : w.menuBar()->actions())
            if (a->menu() && a->text() == QStringLiteral("&Edit"))
                for (QAction* e : a->menu()->actions()) {
                    if (e->shortcut() == QKeySequence(QKeySequence::Undo)) undo = e;
                    if (e->shortcuts().contains(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z))) redo = e;
                }
        QVERIFY(undo && redo);
        QVERIFY(undo->isEnabled());
        QVERIFY(undo->text().contains(QStringLiteral("bits=3")));
        undo->trigger();
        QCOMPARE(bitsOf(wb.plan(), layer), 4);
        QCOMPARE(double(wb.plan()->snapshot()->size.modelBytes), sizeBefore);
        QVERIFY(wb.plan()->recipe().overrides.empty());
        redo->trigger();
        QCOMPARE(bitsOf(wb.plan(), layer), 3);

        // An edit that cannot be a plan changes nothing and says why.
        auto bad = wb.plan()->edit({QString::fromStdString(layer)}, QStringLiteral("group"), QStringLiteral("zero"));
        QVERIFY(!bad);
        QVERIFY2(QString::fromStdString(bad.message()).contains(QStringLiteral("group")), bad.message().c_str());
        auto badParam = wb.plan()->edit({QString::fromStdString(layer)}, QStringLiteral("params.mse_clip"),
                                        QStringLiteral("7"));
        QVERIFY(!badParam);
        QVERIFY2(QString::fromStdString(badParam.message()).contains(QStringLiteral("mse_clip")),
                 badParam.message().c_str());
        QCOMPARE(wb.plan()->undoStack()->count(), 1);

        // "float" in the method column keeps the layer unquantized (the recipe's skip list); the
        // float row's method cell is then the one editable cell, and a method takes it back.
        const QModelIndex method = model->index(row, PlanTableModel::MethodColumn);
        QVERIFY(model->setData(method, QStringLiteral("float")));
        QVERIFY(specOf(wb.plan(), layer).skip);
        QCOMPARE(wb.plan()->recipe().skip, std::vector<std::string>{layer});
        QCOMPARE(model->data(method, Qt::DisplayRole).toString(), QStringLiteral("float"));
        QVERIFY(wb.plan()->snapshot()->size.modelBytes > sizeBefore); // a float layer weighs more
        QVERIFY(!(model->flags(bits) & Qt::ItemIsEditable));
        QVERIFY(model->flags(method) & Qt::ItemIsEditable);
        QVERIFY(model->setData(method, QStringLiteral("rtn")));
        QVERIFY(!specOf(wb.plan(), layer).skip);
        QCOMPARE(bitsOf(wb.plan(), layer), 4); // the rule's: its own override went with "float"
        undo->trigger();
        QVERIFY(specOf(wb.plan(), layer).skip);
        undo->trigger();
        QVERIFY(wb.plan()->recipe().skip.empty());
        QCOMPARE(bitsOf(wb.plan(), layer), 3);
    }

    void multiSelectApply()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        PlanTableModel* model = editor->model();
        QItemSelectionModel* sel = editor->tableView()->selectionModel();
        const QStringList picked{QStringLiteral("model.layers.0.self_attn.q_proj"),
                                 QStringLiteral("model.layers.1.self_attn.q_proj"),
                                 QStringLiteral("model.layers.3.mlp.gate_proj")};
        for (const QString& l : picked)
            sel->select(model->index(model->rowOfLayer(l), 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
        QCOMPARE(editor->selectedLayers().size(), 3);
        // Editing one selected row's group edits all of them, as one undo step.
        QVERIFY(model->setData(model->index(model->rowOfLayer(picked[1]), PlanTableModel::GroupColumn),
                               QStringLiteral("32")));
        int changed = 0;
        for (const PlanRow& r : wb.plan()->snapshot()->rows) {
            const bool isPicked = picked.contains(QString::fromStdString(r.layer));
            QCOMPARE(r.spec.weight.groupSize, isPicked ? 32 : 128);
            changed += isPicked;
        }
        QCOMPARE(changed, 3);
        QCOMPARE(wb.plan()->undoStack()->count(), 1);
        // Editing a row outside the selection edits that row only.
        const QString other = QStringLiteral("model.layers.2.self_attn.o_proj");
        QVERIFY(model->setData(model->index(model->rowOfLayer(other), PlanTableModel::SymColumn), true));
        QCOMPARE(specOf(wb.plan(), other.toStdString()).weight.format, std::string("int4_sym"));
        QCOMPARE(specOf(wb.plan(), picked[0].toStdString()).weight.format, std::string("int4_asym"));
        wb.plan()->undoStack()->undo();
        wb.plan()->undoStack()->undo();
        for (const PlanRow& r : wb.plan()->snapshot()->rows) QCOMPARE(r.spec.weight.groupSize, 128);
    }

    // The parameter form of a method is built from its declared parameters, for any plugin's
    // method: QL_FORM_METHOD names another one to check (the out-of-tree test plugin's run sets it).
    void paramFormFromDeclarations()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        QStringList methods{QStringLiteral("gptq"), QStringLiteral("rtn"), QStringLiteral("omniquant"),
                            QStringLiteral("autoround")};
        const QString extra = qEnvironmentVariable("QL_FORM_METHOD");
        if (!extra.isEmpty()) methods = {extra};
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        PlanTableModel* model = editor->model();
        const QString layer = QStringLiteral("model.layers.1.mlp.up_proj");
        const int row = model->rowOfLayer(layer);
        editor->tableView()->selectRow(row);
        for (const QString& method : methods) {
            const Quantizer* q = wb.plugins().quantizer(method.toStdString());
            QVERIFY2(q, qPrintable(method + QStringLiteral(" is not offered by the plugins")));
            QVERIFY(model->setData(model->index(row, PlanTableModel::MethodColumn), method));
            QCOMPARE(specOf(wb.plan(), layer.toStdString()).method, method.toStdString());
            QTRY_COMPARE(editor->paramForm()->method(), method);
            const auto params = q->parameters();
            QCOMPARE(editor->paramForm()->fieldCount(), int(params.size()));
            QVERIFY(!params.empty());
            for (const ParamSpec& p : params) {
                QWidget* field = editor->paramForm()->findChild<QWidget*>(QStringLiteral("param_") +
                                                                          QString::fromStdString(p.name));
                QVERIFY2(field, p.name.c_str());
                QCOMPARE(field->toolTip(), QString::fromStdString(p.help));
            }
            // Changing the first field edits the selected layer's parameter.
            const ParamSpec& p = params.front();
            QWidget* field = editor->paramForm()->findChild<QWidget*>(QStringLiteral("param_") +
                                                                      QString::fromStdString(p.name));
            ParamValue expected;
            if (auto* c = qobject_cast<QCheckBox*>(field)) {
                c->setChecked(!c->isChecked());
                expected = c->isChecked();
            } else if (auto* d = qobject_cast<QDoubleSpinBox*>(field)) {
                d->setValue(d->value() == d->maximum() ? d->minimum()
                                                       : std::min(d->maximum(), d->value() + d->singleStep()));
                expected = d->value();
            } else if (auto* i = qobject_cast<QSpinBox*>(field)) {
                i->setValue(i->value() == i->maximum() ? i->minimum() : i->value() + 1);
                expected = int64_t(i->value());
            } else if (auto* b = qobject_cast<QComboBox*>(field)) {
                QVERIFY(b->count() > 1);
                b->setCurrentIndex((b->currentIndex() + 1) % b->count());
                expected = b->currentText().toStdString();
            }
            const ParamMap& got = specOf(wb.plan(), layer.toStdString()).params;
            QVERIFY2(got.count(p.name), p.name.c_str());
            QCOMPARE(paramValueText(got.at(p.name)), paramValueText(expected));
        }
    }

    // The live what-if after edits and an undo equals a fresh evaluation of the final plan.
    void whatIfEqualsFreshEvaluation()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb, true);
        PlanSession* plan = wb.plan();
        QVERIFY(settle(plan));
        const double klDefault = plan->snapshot()->measure->kl.meanKl;
        QVERIFY(klDefault > 0);
        QVERIFY(plan->snapshot()->measuredBitsPerWeight);
        for (const PlanRow& r : plan->snapshot()->rows) QVERIFY2(r.report, r.layer.c_str()); // error columns filled

        QVERIFY(
            plan->edit({QStringLiteral("model.layers.3.mlp.down_proj")}, QStringLiteral("bits"), QStringLiteral("2")));
        QVERIFY(plan->edit({QStringLiteral("model.layers.1.self_attn.v_proj")}, QStringLiteral("bits"),
                           QStringLiteral("8")));
        plan->undoStack()->undo();
        QVERIFY(
            plan->edit({QStringLiteral("model.layers.2.mlp.gate_proj")}, QStringLiteral("bits"), QStringLiteral("3")));
        QVERIFY(settle(plan));
        const PlanMeasure quick = *plan->snapshot()->measure;
        QVERIFY2(quick.kl.meanKl > klDefault,
                 qPrintable(QStringLiteral("%1 vs %2").arg(quick.kl.meanKl).arg(klDefault)));

        // A fresh run of the final plan, evaluated from scratch on the same windows.
        auto model = Model::open(path(QStringLiteral("model")).toStdString());
        QVERIFY(model.ok());
        auto tok = loadTokenizer(path(QStringLiteral("model")).toStdString());
        QVERIFY(tok.ok());
        Recipe r = plan->recipe();
        r.calibrationFile = path(QStringLiteral("calib.txt")).toStdString();
        r.calibration = wb.project().calib;
        RecipeRunner runner = makeRecipeRunner(*model, wb.plugins(), 0);
        auto run = runner.run(r, tok->get());
        QVERIFY2(run.ok(), run.message().c_str());
        auto text = readCalibrationText(path(QStringLiteral("calib.txt")).toStdString());
        QVERIFY(text.ok());
        EvalOptions opt;
        opt.ctx = 64;
        opt.chunks = 4;
        QCOMPARE(quick.bf16, bf16::supported()); // the quick measure's default: bf16 where the CPU has it
        opt.runtime.bf16Products = quick.bf16;
        auto fresh = evaluateKl(model->config(), *model, model->config(), *run->model, (*tok)->encode(*text),
                                (*tok)->addsBos() ? (*tok)->bosId() : -1, opt);
        QVERIFY2(fresh.ok(), fresh.message().c_str());
        auto rel = [](double a, double b) { return std::abs(a - b) / std::abs(b); };
        QCOMPARE(quick.kl.tokensScored, fresh->tokensScored);
        QVERIFY2(rel(quick.kl.meanKl, fresh->meanKl) < 1e-6,
                 qPrintable(QStringLiteral("%1 vs %2").arg(quick.kl.meanKl).arg(fresh->meanKl)));
        QVERIFY(rel(quick.kl.pplModel, fresh->pplModel) < 1e-6);
        QCOMPARE(quick.kl.top1Agreement, fresh->top1Agreement);
        QVERIFY(quick.blocksRun < model->config().layers); // the last measure restarted part way

        // "Full evaluation" evaluates the same run on every window of the text, as a job.
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        QPushButton* fullButton = nullptr;
        for (auto* b : editor->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Full evaluation")) fullButton = b;
        QVERIFY(fullButton && fullButton->isEnabled());
        const int jobsBefore = int(wb.jobs()->jobs().size());
        fullButton->click();
        QCOMPARE(int(wb.jobs()->jobs().size()), jobsBefore + 1);
        QVERIFY(finish(wb.jobs()->jobs().back()));
        QVERIFY(plan->snapshot()->full);
        opt.chunks = -1;
        opt.runtime.bf16Products = false; // the full evaluation is always fp32
        QVERIFY(!plan->snapshot()->full->bf16);
        auto all = evaluateKl(model->config(), *model, model->config(), *run->model, (*tok)->encode(*text),
                              (*tok)->addsBos() ? (*tok)->bosId() : -1, opt);
        QVERIFY(all.ok());
        QVERIFY(all->chunks > 4);
        QCOMPARE(plan->snapshot()->full->windows, all->chunks);
        QVERIFY(rel(plan->snapshot()->full->kl.meanKl, all->meanKl) < 1e-6);
        QVERIFY(rel(plan->snapshot()->full->kl.pplModel, all->pplModel) < 1e-6);
        QVERIFY(editor->summaryText().contains(QStringLiteral("Full evaluation")));
    }

    // Salient channels picked on the outliers chart (Shift + drag) end up in the saved recipe.
    void salientChannelsFromTheChart()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        Job* a = wb.runAnalysis();
        QVERIFY(finish(a));
        QCOMPARE(a->state(), Job::State::Succeeded);
        w.resize(1400, 900);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        w.showPage(QStringLiteral("outliers"));
        auto* view = qobject_cast<OutliersView*>(w.page(QStringLiteral("outliers")));
        QVERIFY(view);
        wb.selection()->selectLayer(QStringLiteral("model.layers.1.mlp.down_proj"));
        QTRY_COMPARE(view->currentSite(), QStringLiteral("layers.1.down_in"));
        view->tabs()->setCurrentIndex(0);
        QCoreApplication::processEvents();

        // Shift + drag from channel 3 to channel 6 on the absmax chart.
        QChartView* cv = view->absmaxPanel()->chartView();
        QChart* chart = view->absmaxPanel()->chart();
        auto at = [&](double channel) {
            const QPointF scene = chart->mapToScene(chart->mapToPosition(QPointF(channel, 0)));
            return cv->mapFromScene(scene) + QPoint(0, -20);
        };
        const QPoint from = at(3), to = at(6);
        const double x0 = chart->mapToValue(chart->mapFromScene(cv->mapToScene(from))).x();
        const double x1 = chart->mapToValue(chart->mapFromScene(cv->mapToScene(to))).x();
        QTest::mousePress(cv->viewport(), Qt::LeftButton, Qt::ShiftModifier, from);
        QTest::mouseMove(cv->viewport(), to);
        QTest::mouseRelease(cv->viewport(), Qt::LeftButton, Qt::ShiftModifier, to);
        std::vector<int32_t> expected;
        for (long c = std::lround(x0); c <= std::lround(x1); ++c) expected.push_back(int32_t(c));
        QVERIFY(expected.size() >= 3);
        QCOMPARE(view->salientPicker()->channels(), expected);
        QVERIFY(!view->absmaxPanel()->isZoomed()); // a pick is not a zoom

        view->salientPicker()->formatBox()->setCurrentText(QStringLiteral("int8_sym"));
        QVERIFY(view->salientPicker()->applyButton()->isEnabled());
        view->salientPicker()->applyButton()->click();
        const QuantSpec& spec = specOf(wb.plan(), "model.layers.1.mlp.down_proj");
        QCOMPARE(spec.channels.size(), size_t(1));
        QCOMPARE(spec.channels[0].channels, expected);
        QCOMPARE(spec.channels[0].weight.format, std::string("int8_sym"));
        QVERIFY(specOf(wb.plan(), "model.layers.1.mlp.up_proj").channels.empty()); // reads another site
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        const int row = editor->model()->rowOfLayer(QStringLiteral("model.layers.1.mlp.down_proj"));
        QCOMPARE(editor->model()->index(row, PlanTableModel::ChannelsColumn).data().toString(),
                 QStringLiteral("%1 ch → int8_sym").arg(expected.size()));

        // In the saved recipe, and gone again after an undo.
        const QString file = path(QStringLiteral("salient.json"));
        QVERIFY(wb.plan()->saveRecipe(file).ok());
        auto saved = loadRecipe(file.toStdString());
        QVERIFY2(saved.ok(), saved.message().c_str());
        auto resolved = resolveRecipe(*saved, Model::open(path(QStringLiteral("model")).toStdString())->linearLayers());
        QVERIFY(resolved.ok());
        QCOMPARE(resolved->at("model.layers.1.mlp.down_proj").channels, spec.channels);
        wb.plan()->undoStack()->undo();
        QVERIFY(specOf(wb.plan(), "model.layers.1.mlp.down_proj").channels.empty());

        // The top 10 % by the Hessian diagonal, E[x²] per channel, written here from the statistics.
        const SiteStats* site = wb.snapshot()->site("layers.1.down_in");
        QVERIFY(site);
        view->salientPicker()->pickTop(1, 10);
        std::vector<int> order(size_t(site->var.size()));
        std::iota(order.begin(), order.end(), 0);
        auto ms = [&](int c) { return double(site->var[c]) + double(site->mean[c]) * site->mean[c]; };
        std::stable_sort(order.begin(), order.end(), [&](int p, int q) { return ms(p) > ms(q); });
        std::vector<int32_t> top(order.begin(), order.begin() + long(std::ceil(0.1 * double(order.size()))));
        std::sort(top.begin(), top.end());
        QCOMPARE(view->salientPicker()->channels(), top);
        // And by AWQ's salience, E|x| per channel (checked against a naive sum in tst_stats).
        view->salientPicker()->pickTop(2, 10);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int p, int q) { return site->meanAbs[p] > site->meanAbs[q]; });
        std::vector<int32_t> topAwq(order.begin(), order.begin() + long(top.size()));
        std::sort(topAwq.begin(), topAwq.end());
        QCOMPARE(view->salientPicker()->channels(), topAwq);
    }

    // Plan > Fit to Budget: the allocator's plan replaces the plan within the budget, undoably.
    void fitToBudget()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        Job* job = wb.runAnalysis();
        QVERIFY(finish(job));
        QVERIFY(wb.snapshot()->analysis);
        const Recipe before = wb.plan()->recipe();
        auto fit = wb.plan()->fitToBudget(*wb.snapshot()->analysis, 3.5, "knapsack");
        QVERIFY2(fit.ok(), fit.message().c_str());
        QVERIFY(fit->exact);
        const PlanSnapshotPtr plan = wb.plan()->snapshot();
        QVERIFY2(plan->size.bitsPerWeight <= 3.5 + 1e-9, qPrintable(QString::number(plan->size.bitsPerWeight)));
        std::set<std::string> formats;
        for (const PlanRow& r : plan->rows) formats.insert(r.spec.weight.format);
        QVERIFY(formats.size() >= 2); // 3.5 bits lies between two widths
        QVERIFY(wb.plan()->undoStack()->undoText().contains(QStringLiteral("knapsack")));
        wb.plan()->undoStack()->undo();
        QVERIFY(wb.plan()->recipe() == before);
        auto small = wb.plan()->fitToBudget(*wb.snapshot()->analysis, 1.0, "greedy");
        QVERIFY(!small.ok());
        QVERIFY2(small.message().find("below the") != std::string::npos, small.message().c_str());
        auto unknown = wb.plan()->fitToBudget(*wb.snapshot()->analysis, 3.0, "magic");
        QVERIFY(!unknown.ok() && unknown.message().find("magic") != std::string::npos);
    }

    // Plan > Pareto Sweep: the uniform plans and each allocator's plans fill the plot as they are
    // measured; clicking a point loads its plan. The uniform W4 point must equal the live
    // what-if's own measure of the default plan (RTN W4 asym g128), taken by another evaluator.
    void paretoSweepFillsAndLoads()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb, true);
        QVERIFY(finish(wb.runAnalysis()));
        QVERIFY(settle(wb.plan()));
        const double liveKl = wb.plan()->snapshot()->measure->kl.meanKl;
        auto bad = wb.pareto()->start(*wb.plan(), wb.snapshot()->analysis, {3.0}, {"magic"});
        QVERIFY(!bad.ok() && bad.message().find("magic") != std::string::npos);
        auto job = wb.pareto()->start(*wb.plan(), wb.snapshot()->analysis, {3.0, 3.5}, {"knapsack", "greedy"});
        QVERIFY2(job.ok(), job.message().c_str());
        QVERIFY(finish(*job));
        QCOMPARE((*job)->state(), Job::State::Succeeded);
        QCoreApplication::processEvents();
        const QList<ParetoPoint>& points = w.paretoView()->points();
        QCOMPARE(points.size(), 4 + 2 * 2); // RTN at 2, 3, 4 and 8 bits, then two allocators at two budgets
        std::map<QString, const ParetoPoint*> byLabel;
        for (const ParetoPoint& p : points) byLabel[p.label] = &p;
        const ParetoPoint* w4 = byLabel.at(QStringLiteral("uniform rtn w4 g128"));
        QVERIFY2(std::abs(w4->meanKl - liveKl) <= 1e-6 * liveKl, qPrintable(QString::number(w4->meanKl)));
        QVERIFY(byLabel.at(QStringLiteral("uniform rtn w2 g128"))->meanKl > w4->meanKl);
        QVERIFY(byLabel.at(QStringLiteral("uniform rtn w8 g128"))->meanKl < w4->meanKl);
        for (const char* label : {"knapsack at 3 bpw", "greedy at 3 bpw"})
            QVERIFY2(byLabel.at(QString::fromLatin1(label))->bitsPerWeight <= 3.0 + 1e-9, label);
        QVERIFY(byLabel.at(QStringLiteral("knapsack at 3.5 bpw"))->bitsPerWeight <= 3.5 + 1e-9);
        // A click on the knapsack's first point (its 3-bit plan) loads that plan, undoably.
        QScatterSeries* knapsack = nullptr;
        for (QAbstractSeries* series : w.paretoView()->panel()->chart()->series())
            if (series->name() == QLatin1String("knapsack")) knapsack = qobject_cast<QScatterSeries*>(series);
        QVERIFY(knapsack && knapsack->count() == 2);
        const ParetoPoint* chosen = byLabel.at(QStringLiteral("knapsack at 3 bpw"));
        QCOMPARE(knapsack->at(0), QPointF(chosen->bitsPerWeight, chosen->meanKl));
        emit knapsack->clicked(knapsack->at(0));
        QCOMPARE(recipeToJson(wb.plan()->recipe()), recipeToJson(chosen->recipe));
        QVERIFY(wb.plan()->undoStack()->undoText().contains(QStringLiteral("Pareto")));
        QVERIFY(w.paretoView()->panel()->csvText().count('\n') == 1 + points.size());
    }

    // Plan > Compare Methods on Layer: three methods on one layer fill the Compare dock, each
    // alone: RTN's weight error equals round to nearest recomputed here, GPTQ's output error
    // (its objective) is below RTN's, and each error histogram counts every weight of the layer.
    void compareViewFillsForThreeMethods()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        QVERIFY(finish(wb.runAnalysis()));
        const std::string layer = "model.layers.1.self_attn.o_proj";
        auto bad = wb.compare()->start(*wb.plan(), layer, {"rtn", "magic"});
        QVERIFY(!bad.ok() && bad.message().find("magic") != std::string::npos);
        auto job = wb.compare()->start(*wb.plan(), layer, {"rtn", "gptq", "pbllm"});
        QVERIFY2(job.ok(), job.message().c_str());
        QVERIFY(finish(*job));
        QVERIFY2((*job)->state() == Job::State::Succeeded, qPrintable((*job)->error()));
        CompareView* view = w.compareView();
        QCOMPARE(view->table()->rowCount(), 3);
        const LayerComparison& c = view->comparison();
        QCOMPARE(c.layer, layer);
        const auto& layers = wb.plan()->model()->linearLayers();
        const LinearLayer& l = *std::find_if(layers.begin(), layers.end(), [&](auto& x) { return x.name == layer; });
        BlockWeights bw;
        QVERIFY(wb.plan()->model()->block(l.block, bw).ok());
        const RowMatrix weight = bw[l.kind];
        const double naive = (rtnFakeQuant(weight, 4, 128) - weight).squaredNorm() / weight.squaredNorm();
        QVERIFY2(std::abs(c.methods[0].weightRelError - naive) <= 1e-5 * naive,
                 qPrintable(QString::number(c.methods[0].weightRelError)));
        QVERIFY(c.methods[1].outputRelMse && c.methods[0].outputRelMse);
        QVERIFY(*c.methods[1].outputRelMse < *c.methods[0].outputRelMse);
        // RTN's output error equals the analysis's at 4 bits, taken from the statistics pass's
        // Hessian instead of captured inputs (o_proj has no bias).
        const auto& sens = wb.snapshot()->analysis->sensitivity;
        const auto ls = std::find_if(sens.begin(), sens.end(), [&](auto& x) { return x.name == layer; });
        QVERIFY(ls != sens.end());
        const double relMse = ls->relMse[size_t(std::find(ls->bits.begin(), ls->bits.end(), 4) - ls->bits.begin())];
        QVERIFY2(std::abs(*c.methods[0].outputRelMse - relMse) <= 1e-4 * relMse,
                 qPrintable(QStringLiteral("%1 vs %2").arg(*c.methods[0].outputRelMse).arg(relMse)));
        for (const LayerMethodResult& m : c.methods) {
            QVERIFY2(m.kl.meanKl > 0, m.label.c_str());
            double total = 0;
            for (double n : m.error.histCounts) total += n;
            QCOMPARE(total, double(weight.size()));
        }
        QCOMPARE(view->table()->item(1, 0)->text(), QStringLiteral("gptq int4_asym g128"));
        view->table()->setCurrentCell(2, 0);
        QVERIFY(view->errorChart()->model()->rowCount() > 0);
        QVERIFY(view->weightChart()->model()->rowCount() > 0);
    }

    // Transforms before a method: the output error of a rotated layer is measured on the inputs the
    // rotated model gives it. Checked here independently: the layer's output energy on those inputs
    // equals the float layer's (a rotation preserves the function, and down_proj's inputs carry
    // the online Hadamard), and the reported error equals ‖(W − Ŵ)X‖²/‖WX‖² in double.
    void compareWithTransforms()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        const std::string layer = "model.layers.1.mlp.down_proj";
        auto bad = wb.compare()->start(*wb.plan(), layer, {"gptq+hadamard"});
        QVERIFY(!bad.ok() && bad.message().find("a method comes last") != std::string::npos);
        auto job = wb.compare()->start(*wb.plan(), layer, {"rtn", "hadamard+rtn", "awq", "hadamard+gptq"});
        QVERIFY2(job.ok(), job.message().c_str());
        QVERIFY(finish(*job));
        QVERIFY2((*job)->state() == Job::State::Succeeded, qPrintable((*job)->error()));
        const LayerComparison& c = w.compareView()->comparison();
        QCOMPARE(c.methods.size(), size_t(4));
        QCOMPARE(c.methods[1].label, std::string("hadamard+rtn int4_asym g128"));
        QCOMPARE(c.methods[2].label, std::string("awq+rtn int4_asym g128"));
        QCOMPARE(c.methods[3].label, std::string("hadamard+gptq int4_asym g128"));
        QCOMPARE(w.compareView()->table()->rowCount(), 4);

        const Model& model = *wb.plan()->model();
        RecipeRunner runner = makeRecipeRunner(model, wb.plugins(), 0);
        Recipe recipe = wb.plan()->runnable(Recipe{});
        recipe.transforms = {{"hadamard", {}}};
        recipe.rules = {{layer, c.methods[1].spec}};
        auto run = runner.run(recipe, wb.plan()->tokenizer().get());
        QVERIFY2(run.ok(), run.message().c_str());
        QVERIFY(run->transformed && !run->calib.windows.empty());
        const auto& layers = model.linearLayers();
        const LinearLayer& l = *std::find_if(layers.begin(), layers.end(), [&](auto& x) { return x.name == layer; });
        BlockWeights bw;
        QVERIFY(model.block(l.block, bw).ok());
        const Eigen::MatrixXd wf = RowMatrix(bw[l.kind]).cast<double>();
        const Eigen::MatrixXd wt = run->transformed->linear(l.block, l.kind).cast<double>();
        const Eigen::MatrixXd d = wt - run->model->layer(layer)->result->dequantized.cast<double>();
        double energyFloat = 0, energyRotated = 0, error = 0;
        for (const auto& window : run->calib.windows) {
            auto x = captureSite(model, model.config(), window, l.site);
            auto xt = captureSite(*run->transformed, run->transformed->config(), window, l.site);
            QVERIFY(x.ok() && xt.ok());
            energyFloat += (wf * x->cast<double>().transpose()).squaredNorm();
            energyRotated += (wt * xt->cast<double>().transpose()).squaredNorm();
            error += (d * xt->cast<double>().transpose()).squaredNorm();
        }
        QVERIFY2(std::abs(energyRotated - energyFloat) <= 1e-4 * energyFloat,
                 qPrintable(QStringLiteral("%1 vs %2").arg(energyRotated).arg(energyFloat)));
        QVERIFY(c.methods[1].outputRelMse);
        QVERIFY2(std::abs(*c.methods[1].outputRelMse - error / energyRotated) <= 1e-4 * error / energyRotated,
                 qPrintable(QStringLiteral("%1 vs %2").arg(*c.methods[1].outputRelMse).arg(error / energyRotated)));
        for (const LayerMethodResult& m : c.methods) QVERIFY2(m.kl.meanKl > 0 && m.outputRelMse, m.label.c_str());
    }

    // The export dialog previews per tensor what the format cannot represent, then exports as a job.
    void exportDialogWarnsAndExports()
    {
        Workbench wb;
        open(wb, true);
        QVERIFY(settle(wb.plan()));
        QVERIFY(wb.plan()->currentRun());
        ExportDialog d(&wb);
        auto preview = [&](const QString& format, const QString& type) {
            d.formatBox()->setCurrentIndex(d.formatBox()->findData(format));
            d.typeBox()->setCurrentText(type);
            d.refreshPreview();
            return finish(d.previewJob());
        };
        // K-types need rows of multiples of 256; the fixture's have 64 or 172 columns.
        QVERIFY(preview(QStringLiteral("gguf"), QStringLiteral("q4_k")));
        QCOMPARE(d.previewJob()->state(), Job::State::Succeeded);
        int noted = 0;
        for (int r = 0; r < d.previewTable()->rowCount(); ++r) {
            const QString note = d.previewTable()->item(r, 3)->text();
            if (note.isEmpty() || note.startsWith(QStringLiteral("the run's codes"))) continue;
            ++noted;
            QVERIFY2(note.contains(QStringLiteral("256")), qPrintable(note));
            QVERIFY(d.previewTable()->item(r, 2)->text() != QStringLiteral("q4_k"));
        }
        QVERIFY(noted >= 4 * 7);
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("%1 tensors cannot be written as asked").arg(noted)),
                 qPrintable(d.warningLabel()->text()));
        // The default plan's int4 asym g128 codes are no ggml type's: they are re-encoded, and said so.
        QVERIFY(preview(QStringLiteral("gguf"), QStringLiteral("q8_0")));
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("cannot be written as asked")),
                 qPrintable(d.warningLabel()->text()));
        int reencoded = 0;
        for (int r = 0; r < d.previewTable()->rowCount(); ++r)
            reencoded += d.previewTable()->item(r, 3)->text().contains(QStringLiteral("encoded from the dequantized"));
        QCOMPARE(reencoded, 4 * 7);
        // int8 symmetric groups of 32 are Q8_0 exactly: the linears keep their codes ...
        QVERIFY(wb.plan()->setRecipeJson(QStringLiteral(
            R"({"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 8, "sym": true, "group": 32}]})")));
        QVERIFY(settle(wb.plan()));
        QVERIFY(preview(QStringLiteral("gguf"), QStringLiteral("q8_0")));
        // ... except down_proj, whose 172 columns end in a partial group no ggml block holds.
        QStringList noted8;
        for (int r = 0; r < d.previewTable()->rowCount(); ++r)
            if (d.previewTable()->item(r, 3)->foreground().color() == QColor(176, 0, 32))
                noted8 << d.previewTable()->item(r, 0)->text();
            else if (d.previewTable()->item(r, 0)->text().startsWith(QStringLiteral("blk.")) &&
                     d.previewTable()->item(r, 2)->text() == QStringLiteral("q8_0"))
                QCOMPARE(d.previewTable()->item(r, 3)->text(), QStringLiteral("the run's codes, kept exactly"));
        QCOMPARE(noted8,
                 (QStringList{QStringLiteral("blk.0.ffn_down.weight"), QStringLiteral("blk.1.ffn_down.weight"),
                              QStringLiteral("blk.2.ffn_down.weight"), QStringLiteral("blk.3.ffn_down.weight")}));
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("24 with the run's codes unchanged")),
                 qPrintable(d.warningLabel()->text()));
        // GPTQ loaders need groups that divide the input: g32 on down_proj's 172 columns is refused, naming a layer.
        QVERIFY(preview(QStringLiteral("gptq"), QStringLiteral("q8_0")));
        QCOMPARE(d.previewJob()->state(), Job::State::Failed);
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("Cannot export")) &&
                     d.warningLabel()->text().contains(QStringLiteral("model.layers.")),
                 qPrintable(d.warningLabel()->text()));

        // The export itself: a GGUF file, complete, nothing else left beside it.
        QVERIFY(preview(QStringLiteral("gguf"), QStringLiteral("q8_0")));
        const QString out = path(QStringLiteral("exports/plan.gguf"));
        QDir().mkpath(path(QStringLiteral("exports")));
        d.pathEdit()->setText(out);
        d.startExport();
        QVERIFY(finish(d.exportJob()));
        QCOMPARE(d.exportJob()->state(), Job::State::Succeeded);
        QVERIFY2(d.statusLabel()->text().startsWith(QStringLiteral("Wrote")), qPrintable(d.statusLabel()->text()));
        QCOMPARE(QDir(path(QStringLiteral("exports"))).entryList(QDir::Files),
                 QStringList{QStringLiteral("plan.gguf")});
        auto gguf = GgufFile::open(out.toStdString());
        QVERIFY2(gguf.ok(), gguf.message().c_str());
    }

    // Cancelling an export, a Pareto sweep or a method comparison leaves the plan, its undo
    // history and the export's target as they were, and the next job of each kind runs. Each is
    // canceled straight after it starts, before the worker thread reaches its first check: a job
    // that still ran to the end is retried, and at least one of each must have been canceled.
    void cancelledPlanJobsChangeNothing()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb, true);
        QVERIFY(finish(wb.runAnalysis()));
        QVERIFY(settle(wb.plan()));
        const std::string recipe = recipeToJson(wb.plan()->recipe());
        const int undo = wb.plan()->undoStack()->count();
        auto unchanged = [&]() {
            return recipeToJson(wb.plan()->recipe()) == recipe && wb.plan()->undoStack()->count() == undo;
        };

        // An export over an older file: the old bytes stay and nothing is left beside them.
        const QString dir = path(QStringLiteral("cancel"));
        QDir().mkpath(dir);
        const QString out = dir + QStringLiteral("/plan.gguf");
        const QByteArray old("an older export");
        ExportDialog d(&wb);
        d.formatBox()->setCurrentIndex(d.formatBox()->findData(QStringLiteral("gguf")));
        d.typeBox()->setCurrentText(QStringLiteral("q8_0"));
        d.refreshPreview();
        QVERIFY(finish(d.previewJob()));
        d.pathEdit()->setText(out);
        bool exportCanceled = false;
        for (int attempt = 0; attempt < 5 && !exportCanceled; ++attempt) {
            QFile f(out);
            QVERIFY(f.open(QIODevice::WriteOnly) && f.write(old) == old.size());
            f.close();
            d.startExport();
            QVERIFY(d.cancelButton()->isEnabled());
            d.cancelButton()->click();
            QVERIFY(finish(d.exportJob()));
            exportCanceled = d.exportJob()->state() == Job::State::Canceled;
            QVERIFY2(exportCanceled || d.exportJob()->state() == Job::State::Succeeded,
                     qPrintable(d.exportJob()->error()));
            QCOMPARE(QDir(dir).entryList(QDir::Files | QDir::Hidden), QStringList{QStringLiteral("plan.gguf")});
            if (exportCanceled) {
                QVERIFY(f.open(QIODevice::ReadOnly));
                QCOMPARE(f.readAll(), old);
                QCOMPARE(d.statusLabel()->text(), QStringLiteral("Export canceled; nothing was written."));
            } else {
                QVERIFY(GgufFile::open(out.toStdString()).ok());
            }
        }
        QVERIFY(exportCanceled);
        QVERIFY(unchanged());
        d.startExport();
        QVERIFY(finish(d.exportJob()));
        QCOMPARE(d.exportJob()->state(), Job::State::Succeeded);
        QVERIFY(GgufFile::open(out.toStdString()).ok());

        // A Pareto sweep and a comparison: the plan and its history are untouched.
        int ranToEnd = 0; // attempts of the last cancelRepeatedly that finished before the cancel
        auto cancelRepeatedly = [&](const std::function<Expected<Job*>()>& start) {
            ranToEnd = 0;
            for (int attempt = 0; attempt < 5; ++attempt) {
                auto job = start();
                if (!job) return QString::fromStdString(job.message());
                (*job)->cancel();
                if (!finish(*job)) return QStringLiteral("did not end");
                if ((*job)->state() == Job::State::Canceled) return QString();
                if ((*job)->state() != Job::State::Succeeded) return (*job)->error();
                ++ranToEnd;
            }
            return QStringLiteral("ran to the end five times");
        };
        auto sweep = [&]() { return wb.pareto()->start(*wb.plan(), wb.snapshot()->analysis, {3.0}, {"knapsack"}); };
        const std::string layer = "model.layers.1.self_attn.o_proj";
        auto compare = [&]() { return wb.compare()->start(*wb.plan(), layer, {"rtn", "gptq"}); };
        const QString sweepCanceled = cancelRepeatedly(sweep);
        QVERIFY2(sweepCanceled.isEmpty(), qPrintable(sweepCanceled));
        QVERIFY(unchanged());
        const QString compareCanceled = cancelRepeatedly(compare);
        QVERIFY2(compareCanceled.isEmpty(), qPrintable(compareCanceled));
        QVERIFY(unchanged());
        for (const auto& start : {std::function<Expected<Job*>()>(sweep), std::function<Expected<Job*>()>(compare)}) {
            auto job = start();
            QVERIFY2(job.ok(), job.message().c_str());
            QVERIFY(finish(*job));
            QVERIFY2((*job)->state() == Job::State::Succeeded, qPrintable((*job)->error()));
        }
        QCOMPARE(w.compareView()->table()->rowCount(), 2);
        QCOMPARE(w.paretoView()->points().size(), 4 + 1);
        QVERIFY(unchanged());

        // A full evaluation: the plan shows no full result. Quantize into a run folder: no run
        // is kept and the folder does not exist (a run that finished first is kept whole).
        QVERIFY(!wb.plan()->snapshot()->full);
        const QString fullCanceled = cancelRepeatedly([&]() -> Expected<Job*> {
            if (Job* j = wb.plan()->evaluateFully()) return j;
            return makeError("not started");
        });
        QVERIFY2(fullCanceled.isEmpty(), qPrintable(fullCanceled));
        QCOMPARE(bool(wb.plan()->snapshot()->full), ranToEnd > 0);
        int attempt = 0;
        QString folder;
        const int kept = int(wb.plan()->runs().size());
        const QString quantizeCanceled = cancelRepeatedly([&]() -> Expected<Job*> {
            ++attempt;
            folder = path(QStringLiteral("runs/canceled%1").arg(attempt));
            if (Job* j = wb.plan()->quantize(QStringLiteral("canceled%1").arg(attempt), folder)) return j;
            return makeError("not started");
        });
        QVERIFY2(quantizeCanceled.isEmpty(), qPrintable(quantizeCanceled));
        QCOMPARE(int(wb.plan()->runs().size()), kept + ranToEnd);
        QVERIFY(!QFileInfo::exists(folder));
        QVERIFY(unchanged());
    }

    // Quantize keeps named runs (run folders) in the project; a kept run's plan can be restored.
    void quantizeKeepsRunsInTheProject()
    {
        const QString saved = path(QStringLiteral("runs.qlproj"));
        std::map<std::string, QuantSpec> firstSpecs;
        {
            Workbench wb;
            MainWindow w(&wb);
            open(wb);
            QDir().mkpath(path(QStringLiteral("runs")));
            Job* job = wb.plan()->quantize(QStringLiteral("first"), path(QStringLiteral("runs/first")));
            QVERIFY(finish(job));
            QCOMPARE(job->state(), Job::State::Succeeded);
            for (const PlanRow& r : wb.plan()->snapshot()->rows) firstSpecs[r.layer] = r.spec;
            QCOMPARE(wb.plan()->runs().size(), 1);
            for (const char* f : {"recipe.json", "resolved.json", "report.json", "quantized.safetensors"})
                QVERIFY2(QFileInfo::exists(path(QStringLiteral("runs/first/")) + QLatin1String(f)), f);
            QFile report(path(QStringLiteral("runs/first/report.json")));
            QVERIFY(report.open(QIODevice::ReadOnly));
            const auto j = nlohmann::json::parse(report.readAll().toStdString());
            QCOMPARE(wb.plan()->runs()[0].bitsPerWeight, j["bits_per_weight"].get<double>());
            QVERIFY(j["bits_per_weight"].get<double>() > 4.0 && j["bits_per_weight"].get<double>() < 5.0);
            auto model = Model::open(path(QStringLiteral("model")).toStdString());
            auto state = readRunState(path(QStringLiteral("runs/first/quantized.safetensors")).toStdString(), *model);
            QVERIFY2(state.ok(), state.message().c_str());
            QCOMPARE(state->model->layers().size(), model->linearLayers().size());

            QVERIFY(wb.plan()->edit({QStringLiteral("model.layers.0.mlp.up_proj")}, QStringLiteral("bits"),
                                    QStringLiteral("2")));
            QSignalSpy failed(wb.plan(), &PlanSession::failed);
            QVERIFY(!wb.plan()->quantize(QStringLiteral("first"), path(QStringLiteral("runs/again")))); // name taken
            QCOMPARE(failed.size(), 1);
            job = wb.plan()->quantize(QStringLiteral("second"), path(QStringLiteral("runs/second")));
            QVERIFY(finish(job));
            QCOMPARE(wb.plan()->runs().size(), 2);
            QVERIFY(wb.plan()->runs()[1].bitsPerWeight < wb.plan()->runs()[0].bitsPerWeight);
            // The two kept runs compared: only up_proj differs, highlighted, with each side's bits
            // as its run's report gives them.
            w.showRunDiff(0, 1);
            RunDiffView* diff = w.runDiffView();
            QCOMPARE(diff->diff().changedLayers, 1);
            QCOMPARE(diff->table()->rowCount(), 1);
            QCOMPARE(diff->table()->item(0, 0)->text(), QStringLiteral("model.layers.0.mlp.up_proj"));
            QVERIFY(diff->table()->item(0, 0)->font().bold());
            QCOMPARE(diff->table()->item(0, 7)->text(), QStringLiteral("format"));
            QCOMPARE(diff->table()->item(0, 2)->text(), QStringLiteral("rtn int2_asym g128"));
            for (int side = 0; side < 2; ++side) {
                QFile rep(
                    path(side ? QStringLiteral("runs/second/report.json") : QStringLiteral("runs/first/report.json")));
                QVERIFY(rep.open(QIODevice::ReadOnly));
                for (const auto& l : nlohmann::json::parse(rep.readAll().toStdString())["layers"])
                    if (l["layer"] == "model.layers.0.mlp.up_proj")
                        QCOMPARE(diff->table()->item(0, 3 + side)->text(),
                                 QString::number(l["bits_per_weight"].get<double>(), 'f', 3));
            }
            diff->setOnlyDifferences(false);
            QCOMPARE(diff->table()->rowCount(), int(wb.plan()->model()->linearLayers().size()));
            int bold = 0;
            for (int r = 0; r < diff->table()->rowCount(); ++r) bold += diff->table()->item(r, 0)->font().bold();
            QCOMPARE(bold, 1);
            QVERIFY(!wb.plan()->diffRuns(0, 5).ok());
            QVERIFY(wb.saveProject(saved).ok());
        }
        Workbench wb;
        open(wb);
        Job* job = wb.openProject(saved);
        QVERIFY(finish(job));
        QCOMPARE(wb.plan()->runs().size(), 2);
        QCOMPARE(wb.plan()->runs()[1].name, QStringLiteral("second"));
        QCOMPARE(bitsOf(wb.plan(), "model.layers.0.mlp.up_proj"), 2);
        QVERIFY(wb.plan()->restoreRun(0).ok());
        for (const PlanRow& r : wb.plan()->snapshot()->rows) QVERIFY2(r.spec == firstSpecs[r.layer], r.layer.c_str());
        wb.plan()->undoStack()->undo();
        QCOMPARE(bitsOf(wb.plan(), "model.layers.0.mlp.up_proj"), 2);
    }

    // The sensitivity options travel with the project, the analysis measures every combination,
    // and a store is reused on opening only when it holds the options the project asks for.
    void sensitivityOptionsInTheProject()
    {
        const QString saved = path(QStringLiteral("options.qlproj"));
        {
            Workbench wb;
            open(wb);
            wb.setSensitivityOptions({"rtn", "gptq"}, {3, 4}, {128, 0});
            QVERIFY(finish(wb.runAnalysis()));
            const auto& sens = wb.snapshot()->analysis->sensitivity;
            QVERIFY(!sens.empty());
            QCOMPARE(sens[0].bits.size(), size_t(8));
            std::set<std::string> labels;
            for (size_t k = 0; k < sens[0].bits.size(); ++k) labels.insert(sensitivityOptionLabel(sens[0].option(k)));
            QVERIFY2(labels.count("gptq w3 row") && labels.count("rtn w4 g128"),
                     qPrintable(QString::number(labels.size())));
            QCOMPARE(labels.size(), size_t(8));
            QVERIFY(wb.saveProject(saved).ok());
        }
        auto loaded = Project::load(saved);
        QVERIFY2(loaded.ok(), loaded.message().c_str());
        QCOMPARE(loaded->sensMethods, (std::vector<std::string>{"rtn", "gptq"}));
        QCOMPARE(loaded->sensBits, (std::vector<int>{3, 4}));
        QCOMPARE(loaded->sensGroups, (std::vector<int>{128, 0}));
        {
            Workbench wb;
            QVERIFY(finish(wb.openProject(saved)));
            QVERIFY(wb.snapshot()->analysis); // the store holds every option asked for
        }
        // The same project asking for 2-bit options too, then for a width that does not exist.
        auto withBits = [&](int first) {
            QFile f(saved);
            if (!f.open(QIODevice::ReadOnly)) return QString();
            QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
            QJsonObject so = o.value(QStringLiteral("sensitivity_options")).toObject();
            so[QStringLiteral("bits")] = QJsonArray{first, 3, 4};
            o[QStringLiteral("sensitivity_options")] = so;
            const QString other = path(QStringLiteral("options%1.qlproj").arg(first));
            QFile g(other);
            if (!g.open(QIODevice::WriteOnly)) return QString();
            g.write(QJsonDocument(o).toJson());
            return other;
        };
        {
            Workbench wb;
            QVERIFY(finish(wb.openProject(withBits(2))));
            QVERIFY(!wb.snapshot()->analysis); // 2-bit options were never measured
        }
        const QString other = withBits(9);
        auto bad = Project::load(other);
        QVERIFY(!bad.ok());
        QVERIFY2(bad.message().find("sensitivity_options") != std::string::npos, bad.message().c_str());
    }

    void projectKeepsThePlan()
    {
        const QString saved = path(QStringLiteral("saved.qlproj"));
        Recipe edited;
        {
            Workbench wb;
            open(wb);
            QVERIFY(wb.plan()->edit({QStringLiteral("model.layers.0.mlp.down_proj")}, QStringLiteral("bits"),
                                    QStringLiteral("6")));
            QVERIFY(wb.plan()->setRecipeJson(QString::fromStdString(recipeToJson(
                applyPlanEdit(wb.plan()->recipe(), *parsePlanEdit("model.layers.*.self_attn.*:group=64"))))));
            auto ok = wb.saveProject(saved);
            QVERIFY2(ok.ok(), ok.message().c_str());
            edited = wb.plan()->recipe();
        }
        Workbench wb;
        wb.plan()->setLive(false);
        Job* job = wb.openProject(saved);
        QVERIFY(finish(job));
        QCOMPARE(job->state(), Job::State::Succeeded);
        QVERIFY(wb.plan()->recipe() == edited);
        QCOMPARE(bitsOf(wb.plan(), "model.layers.0.mlp.down_proj"), 6);
        QCOMPARE(specOf(wb.plan(), "model.layers.3.self_attn.k_proj").weight.groupSize, 64);
        QCOMPARE(wb.plan()->undoStack()->count(), 0); // a loaded plan starts a new history

        // The rule editor's text is the recipe; a broken one is refused with its JSON path.
        MainWindow w(&wb);
        auto* editor = qobject_cast<PlanEditor*>(w.page(QStringLiteral("plan")));
        QCOMPARE(editor->recipeEditor()->toPlainText().toStdString(), recipeToJson(edited));
        auto bad = wb.plan()->setRecipeJson(
            QStringLiteral(R"({"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": "four"}]})"));
        QVERIFY(!bad);
        QVERIFY2(QString::fromStdString(bad.message()).contains(QStringLiteral("rules[0].bits")),
                 bad.message().c_str());
        QVERIFY(wb.plan()->recipe() == edited);
    }

    // A block method from the plan: AutoRound on every layer quantizes through the window's job,
    // and the run's report carries each block's output MSE before and after training.
    void blockMethodFromThePlan()
    {
        Workbench wb;
        MainWindow w(&wb);
        open(wb);
        auto set = wb.plan()->setRecipeJson(QStringLiteral(
            R"({"version": 1, "rules": [{"match": "*", "method": "autoround", "bits": 3, "sym": false, "group": 32,
                "params": {"iters": 8, "batch": 2}}]})"));
        QVERIFY2(set, set.message().c_str());
        QDir().mkpath(path(QStringLiteral("runs")));
        Job* job = wb.plan()->quantize(QStringLiteral("autoround"), path(QStringLiteral("runs/autoround")));
        QVERIFY(finish(job));
        QVERIFY2(job->state() == Job::State::Succeeded, qPrintable(job->error()));
        QFile report(path(QStringLiteral("runs/autoround/report.json")));
        QVERIFY(report.open(QIODevice::ReadOnly));
        const auto layers = nlohmann::json::parse(report.readAll().toStdString())["layers"];
        QCOMPARE(layers.size(), wb.plan()->model()->linearLayers().size());
        for (const auto& l : layers) {
            QCOMPARE(l["method"].get<std::string>(), std::string("autoround"));
            QVERIFY(l["metrics"]["block_loss_after"].get<double>() <= l["metrics"]["block_loss_before"].get<double>());
        }
    }
};

QTEST_MAIN(TestGuiPlan)
#include "tst_guiplan.moc"
