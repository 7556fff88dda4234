// The views' item models over a hand-built snapshot: structure (QAbstractItemModelTester),
// content against the known numbers, numeric sorting, CSV export, and empty snapshots.
#include "entropymodel.h"
#include "histogrammodel.h"
#include "layertablemodel.h"
#include "modeltreemodel.h"
#include "sensitivitymodel.h"
#include "tableexport.h"
#include "viewsnapshotfixture.h"

#include <QAbstractItemModelTester>
#include <QSortFilterProxyModel>
#include <QtTest>

#include <cmath>

using namespace viewfixture;
using ql::LinearKind;

namespace {

// Splits one CSV line written by TableExport (quoted fields may hold commas and doubled quotes).
QStringList splitCsvLine(const QString& line)
{
    QStringList out;
    QString field;
    bool quoted = false;
    for (int i = 0; i < line.size(); ++i) {
        const QChar c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
                field += '"', ++i;
            else if (c == '"')
                quoted = false;
            else
                field += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out << field;
            field.clear();
        } else {
            field += c;
        }
    }
    out << field;
    return out;
}

// Every model the views use, each under a tester that reports through QtTest.
template <typename M>
void checkWithTester(M& model, const ql::SnapshotPtr& a, const ql::SnapshotPtr& b)
{
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSnapshot(a);
    model.setSnapshot(b);
    model.setSnapshot(nullptr);
    model.setSnapshot(a);
}

} // namespace

class TestViewModels : public QObject {
    Q_OBJECT

private slots:
    void testersPass()
    {
        const auto full = makeSnapshot();
        const auto noKl = makeSnapshot(true, false);
        const auto noAnalysis = makeSnapshot(false);
        {
            ql::ModelTreeModel m;
            checkWithTester(m, full, noAnalysis);
        }
        {
            ql::LayerTableModel m;
            checkWithTester(m, full, noKl);
            checkWithTester(m, noAnalysis, full);
        }
        {
            ql::SensitivityModel m;
            checkWithTester(m, full, noKl);
            checkWithTester(m, noAnalysis, full);
        }
        {
            ql::EntropyModel m;
            checkWithTester(m, full, noAnalysis);
        }
        {
            ql::HistogramModel m;
            QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
            m.setHistogram({1, 2, 3}, {0.f, 1.f, 2.f, 3.f}, "x");
            m.clear();
            m.setHistogram({4, 5}, {0.f, 1.f, 2.f}, "y");
        }
    }

    void modelTree()
    {
        ql::ModelTreeModel m;
        m.setSnapshot(makeSnapshot());
        QCOMPARE(m.rowCount(), kBlocks);
        QCOMPARE(m.columnCount(), int(ql::ModelTreeModel::ColumnCount));
        const QModelIndex block1 = m.index(1, 0);
        QCOMPARE(block1.data().toString(), QStringLiteral("Block 1"));
        QCOMPARE(m.rowCount(block1), ql::kLinearCount);
        const QModelIndex gate = m.index(int(LinearKind::Gate), 0, block1);
        QCOMPARE(gate.data().toString(), QStringLiteral("gate_proj"));
        QCOMPARE(gate.siblingAtColumn(ql::ModelTreeModel::ShapeColumn).data().toString(), QStringLiteral("16 × 8"));
        QCOMPARE(gate.siblingAtColumn(ql::ModelTreeModel::ParamsColumn).data(Qt::UserRole).toLongLong(), 128LL);
        QCOMPARE(gate.siblingAtColumn(ql::ModelTreeModel::DTypeColumn).data().toString(), QStringLiteral("BF16"));
        QCOMPARE(gate.data(ql::ModelTreeModel::LayerNameRole).toString(),
                 QString::fromStdString(layerName(1, LinearKind::Gate)));
        QCOMPARE(block1.data(ql::ModelTreeModel::LayerNameRole).toString(), QString());
        // q_proj has a bias: 8 × 8 + 8.
        QCOMPARE(m.index(0, ql::ModelTreeModel::ParamsColumn, m.index(2, 0)).data(Qt::UserRole).toLongLong(), 72LL);
        // Block parameters are the sum of its layers: 64·3 + 8 + 64 + 128·3.
        QCOMPARE(m.index(0, ql::ModelTreeModel::ParamsColumn).data(Qt::UserRole).toLongLong(), 648LL);

        const QString down2 = QString::fromStdString(layerName(2, LinearKind::Down));
        const QModelIndex found = m.indexOfLayer(down2);
        QVERIFY(found.isValid());
        QCOMPARE(found.parent(), m.index(2, 0));
        QCOMPARE(found.row(), int(LinearKind::Down));
        QCOMPARE(m.layerName(found), down2);
        QVERIFY(!m.indexOfLayer("model.layers.9.mlp.down_proj").isValid());
        QCOMPARE(m.indexOfBlock(2), m.index(2, 0));

        m.setSnapshot(nullptr);
        QCOMPARE(m.rowCount(), 0);
        QVERIFY(!m.indexOfLayer(down2).isValid());
    }

