#include "mainwindow.h"
#include "screenshot.h"
#include "workbench.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>

#include <cstdio>

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("QuantLens"));
    QApplication::setApplicationName(QStringLiteral("QuantLens"));
    QApplication::setApplicationVersion(QStringLiteral(QL_VERSION));

    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral("QuantLens: post-training quantization workbench"));
    p.addHelpOption();
    p.addVersionOption();
    p.addPositionalArgument(QStringLiteral("path"), QStringLiteral("A model folder or a project file to open."),
                            QStringLiteral("[path]"));
    p.addOption({QStringLiteral("project"), QStringLiteral("Project file to open."), QStringLiteral("P.qlproj")});
    p.addOption(
        {QStringLiteral("view"),
         QStringLiteral(
             "View to show: overview, outliers, massive, sensitivity, entropy, weights (screenshots also: heatmap, depth)."),
         QStringLiteral("VIEW"), QStringLiteral("overview")});
    p.addOption({QStringLiteral("screenshot"),
                 QStringLiteral("Render the view into FILE.png and exit (needs --project)."),
                 QStringLiteral("FILE.png")});
    p.addOption({QStringLiteral("size"), QStringLiteral("Screenshot size."), QStringLiteral("WxH"),
                 QStringLiteral("1200x800")});
    p.process(app);

    ql::Workbench workbench;
    ql::MainWindow window(&workbench);
    QString project = p.value(QStringLiteral("project"));
    const QStringList args = p.positionalArguments();

    if (p.isSet(QStringLiteral("screenshot"))) {
        if (project.isEmpty()) {
            std::fprintf(stderr, "error: --screenshot needs --project P.qlproj\n");
            return 2;
        }
        const QStringList wh = p.value(QStringLiteral("size")).split(QLatin1Char('x'));
        const QSize size(wh.value(0).toInt(), wh.value(1).toInt());
        if (size.width() < 200 || size.height() < 150) {
            std::fprintf(stderr, "error: --size expects WxH of at least 200x150\n");
            return 2;
        }
        ql::Screenshot shot(&workbench, &window, p.value(QStringLiteral("view")), p.value(QStringLiteral("screenshot")),
                            size);
        shot.start(project);
        return app.exec();
    }

    window.show();
    if (project.isEmpty() && !args.isEmpty()) {
        if (QFileInfo(args.front()).isDir() || args.front().endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive))
            workbench.openModel(args.front());
        else
            project = args.front();
    }
    if (!project.isEmpty()) workbench.openProject(project);
    window.showPage(p.value(QStringLiteral("view")));
    return app.exec();
}
