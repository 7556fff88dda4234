#include "calibrationdialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>

namespace ql {

CalibrationDialog::CalibrationDialog(const Project& p, QWidget* parent)
    : QDialog(parent), m_file(new QLineEdit(p.calibFile, this)), m_samples(new QSpinBox(this)),
      m_seqlen(new QSpinBox(this)), m_seed(new QSpinBox(this)), m_kl(new QSpinBox(this)),
      m_sampling(new QComboBox(this)), m_sensitivity(new QComboBox(this))
{
    setWindowTitle(tr("Calibration"));
    auto* form = new QFormLayout(this);
    auto* fileRow = new QHBoxLayout;
    auto* browse = new QPushButton(tr("Browse…"), this);
    fileRow->addWidget(m_file);
    fileRow->addWidget(browse);
    connect(browse, &QPushButton::clicked, this, [this]() {
        const QString f = QFileDialog::getOpenFileName(this, tr("Calibration text"), m_file->text(),
                                                       tr("Text (*.txt *.raw *.jsonl);;All files (*)"));
        if (!f.isEmpty()) m_file->setText(f);
    });
    form->addRow(tr("Text file (.txt, or .jsonl with a \"text\" field)"), fileRow);
    m_samples->setRange(1, 4096);
    m_samples->setValue(p.calib.samples);
    form->addRow(tr("Windows"), m_samples);
    m_seqlen->setRange(2, 32768);
    m_seqlen->setValue(p.calib.seqlen);
    form->addRow(tr("Tokens per window"), m_seqlen);
    m_sampling->addItems({QStringLiteral("random"), QStringLiteral("contiguous")});
    m_sampling->setCurrentIndex(p.calib.sampling == Sampling::Random ? 0 : 1);
    form->addRow(tr("Sampling"), m_sampling);
    m_seed->setRange(0, INT_MAX);
    m_seed->setValue(int(p.calib.seed));
    form->addRow(tr("Seed"), m_seed);
    m_sensitivity->addItems({QStringLiteral("none"), QStringLiteral("proxy"), QStringLiteral("full")});
    m_sensitivity->setCurrentText(p.sensitivity);
    m_sensitivity->setToolTip(tr("proxy: Hessian proxy and output error of RTN per layer; full: also the end-to-end KL "
                                 "of every layer at every width on held-out windows (slower)"));
    form->addRow(tr("Sensitivity"), m_sensitivity);
    m_kl->setRange(1, 256);
    m_kl->setValue(p.klSamples);
    form->addRow(tr("Held-out windows (full)"), m_kl);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    form->addRow(buttons);
}

QString CalibrationDialog::file() const
{
    return m_file->text();
}

CalibrationSpec CalibrationDialog::spec() const
{
    CalibrationSpec s;
    s.samples = m_samples->value();
    s.seqlen = m_seqlen->value();
    s.sampling = m_sampling->currentIndex() == 0 ? Sampling::Random : Sampling::Contiguous;
    s.seed = uint64_t(m_seed->value());
    return s;
}

QString CalibrationDialog::sensitivity() const
{
    return m_sensitivity->currentText();
}

int CalibrationDialog::klSamples() const
{
    return m_kl->value();
}

} // namespace ql
