#pragma once

#include "quantlens/base/params.h"

#include <QWidget>

#include <string>
#include <vector>

class QFormLayout;
class QLabel;

namespace ql {

/// A form for one method's parameters, built from the method's typed declarations (a check box,
/// spin box or choice list per parameter, with its range and help), so a new plugin's
/// parameters appear without widget code. Each field's object name is "param_<name>".
class ParamForm : public QWidget {
    Q_OBJECT
public:
    explicit ParamForm(QWidget* parent = nullptr);

    /// Builds the form for `method` with `values` shown (missing ones at their defaults); an
    /// empty method clears it.
    void setParameters(const QString& method, const std::vector<ParamSpec>& specs, const ParamMap& values);
    /// The method the form shows.
    QString method() const { return m_method; }
    /// Number of parameter fields.
    int fieldCount() const { return int(m_specs.size()); }

signals:
    /// The user changed a parameter; value is in edit text form ("0.05", "true", "hessian").
    void valueChanged(const QString& name, const QString& value);

private:
    QWidget* makeField(const ParamSpec& spec, const ParamValue& value);

    QString m_method;
    std::vector<ParamSpec> m_specs;
    QFormLayout* m_layout = nullptr;
    QLabel* m_title = nullptr;
};

} // namespace ql
