// Workbench project files (JSON read with Qt): every field, relative paths, kept runs.
#include "fuzzutil.h"

#include "project.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string path = qlfuzz::writeInput("project.qlproj", data, size);
    auto project = ql::Project::load(QString::fromStdString(path));
    if (project) (void)project->analyzeOptions();
    return 0;
}
