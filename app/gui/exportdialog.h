#pragma once

#include "planexport.h"

#include <QDialog>
#include <QPointer>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

namespace ql {

class Job;
class Workbench;

/// Export of the plan from the window: every artifact of `quantlens-cli export`. Before writing
/// it previews, per tensor, what the chosen format cannot represent and the fallback that will
/// apply; the export itself runs as a cancellable job.
class ExportDialog : public QDialog {
    Q_OBJECT
public:
    explicit ExportDialog(Workbench* workbench, QWidget* parent = nullptr);

    /// Starts a new preview of the chosen format (cancelling a running one).
    void refreshPreview();
    /// Writes the export to the chosen path (a job).
    void startExport();

    /// Widgets and jobs (tests, screenshots).
    QComboBox* formatBox() const { return m_format; }
    QComboBox* typeBox() const { return m_type; }
    QLineEdit* pathEdit() const { return m_path; }
    QTableWidget* previewTable() const { return m_table; }
    QLabel* warningLabel() const { return m_warning; }
    QLabel* statusLabel() const { return m_status; }
    QPushButton* exportButton() const { return m_export; }
    QPushButton* cancelButton() const { return m_cancel; }
    Job* previewJob() const { return m_previewJob; }
    Job* exportJob() const { return m_exportJob; }

private:
    QString format() const;
    ExportRequest request() const; ///< format and GGUF type as chosen

    Workbench* m_wb;
    QComboBox* m_format;
    QComboBox* m_type;
    QLineEdit* m_path;
    QTableWidget* m_table;
    QLabel* m_warning;
    QLabel* m_status;
    QPushButton* m_export;
    QPushButton* m_cancel;
    QPointer<Job> m_previewJob;
    QPointer<Job> m_exportJob;
};

} // namespace ql
