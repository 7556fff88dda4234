#include "tableexport.h"

#include <QAbstractItemModel>
#include <QAbstractItemView>
#include <QFileInfo>
#include <QLocale>
#include <QPainter>
#include <QPixmap>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QWidget>

namespace ql {

namespace {

bool fail(QString* error, const QString& message)
{
    if (error) *error = message;
    return false;
}

bool isNumber(const QVariant& v)
{
    switch (v.typeId()) {
    case QMetaType::Double:
    case QMetaType::Float:
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::LongLong:
    case QMetaType::ULongLong: return true;
    default: return false;
    }
}

QString cellText(const QAbstractItemModel* model, const QModelIndex& index)
{
    const QVariant csv = model->data(index, TableExport::CsvRole);
    if (csv.isValid()) return csv.toString();
    const QVariant raw = model->data(index, Qt::UserRole);
    if (isNumber(raw)) {
        if (raw.typeId() == QMetaType::Double || raw.typeId() == QMetaType::Float)
            // Shortest text that reads back as the same double: the CSV is for further analysis.
            return QString::number(raw.toDouble(), 'g', QLocale::FloatingPointShortest);
        return raw.toString();
    }
    return model->data(index, Qt::DisplayRole).toString();
}

void appendRows(const QAbstractItemModel* model, const QModelIndex& parent, int columns, QString& out)
{
    const int rows = model->rowCount(parent);
    for (int r = 0; r < rows; ++r) {
        QStringList fields;
        for (int c = 0; c < columns; ++c) fields << TableExport::csvField(cellText(model, model->index(r, c, parent)));
        out += fields.join(QLatin1Char(',')) + QLatin1Char('\n');
        const QModelIndex first = model->index(r, 0, parent);
        if (model->hasChildren(first)) appendRows(model, first, columns, out);
    }
}

} // namespace

TableExport::TableExport(const QString& title, QAbstractItemModel* model, QWidget* widget)
    : m_title(title), m_model(model), m_widget(widget)
{}

TableExport::TableExport(const QString& title, QAbstractItemView* view)
    : TableExport(title, view ? view->model() : nullptr, view)
{}

QString TableExport::csvField(const QString& text)
{
    if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"')) && !text.contains(QLatin1Char('\n')) &&
        !text.contains(QLatin1Char('\r')))
        return text;
    QString quoted = text;
    quoted.replace(QLatin1Char('"'), QLatin1String("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString TableExport::csvOf(const QAbstractItemModel* model)
{
    if (!model) return {};
    const int columns = model->columnCount();
    QStringList header;
    for (int c = 0; c < columns; ++c) header << csvField(model->headerData(c, Qt::Horizontal).toString());
    QString out = header.join(QLatin1Char(',')) + QLatin1Char('\n');
    appendRows(model, QModelIndex(), columns, out);
    return out;
}

QString TableExport::csvText() const
{
    return csvOf(m_model.data());
}

bool TableExport::exportCsv(const QString& path, QString* error) const
{
    if (!m_model) return fail(error, QObject::tr("%1: there is no table to export").arg(path));
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text))
        return fail(error, QObject::tr("Cannot write %1: %2").arg(path, f.errorString()));
    f.write(csvText().toUtf8());
    if (!f.commit()) return fail(error, QObject::tr("Cannot write %1: %2").arg(path, f.errorString()));
    return true;
}

bool TableExport::exportPng(const QString& path, QString* error) const
{
    if (!m_widget) return fail(error, QObject::tr("%1: there is no table to export").arg(path));
    const QPixmap pixmap = m_widget->grab();
    if (pixmap.isNull()) return fail(error, QObject::tr("%1: the table has no size to export").arg(path));
    return detail::writeExportPng(path, pixmap.toImage(), error);
}

bool TableExport::exportSvg(const QString& path, QString* error) const
{
    if (!m_widget) return fail(error, QObject::tr("%1: there is no table to export").arg(path));
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(m_widget->size());
    svg.setViewBox(QRect(QPoint(0, 0), m_widget->size()));
    svg.setTitle(m_title);
    QPainter painter;
    if (!painter.begin(&svg)) return fail(error, QObject::tr("Cannot write %1").arg(path));
    m_widget->render(&painter);
    painter.end();
    // QSvgGenerator reports no write errors; an empty file is the visible symptom.
    if (QFileInfo(path).size() == 0) return fail(error, QObject::tr("Cannot write %1").arg(path));
    return true;
}

} // namespace ql
