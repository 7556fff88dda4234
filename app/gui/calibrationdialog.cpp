#include "calibrationdialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QRegularExpressionValidator>
#include <QSpinBox>

#include <algorithm>

namespace ql {

CalibrationDialog::CalibrationDialog(const Project& p, QWidget* parent)
    : QDialog(parent), m_project(p), m_file(new QLineEdit(p.calibFile, this)), m_samples(new QSpinBox(this)),
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
    m_sensitivity->addItems(
        {QStringLiteral("none"), QStringLiteral("proxy"), QStringLiteral("fisher"), QStringLiteral("full")});
    m_sensitivity->setCurrentText(p.sensitivity);
    m_sensitivity->setToolTip(tr("proxy: Hessian proxy and output error of RTN per layer; fisher: also the diagonal "
                                 "Fisher measure (one backward sweep); full: all of these and the end-to-end KL "
                                 "of every layer at every width on held-out windows (slower)"));
    form->addRow(tr("Sensitivity"), m_sensitivity);
    m_kl->setRange(1, 256);
    m_kl->setValue(p.klSamples);
    form->addRow(tr("Held-out windows (full)"), m_kl);
    auto listEdit = [this](const QString& text, const QString& pattern, const QString& tip) {
        auto* e = new QLineEdit(text, this);
        e->setValidator(new QRegularExpressionValidator(QRegularExpression(pattern), e));
        e->setToolTip(tip);
        return e;
    };
    QStringList methods, bits, groups;
    for (const std::string& m : p.sensMethods) methods << QString::fromStdString(m);
    for (int b : p.sensBits) bits << QString::number(b);
    for (int g : p.sensGroups) groups << QString::number(g);
    const QString sep = QStringLiteral(", ");
    m_methods = listEdit(
        methods.join(sep), QStringLiteral("^\\s*(rtn|gptq)(\\s*,\\s*(rtn|gptq))*\\s*$"),
        tr("Methods each layer is measured with: rtn, gptq (GPTQ costs a solve per layer and option)"));
    form->addRow(tr("Sensitivity methods"), m_methods);
    m_bits = listEdit(bits.join(sep), QStringLiteral("^\\s*[2-8](\\s*,\\s*[2-8])*\\s*$"),
                      tr("Widths each method is measured at (2 to 8)"));
    form->addRow(tr("Sensitivity widths"), m_bits);
    m_groups = listEdit(groups.join(sep), QStringLiteral("^\\s*\\d{1,6}(\\s*,\\s*\\d{1,6})*\\s*$"),
                        tr("Groups each width is measured in; 0 for one group per row"));
    form->addRow(tr("Sensitivity groups"), m_groups);
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

namespace {

QStringList listItems(const QLineEdit* e)
{
    QStringList out;
    for (const QString& s : e->text().split(QLatin1Char(','), Qt::SkipEmptyParts))
        if (!s.trimmed().isEmpty()) out << s.trimmed();
    return out;
}

std::vector<int> intItems(const QLineEdit* e, const std::vector<int>& fallback)
{
    std::vector<int> out;
    for (const QString& s : listItems(e)) out.push_back(s.toInt());
    return out.empty() ? fallback : out;
}

} // namespace

std::vector<std::string> CalibrationDialog::sensMethods() const
{
    std::vector<std::string> out;
    for (const QString& s : listItems(m_methods))
        if (std::find(out.begin(), out.end(), s.toStdString()) == out.end()) out.push_back(s.toStdString());
    return out.empty() ? m_project.sensMethods : out;
}

std::vector<int> CalibrationDialog::sensBits() const
{
    return intItems(m_bits, m_project.sensBits);
}

std::vector<int> CalibrationDialog::sensGroups() const
{
    return intItems(m_groups, m_project.sensGroups);
}

} // namespace ql