    void layerTableContent()
    {
        ql::LayerTableModel m;
        m.setSnapshot(makeSnapshot());
        QCOMPARE(m.rowCount(), kBlocks * ql::kLinearCount);
        // 3 widths × (proxy, rel MSE, SQNR, KL).
        QCOMPARE(m.columnCount(), int(ql::LayerTableModel::FixedColumnCount) + 12);

        const int row = layerIndex(1, LinearKind::Down); // site layers.1.down_in = site index 7
        QCOMPARE(m.rowOfLayer(QString::fromStdString(layerName(1, LinearKind::Down))), row);
        const auto raw = [&](int col) { return m.index(row, col).data(Qt::UserRole); };
        const auto text = [&](int col) { return m.index(row, col).data().toString(); };
        QCOMPARE(text(ql::LayerTableModel::KindColumn), QStringLiteral("down_proj"));
        QCOMPARE(raw(ql::LayerTableModel::BlockColumn).toInt(), 1);
        QCOMPARE(text(ql::LayerTableModel::ShapeColumn), QStringLiteral("8 × 16"));
        QCOMPARE(raw(ql::LayerTableModel::SiteAbsmaxColumn).toDouble(), 23.0);
        QCOMPARE(raw(ql::LayerTableModel::SiteKurtosisColumn).toDouble(), 0.25 * 7);
        QCOMPARE(raw(ql::LayerTableModel::EnergyEntropyColumn).toDouble(), 2.0 + 0.1 + 0.03);
        QCOMPARE(text(ql::LayerTableModel::EnergyEntropyColumn), QStringLiteral("2.130"));
        QCOMPARE(raw(ql::LayerTableModel::ValueEntropyColumn).toDouble(), 5.0 + 0.2 + 0.06);
        QCOMPARE(raw(ql::LayerTableModel::OutlierChannelsColumn).toInt(), 3);
        QCOMPARE(raw(ql::LayerTableModel::WeightKurtosisColumn).toDouble(), 0.5 * row);
        QCOMPARE(raw(ql::LayerTableModel::WeightBeyond3SigmaColumn).toDouble(), 0.001 * (row + 1));
        QCOMPARE(text(ql::LayerTableModel::WeightBeyond3SigmaColumn), QStringLiteral("1.400 %"));
        // Largest row absmax: 0.01 · (row + 1) · 8 rows.
        QCOMPARE(raw(ql::LayerTableModel::WeightMaxRowAbsmaxColumn).toDouble(), double(0.01f * float(row + 1) * 8.0f));

        const int proxy4 = m.sensitivityColumn(ql::SensitivityMeasure::Proxy, 4);
        const int kl2 = m.sensitivityColumn(ql::SensitivityMeasure::Kl, 2);
        const int sqnr3 = m.sensitivityColumn(ql::SensitivityMeasure::SqnrDb, 3);
        QVERIFY(proxy4 >= ql::LayerTableModel::FixedColumnCount && kl2 > proxy4 && sqnr3 > proxy4);
        QCOMPARE(raw(proxy4).toDouble(), proxyValue(row, 4));
        QCOMPARE(raw(kl2).toDouble(), klValue(row, 2));
        QCOMPARE(raw(sqnr3).toDouble(), sqnrValue(row, 3));
        QCOMPARE(m.headerData(proxy4, Qt::Horizontal).toString(), QStringLiteral("proxy @4"));
        QCOMPARE(m.sensitivityColumn(ql::SensitivityMeasure::Proxy, 8), -1);

        // The last layer has no weight statistics: a dash, no raw value, an empty CSV field.
        const int last = m.rowCount() - 1;
        const QModelIndex wk = m.index(last, ql::LayerTableModel::WeightKurtosisColumn);
        QCOMPARE(wk.data().toString(), QStringLiteral("–"));
        QVERIFY(!wk.data(Qt::UserRole).isValid());
        QCOMPARE(wk.data(ql::TableExport::CsvRole).toString(), QString());
        QVERIFY(wk.data(ql::TableExport::CsvRole).isValid());
    }

