#include "exportdialog.h"

#include "workbench.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace ql {

ExportDialog::ExportDialog(Workbench* wb, QWidget* parent) : QDialog(parent), m_wb(wb)
{
    setWindowTitle(tr("Export the plan"));
    auto* layout = new QVBoxLayout(this);
    auto* form = new QFormLayout;
    m_format = new QComboBox(this);
    m_format->addItem(tr("GGUF for llama.cpp"), QStringLiteral("gguf"));
    m_format->addItem(tr("GPTQ safetensors (vLLM, transformers, GPTQModel)"), QStringLiteral("gptq"));
    m_format->addItem(tr("Fake-quant Hugging Face folder"), QStringLiteral("fakequant"));
    m_format->addItem(tr("Recipe with input hashes"), QStringLiteral("recipe"));
    m_format->addItem(tr("llama-quantize --tensor-type file"), QStringLiteral("tensor-types"));
    m_format->addItem(tr("Importance matrix (llama.cpp imatrix)"), QStringLiteral("imatrix"));
    form->addRow(tr("Format"), m_format);
    m_type = new QComboBox(this);
    for (const char* t :
         {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"})
        m_type->addItem(QString::fromLatin1(t));
    m_type->setCurrentText(QStringLiteral("q4_0"));
    m_type->setToolTip(tr("The type of every 2-D weight whose run codes no ggml type holds exactly"));
    form->addRow(tr("GGUF type"), m_type);
    auto* pathRow = new QHBoxLayout;
    m_path = new QLineEdit(this);
    auto* browse = new QPushButton(tr("Browse…"), this);
    pathRow->addWidget(m_path, 1);
    pathRow->addWidget(browse);
    form->addRow(tr("Write to"), pathRow);
    layout->addLayout(form);

    m_warning = new QLabel(this);
    m_warning->setObjectName(QStringLiteral("exportWarning"));
    m_warning->setWordWrap(true);
    layout->addWidget(m_warning);
    m_table = new QTableWidget(0, 4, this);
    m_table->setHorizontalHeaderLabels(
        {tr("Tensor"), tr("Asked"), tr("Written"), tr("What cannot be represented, and the fallback")});
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->hide();
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    layout->addWidget(m_table, 1);
    m_status = new QLabel(this);
    m_status->setWordWrap(true);
    layout->addWidget(m_status);
    auto* buttons = new QDialogButtonBox(this);
    m_export = buttons->addButton(tr("Export"), QDialogButtonBox::AcceptRole);
    m_cancel = buttons->addButton(tr("Cancel export"), QDialogButtonBox::ActionRole);
    m_cancel->setEnabled(false);
    buttons->addButton(QDialogButtonBox::Close);
    layout->addWidget(buttons);
    resize(900, 560);

    connect(m_format, &QComboBox::currentIndexChanged, this, &ExportDialog::refreshPreview);
    connect(m_type, &QComboBox::currentIndexChanged, this, &ExportDialog::refreshPreview);
    connect(browse, &QPushButton::clicked, this, [this]() {
        const bool folder = format() == QLatin1String("gptq") || format() == QLatin1String("fakequant");
        const QString p = folder ? QFileDialog::getExistingDirectory(this, tr("Folder to write into"))
                                 : QFileDialog::getSaveFileName(this, tr("Export to"), m_path->text());
        if (!p.isEmpty()) m_path->setText(folder ? p + QStringLiteral("/export") : p);
    });
    connect(m_export, &QPushButton::clicked, this, &ExportDialog::startExport);
    connect(m_cancel, &QPushButton::clicked, this, [this]() {
        if (m_exportJob) m_exportJob->cancel();
    });
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    refreshPreview();
}

QString ExportDialog::format() const
{
    return m_format->currentData().toString();
}

ExportRequest ExportDialog::request() const
{
    ExportRequest req;
    req.format = format();
    req.ggufType = *parseGgmlType(m_type->currentText().toStdString()); // the combo holds valid names only
    return req;
}

void ExportDialog::refreshPreview()
{
    const QString f = format();
    m_type->setEnabled(f == QLatin1String("gguf") || f == QLatin1String("tensor-types"));
    if (m_previewJob) m_previewJob->cancel();
    m_table->setRowCount(0);
    m_warning->setText(tr("Checking what %1 can represent…").arg(m_format->currentText()));
    ExportRequest req = request();
    req.preview = true;
    const QString typeName = m_type->currentText();
    QPointer<ExportDialog> self(this);
    Job* job = m_wb->exportPlan(req, [self, typeName, f](ExportOutcome& out) {
        if (!self) return;
        QTableWidget* t = self->m_table;
        t->setRowCount(int(out.lines.size()));
        for (int i = 0; i < int(out.lines.size()); ++i) {
            const ExportLine& l = out.lines[size_t(i)];
            const QStringList cells{l.tensor, l.asked, l.written, l.note};
            for (int c = 0; c < 4; ++c) {
                auto* item = new QTableWidgetItem(cells[c]);
                if (l.fallback) item->setForeground(QColor(176, 0, 32));
                t->setItem(i, c, item);
            }
        }
        t->resizeColumnsToContents();
        const bool typed = f == QLatin1String("gguf") || f == QLatin1String("tensor-types");
        self->m_warning->setText(out.fallbacks == 0
                                     ? self->tr("Every tensor can be written as asked. %1").arg(out.summary)
                                     : self->tr("<b>%1 tensors cannot be written as asked%2</b>; each row in red "
                                                "names why and the fallback that will apply. %3")
                                           .arg(out.fallbacks)
                                           .arg(typed ? self->tr(" (%1)").arg(typeName) : QString())
                                           .arg(out.summary));
    });
    m_previewJob = job;
    connect(job, &Job::finished, this, [this, job]() {
        if (job->state() == Job::State::Failed)
            m_warning->setText(tr("<b>Cannot export:</b> %1").arg(job->error().toHtmlEscaped()));
    });
}

void ExportDialog::startExport()
{
    if (m_path->text().trimmed().isEmpty()) {
        m_status->setText(tr("Choose where to write first."));
        return;
    }
    ExportRequest req = request();
    req.path = QFileInfo(m_path->text().trimmed()).absoluteFilePath();
    QPointer<ExportDialog> self(this);
    const QString path = req.path;
    Job* job = m_wb->exportPlan(req, [self, path](ExportOutcome& out) {
        if (!self) return;
        self->m_status->setText(self->tr("Wrote %1: %2 (%3 MB in %4 s)")
                                    .arg(path, out.summary)
                                    .arg(double(out.bytes) / 1e6, 0, 'f', 1)
                                    .arg(out.seconds, 0, 'f', 2));
    });
    m_exportJob = job;
    m_export->setEnabled(false);
    m_cancel->setEnabled(true);
    m_status->setText(tr("Exporting…"));
    connect(job, &Job::finished, this, [this, job]() {
        m_export->setEnabled(true);
        m_cancel->setEnabled(false);
        if (job->state() == Job::State::Failed) m_status->setText(tr("Export failed: %1").arg(job->error()));
        if (job->state() == Job::State::Canceled) m_status->setText(tr("Export canceled; nothing was written."));
    });
}

} // namespace ql
