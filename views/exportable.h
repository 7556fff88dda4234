#pragma once

#include <QImage>
#include <QString>

namespace ql {

/// A chart or picture a user can save: as PNG, as SVG and as the CSV of the data behind it.
/// Each returns false and sets error (naming the file) when writing fails.
class Exportable {
public:
    virtual ~Exportable() = default;
    /// Short title, used for default file names.
    virtual QString exportTitle() const = 0;
    /// Writes a PNG of the current view (at the widget's size times its device pixel ratio).
    virtual bool exportPng(const QString& path, QString* error = nullptr) const = 0;
    /// Writes an SVG of the current view.
    virtual bool exportSvg(const QString& path, QString* error = nullptr) const = 0;
    /// Writes the data shown, one header line then one line per row, comma separated.
    virtual bool exportCsv(const QString& path, QString* error = nullptr) const = 0;
};

namespace detail {

/// Writes an export's bytes to `path` in one step (nothing is left half written); on failure
/// returns false and sets `error` to a message naming the file.
bool writeExportFile(const QString& path, const QByteArray& data, QString* error);
/// Encodes img as PNG and writes it like writeExportFile (never a partial image under path).
bool writeExportPng(const QString& path, const QImage& img, QString* error);

} // namespace detail

} // namespace ql