    void layerTableWithoutAnalysisOrKl()
    {
        ql::LayerTableModel m;
        m.setSnapshot(makeSnapshot(false));
        QCOMPARE(m.rowCount(), kBlocks * ql::kLinearCount);
        QCOMPARE(m.columnCount(), int(ql::LayerTableModel::FixedColumnCount));
        QVERIFY(!m.index(0, ql::LayerTableModel::SiteAbsmaxColumn).data(Qt::UserRole).isValid());
        QCOMPARE(m.index(0, ql::LayerTableModel::ParamsColumn).data(Qt::UserRole).toLongLong(), 72LL);

        m.setSnapshot(makeSnapshot(true, false));
        QCOMPARE(m.columnCount(), int(ql::LayerTableModel::FixedColumnCount) + 9);
        QCOMPARE(m.sensitivityColumn(ql::SensitivityMeasure::Kl, 2), -1);

        m.setSnapshot(nullptr);
        QCOMPARE(m.rowCount(), 0);
        QCOMPARE(m.layerName(0), QString());
    }

    void sortsByValueNotText()
    {
        ql::LayerTableModel m;
        m.setSnapshot(makeSnapshot());
        QSortFilterProxyModel proxy;
        proxy.setSourceModel(&m);
        proxy.setSortRole(Qt::UserRole);
        const int col = m.sensitivityColumn(ql::SensitivityMeasure::Proxy, 4);
        proxy.sort(col, Qt::AscendingOrder);
        QVector<double> values;
        QStringList texts;
        for (int r = 0; r < proxy.rowCount(); ++r) {
            values << proxy.index(r, col).data(Qt::UserRole).toDouble();
            texts << proxy.index(r, col).data().toString();
        }
        QVERIFY(std::is_sorted(values.begin(), values.end()));
        QCOMPARE(values.front(), 2.0);   // (0 % 5 + 1) · 10⁰ · 8 / 4
        QCOMPARE(values.back(), 1000.0); // (4 + 1) · 10² · 8 / 4
        // The fixture's values are chosen so that text order differs: the test can fail.
        QStringList textSorted = texts;
        textSorted.sort();
        QVERIFY(textSorted != texts);

        // Missing values (the last layer's weight kurtosis) sort after all numbers.
        proxy.sort(ql::LayerTableModel::WeightKurtosisColumn, Qt::AscendingOrder);
        QVERIFY(
            !proxy.index(proxy.rowCount() - 1, ql::LayerTableModel::WeightKurtosisColumn).data(Qt::UserRole).isValid());
        QCOMPARE(proxy.index(0, ql::LayerTableModel::WeightKurtosisColumn).data(Qt::UserRole).toDouble(), 0.0);

        // Parameters: 72 < 128 numerically although "128" < "72" as text.
        proxy.sort(ql::LayerTableModel::ParamsColumn, Qt::DescendingOrder);
        QCOMPARE(proxy.index(0, ql::LayerTableModel::ParamsColumn).data(Qt::UserRole).toLongLong(), 128LL);
    }

