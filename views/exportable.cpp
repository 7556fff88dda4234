#include "exportable.h"

#include <QBuffer>
#include <QObject>
#include <QSaveFile>

namespace ql::detail {

bool writeExportFile(const QString& path, const QByteArray& data, QString* error)
{
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly) || f.write(data) != data.size() || !f.commit()) {
        if (error) *error = QObject::tr("Cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    return true;
}

bool writeExportPng(const QString& path, const QImage& img, QString* error)
{
    QByteArray png;
    QBuffer buffer(&png);
    if (!buffer.open(QIODevice::WriteOnly) || !img.save(&buffer, "PNG")) {
        if (error) *error = QObject::tr("Cannot encode the PNG image %1").arg(path);
        return false;
    }
    return writeExportFile(path, png, error);
}

} // namespace ql::detail
