#pragma once

#include "exportable.h"

#include <QPointer>
#include <QString>

QT_BEGIN_NAMESPACE
class QAbstractItemModel;
class QAbstractItemView;
class QWidget;
QT_END_NAMESPACE

namespace ql {

/// Exports a table: the CSV of an item model (rows in the model's order, so a sort/filter proxy
/// exports what is shown) and a picture of a widget (PNG via grab, SVG via QSvgGenerator).
///
/// A cell's CSV text is, in order of preference: the model's CsvRole if valid; Qt::UserRole written
/// at full precision when it is a number; the DisplayRole text. Tree models export depth first.
class TableExport : public Exportable {
public:
    /// A model may return this role to control a cell's CSV text (e.g. empty for a missing value).
    static constexpr int CsvRole = Qt::UserRole + 100;

    /// Exports `model` as CSV and `widget` as picture; both are watched, not owned.
    TableExport(const QString& title, QAbstractItemModel* model, QWidget* widget);
    /// Exports a view's model and the view itself.
    TableExport(const QString& title, QAbstractItemView* view);

    /// Changes the export title.
    void setTitle(const QString& title) { m_title = title; }
    /// The CSV that exportCsv writes.
    QString csvText() const;
    /// The CSV of any model, one header line then one line per row.
    static QString csvOf(const QAbstractItemModel* model);
    /// One CSV field, quoted when it contains a comma, quote or line break.
    static QString csvField(const QString& text);

    QString exportTitle() const override { return m_title; }
    bool exportPng(const QString& path, QString* error = nullptr) const override;
    bool exportSvg(const QString& path, QString* error = nullptr) const override;
    bool exportCsv(const QString& path, QString* error = nullptr) const override;

private:
    QString m_title;
    QPointer<QAbstractItemModel> m_model;
    QPointer<QWidget> m_widget;
};

} // namespace ql