    void sensitivityModel()
    {
        ql::SensitivityModel m;
        m.setSnapshot(makeSnapshot());
        QCOMPARE(m.rowCount(), kBlocks * ql::kLinearCount);
        QCOMPARE(m.widths(), (QList<int>{2, 3, 4}));
        QCOMPARE(m.measures(),
                 (QList<ql::SensitivityMeasure>{ql::SensitivityMeasure::Proxy, ql::SensitivityMeasure::RelMse,
                                                ql::SensitivityMeasure::SqnrDb, ql::SensitivityMeasure::Kl}));
        QVERIFY(m.hasKl());
        QCOMPARE(m.columnCount(), int(ql::SensitivityModel::FixedColumnCount) + 12);
        const int row = layerIndex(2, LinearKind::V);
        QCOMPARE(m.rowOfLayer(QString::fromStdString(layerName(2, LinearKind::V))), row);
        QCOMPARE(m.index(row, ql::SensitivityModel::BlockColumn).data(Qt::UserRole).toInt(), 2);
        QCOMPARE(m.index(row, ql::SensitivityModel::KindColumn).data().toString(), QStringLiteral("v_proj"));
        const int c = m.columnOf(ql::SensitivityMeasure::RelMse, 3);
        QCOMPARE(m.index(row, c).data(Qt::UserRole).toDouble(), relMseValue(row, 3));
        QCOMPARE(*m.value(row, ql::SensitivityMeasure::SqnrDb, 2), sqnrValue(row, 2));
        QCOMPARE(m.index(row, m.columnOf(ql::SensitivityMeasure::SqnrDb, 2)).data().toString(),
                 QString::number(sqnrValue(row, 2), 'f', 1));
        QVERIFY(!m.value(row, ql::SensitivityMeasure::Proxy, 8));

        // An analysis with the Fisher measures gets their columns, after the KL's.
        auto fisherSnap = std::make_shared<ql::AnalysisSnapshot>(*makeSnapshot());
        auto withFisher = std::make_shared<ql::AnalysisResult>(*fisherSnap->analysis);
        for (size_t i = 0; i < withFisher->sensitivity.size(); ++i) {
            withFisher->sensitivity[i].fisher = {3e-2 * double(i + 1), 2e-2, 1e-2};
            withFisher->sensitivity[i].fisherOut = {5e-3, 4e-3, 1e-3 * double(i + 1)};
        }
        fisherSnap->analysis = withFisher;
        m.setSnapshot(fisherSnap);
        QCOMPARE(m.measures().mid(4),
                 (QList<ql::SensitivityMeasure>{ql::SensitivityMeasure::Fisher, ql::SensitivityMeasure::FisherOut}));
        QCOMPARE(m.columnCount(), int(ql::SensitivityModel::FixedColumnCount) + 18);
        QCOMPARE(*m.value(row, ql::SensitivityMeasure::Fisher, 2), 3e-2 * double(row + 1));
        QCOMPARE(m.index(row, m.columnOf(ql::SensitivityMeasure::FisherOut, 4)).data(Qt::UserRole).toDouble(),
                 1e-3 * double(row + 1));
        QCOMPARE(m.headerData(m.columnOf(ql::SensitivityMeasure::Fisher, 3), Qt::Horizontal).toString(),
                 QStringLiteral("Fisher @3"));

        m.setSnapshot(makeSnapshot(true, false));
        QVERIFY(!m.hasKl());
        QCOMPARE(m.columnOf(ql::SensitivityMeasure::Kl, 4), -1);
        QVERIFY(!m.value(row, ql::SensitivityMeasure::Kl, 4));

        m.setSnapshot(makeSnapshot(false));
        QCOMPARE(m.rowCount(), 0);
        QVERIFY(m.widths().isEmpty());
    }

    void sensitivityLookupPartial()
    {
        // A measure computed at fewer widths than listed (a shorter vector) is absent, not garbage.
        ql::LayerSensitivity s;
        s.bits = {2, 4};
        s.proxy = {1.0, 2.0};
        s.kl = {0.5};
        QCOMPARE(*ql::SensitivityModel::lookup(s, ql::SensitivityMeasure::Kl, 2), 0.5);
        QVERIFY(!ql::SensitivityModel::lookup(s, ql::SensitivityMeasure::Kl, 4));
        QVERIFY(!ql::SensitivityModel::lookup(s, ql::SensitivityMeasure::RelMse, 2));
        const auto cols = ql::SensitivityModel::columnsFor({s});
        QCOMPARE(cols.size(), 3);
        QCOMPARE(cols.last(), (ql::SensitivityColumn{ql::SensitivityMeasure::Kl, 2}));
    }

    void entropyModel()
    {
        ql::EntropyModel m;
        m.setSnapshot(makeSnapshot());
        QCOMPARE(m.rowCount(), kBlocks * 4);
        QCOMPARE(m.kinds(), (QStringList{"attn_in", "o_in", "mlp_in", "down_in"}));
        const int row = m.rowOfSite("layers.2.mlp_in");
        QCOMPARE(row, 10);
        const auto raw = [&](int col) { return m.index(row, col).data(Qt::UserRole); };
        QCOMPARE(raw(ql::EntropyModel::BlockColumn).toInt(), 2);
        QCOMPARE(raw(ql::EntropyModel::KindColumn).toString(), QStringLiteral("mlp_in"));
        QCOMPARE(raw(ql::EntropyModel::ChannelsColumn).toLongLong(), 8LL);
        QCOMPARE(raw(ql::EntropyModel::EnergyEntropyColumn).toDouble(), 2.0 + 0.2 + 0.02);
        QCOMPARE(raw(ql::EntropyModel::ValueEntropyColumn).toDouble(), 5.0 + 0.4 + 0.04);
        // Normalised: stored energy entropy / log2(8 channels).
        QCOMPARE(raw(ql::EntropyModel::NormalisedEnergyColumn).toDouble(), (2.0 + 0.2 + 0.02) / 3.0);
        QCOMPARE(m.index(row, ql::EntropyModel::EnergyEntropyColumn).data().toString(), QStringLiteral("2.220"));
        QCOMPARE(m.index(m.rowOfSite("layers.0.down_in"), ql::EntropyModel::NormalisedEnergyColumn)
                     .data(Qt::UserRole)
                     .toDouble(),
                 2.03 / 4.0);
        QCOMPARE(m.siteStats(row)->name, std::string("layers.2.mlp_in"));

        m.setSnapshot(makeSnapshot(false));
        QCOMPARE(m.rowCount(), 0);
        QCOMPARE(m.siteStats(0), nullptr);
    }

