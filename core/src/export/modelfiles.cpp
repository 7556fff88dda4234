#include "export/modelfiles.h"
#include "quantlens/base/atomicfile.h"

#include <fstream>
#include <sstream>

namespace ql {

Expected<nlohmann::json> readConfigJson(const std::string& folder)
{
    const std::filesystem::path source = std::filesystem::path(folder) / "config.json";
    std::ifstream in(source);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json cfg = nlohmann::json::parse(text.str(), nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) return makeError(source.string() + ": cannot read it as a JSON object");
    return cfg;
}

Expected<void> writeTextFile(const std::filesystem::path& path, std::string_view text)
{
    return writeFileAtomically(path.string(), text);
}

} // namespace ql
