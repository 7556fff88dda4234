#include "paramform.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QSpinBox>
#include <QVBoxLayout>

#include <cmath>
#include <limits>

namespace ql {

ParamForm::ParamForm(QWidget* parent) : QWidget(parent)
{
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    m_title = new QLabel(this);
    m_title->setWordWrap(true);
    outer->addWidget(m_title);
    m_layout = new QFormLayout;
    outer->addLayout(m_layout);
    outer->addStretch(1);
}

void ParamForm::setParameters(const QString& method, const std::vector<ParamSpec>& specs, const ParamMap& values)
{
    while (m_layout->rowCount() > 0) m_layout->removeRow(0);
    m_method = method;
    m_specs = specs;
    if (method.isEmpty())
        m_title->setText(tr("Select layers of one method to edit its parameters."));
    else if (specs.empty())
        m_title->setText(tr("<b>%1</b> has no parameters.").arg(method));
    else
        m_title->setText(tr("<b>%1</b> parameters").arg(method));
    for (const ParamSpec& s : specs) {
        auto it = values.find(s.name);
        QWidget* field = makeField(s, it != values.end() ? it->second : s.defaultValue);
        field->setObjectName(QStringLiteral("param_") + QString::fromStdString(s.name));
        field->setToolTip(QString::fromStdString(s.help));
        auto* label = new QLabel(QString::fromStdString(s.name), this);
        label->setToolTip(field->toolTip());
        m_layout->addRow(label, field);
    }
}

QWidget* ParamForm::makeField(const ParamSpec& s, const ParamValue& value)
{
    const QString name = QString::fromStdString(s.name);
    const bool ranged = s.min <= s.max;
    switch (s.type) {
    case ParamSpec::Type::Bool: {
        auto* box = new QCheckBox(this);
        box->setChecked(std::holds_alternative<bool>(value) && std::get<bool>(value));
        connect(box, &QCheckBox::toggled, this, [this, name](bool on) {
            emit valueChanged(name, on ? QStringLiteral("true") : QStringLiteral("false"));
        });
        return box;
    }
    case ParamSpec::Type::Int: {
        auto* spin = new QSpinBox(this);
        spin->setRange(
            ranged ? int(std::max<double>(s.min, std::numeric_limits<int>::min())) : std::numeric_limits<int>::min(),
            ranged ? int(std::min<double>(s.max, std::numeric_limits<int>::max())) : std::numeric_limits<int>::max());
        spin->setValue(std::holds_alternative<int64_t>(value) ? int(std::get<int64_t>(value)) : 0);
        spin->setKeyboardTracking(false); // one edit per finished number, not per keystroke
        connect(spin, &QSpinBox::valueChanged, this,
                [this, name](int v) { emit valueChanged(name, QString::number(v)); });
        return spin;
    }
    case ParamSpec::Type::Double: {
        auto* spin = new QDoubleSpinBox(this);
        spin->setDecimals(4);
        spin->setRange(ranged ? s.min : -1e9, ranged ? s.max : 1e9);
        spin->setSingleStep(ranged && s.max > s.min ? std::pow(10.0, std::floor(std::log10(s.max - s.min)) - 1) : 0.01);
        const double v = std::holds_alternative<double>(value)    ? std::get<double>(value)
                         : std::holds_alternative<int64_t>(value) ? double(std::get<int64_t>(value))
                                                                  : 0.0;
        spin->setValue(v);
        spin->setKeyboardTracking(false);
        connect(spin, &QDoubleSpinBox::valueChanged, this,
                [this, name](double v) { emit valueChanged(name, QString::number(v, 'g', 10)); });
        return spin;
    }
    case ParamSpec::Type::Choice: {
        auto* box = new QComboBox(this);
        for (const std::string& c : s.choices) box->addItem(QString::fromStdString(c));
        if (std::holds_alternative<std::string>(value))
            box->setCurrentText(QString::fromStdString(std::get<std::string>(value)));
        connect(box, &QComboBox::currentTextChanged, this,
                [this, name](const QString& v) { emit valueChanged(name, v); });
        return box;
    }
    }
    return new QWidget(this);
}

} // namespace ql
