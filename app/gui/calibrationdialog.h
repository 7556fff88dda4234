#pragma once

#include "project.h"

#include <QDialog>

class QComboBox;
class QLineEdit;
class QSpinBox;

namespace ql {

/// Chooses the calibration text, its windows and the sensitivity mode of the next analysis.
class CalibrationDialog : public QDialog {
    Q_OBJECT
public:
    explicit CalibrationDialog(const Project& project, QWidget* parent = nullptr);
    /// The chosen calibration file.
    QString file() const;
    /// The chosen windows.
    CalibrationSpec spec() const;
    /// none, proxy, fisher or full.
    QString sensitivity() const;
    /// Held-out windows for full sensitivity.
    int klSamples() const;
    /// Methods, widths and groups the sensitivity is measured with (the fields' validators keep
    /// them well-formed; an emptied field gives the project's value back).
    std::vector<std::string> sensMethods() const;
    std::vector<int> sensBits() const;
    std::vector<int> sensGroups() const;

private:
    Project m_project;
    QLineEdit *m_methods, *m_bits, *m_groups;
    QLineEdit* m_file;
    QSpinBox *m_samples, *m_seqlen, *m_seed, *m_kl;
    QComboBox *m_sampling, *m_sensitivity;
};

} // namespace ql