    void histogramModel()
    {
        ql::HistogramModel m;
        m.setHistogram({3, 0, 7}, {-1.f, 0.f, 0.5f, 2.f}, "w");
        QCOMPARE(m.rowCount(), 3);
        QCOMPARE(m.index(2, ql::HistogramModel::FromColumn).data(Qt::UserRole).toDouble(), 0.5);
        QCOMPARE(m.index(2, ql::HistogramModel::ToColumn).data(Qt::UserRole).toDouble(), 2.0);
        QCOMPARE(m.index(2, ql::HistogramModel::CountColumn).data(Qt::UserRole).toDouble(), 7.0);
        QCOMPARE(m.maxCount(), 7.0);
        QCOMPARE(m.minPositiveCount(), 3.0);
        QCOMPARE(m.source(), QStringLiteral("w"));
        // Edges that do not match the counts show nothing rather than a wrong picture.
        m.setHistogram({3, 0, 7}, {-1.f, 0.f}, "bad");
        QCOMPARE(m.rowCount(), 0);
    }

    void csvEqualsModel()
    {
        ql::LayerTableModel m;
        m.setSnapshot(makeSnapshot());
        QSortFilterProxyModel proxy;
        proxy.setSourceModel(&m);
        proxy.setSortRole(Qt::UserRole);
        proxy.sort(ql::LayerTableModel::SiteAbsmaxColumn, Qt::DescendingOrder);

        QTemporaryDir dir;
        const QString path = dir.filePath("overview.csv");
        ql::TableExport exp("Layer overview", &proxy, nullptr);
        QString error;
        QVERIFY2(exp.exportCsv(path, &error), qPrintable(error));
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
        const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), proxy.rowCount() + 1);
        const QStringList header = splitCsvLine(lines[0]);
        QCOMPARE(header.size(), proxy.columnCount());
        for (int c = 0; c < proxy.columnCount(); ++c)
            QCOMPARE(header[c], proxy.headerData(c, Qt::Horizontal).toString());
        for (int r = 0; r < proxy.rowCount(); ++r) {
            const QStringList fields = splitCsvLine(lines[r + 1]);
            QCOMPARE(fields.size(), proxy.columnCount());
            for (int c = 0; c < proxy.columnCount(); ++c) {
                const QModelIndex i = proxy.index(r, c);
                const QVariant raw = i.data(Qt::UserRole);
                if (c == ql::LayerTableModel::ShapeColumn)
                    QCOMPARE(fields[c], i.data().toString());
                else if (!raw.isValid())
                    QCOMPARE(fields[c], QString());
                else if (raw.typeId() == QMetaType::QString)
                    QCOMPARE(fields[c], raw.toString());
                else {
                    bool ok = false;
                    QCOMPARE(fields[c].toDouble(&ok), raw.toDouble()); // exact: shortest round-trip text
                    QVERIFY(ok);
                }
            }
        }
        // Rows come in the proxy's (shown) order.
        QCOMPARE(splitCsvLine(lines[1])[0], proxy.index(0, 0).data().toString());
        QCOMPARE(splitCsvLine(lines[1])[0], QString::fromStdString(layerName(2, LinearKind::Down)));

        QCOMPARE(ql::TableExport::csvField("a,b"), QStringLiteral("\"a,b\""));
        QCOMPARE(ql::TableExport::csvField("say \"hi\""), QStringLiteral("\"say \"\"hi\"\"\""));
        QCOMPARE(ql::TableExport::csvField("plain"), QStringLiteral("plain"));
        QVERIFY(!exp.exportCsv(dir.filePath("missing/dir/x.csv"), &error));
        QVERIFY(error.contains("x.csv"));
    }
};

QTEST_MAIN(TestViewModels)
#include "tst_viewmodels.moc"
