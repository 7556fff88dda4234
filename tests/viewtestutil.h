#pragma once
// Small helpers the offscreen view tests share: reading an exported file back and measuring how
// much of a rendered picture is drawn.
#include <QFile>
#include <QImage>
#include <QString>

namespace viewtest {

/// Fraction of pixels that differ from the top-left pixel (the background); 0 for a null image.
inline double nonBackgroundFraction(const QImage& img)
{
    if (img.isNull()) return 0;
    const QRgb bg = img.pixel(0, 0);
    qint64 differ = 0;
    for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x)
            if (img.pixel(x, y) != bg) ++differ;
    return double(differ) / (double(img.width()) * img.height());
}

/// The UTF-8 text of a file; empty when it cannot be read.
inline QString readText(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

} // namespace viewtest
