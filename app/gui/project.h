#pragma once

#include "quantlens/analysis/analyzer.h"
#include "quantlens/text/calibration.h"
#include "quantlens/base/expected.h"

#include <QList>
#include <QString>

namespace ql {

/// A plan quantized into a run folder and kept by name with its results.
struct SavedRun {
    QString name;
    QString folder;                     ///< the run folder (absolute in memory, relative in the file when below it)
    double bitsPerWeight = 0;           ///< measured by the run
    double quickKl = -1, quickPpl = -1; ///< the quick measure at the time (-1: none)
    double fullPpl = -1;                ///< a full evaluation's perplexity at the time (-1: none)
};

/// A kept run in one line: name, bits per weight and the measures it has.
QString describeRun(const SavedRun& run);

/// A workbench project: a model folder, a calibration spec and the analysis store beside the
/// project file. Saved as small JSON (docs/project-file.md); paths inside are stored relative
/// to the project file when they lie below its folder.
struct Project {
    QString path; ///< the project file ("" until saved)
    QString modelDir;
    QString calibFile;
    CalibrationSpec calib{32, 512, Sampling::Random, 0, 0};
    QString sensitivity = QStringLiteral("proxy"); ///< none, proxy, fisher or full
    int klSamples = 4;                             ///< held-out windows for full sensitivity
    std::vector<std::string> sensMethods{"rtn"};   ///< methods each layer's sensitivity is measured with
    std::vector<int> sensBits{2, 3, 4, 8};         ///< widths each method is measured at
    std::vector<int> sensGroups{128};              ///< groups each width is measured in (0: per row)
    QString storeFile;                             ///< the HDF5 analysis store (absolute)
    QString evalFile;     ///< text of the plan editor's quick slice ("" : the calibration text)
    int quickWindows = 8; ///< windows of the quick slice
    int quickCtx = 512;   ///< tokens per quick window (capped by the model's context)
    /// Products of the quick measure: "fp32", "bf16" or "auto" (bf16 where the CPU has AVX512-BF16).
    QString quickCompute = QStringLiteral("auto");
    QString planJson;     ///< the quantization plan as recipe JSON ("" : none yet)
    QList<SavedRun> runs; ///< named plans quantized into run folders, oldest first

    /// The store a project at `projectPath` uses by default: same folder and base name, ".h5".
    static QString defaultStore(const QString& projectPath);
    /// Reads a project file; errors name the file and the field.
    static Expected<Project> load(const QString& path);
    /// The analysis the project asks for: sensitivity mode and options (the caller adds the model's hash).
    AnalyzeOptions analyzeOptions() const;
    /// Writes the project to `path` (through a temporary file) and sets path.
    Expected<void> save(const QString& path);
};

} // namespace ql
