// Recipe JSON: parsed, resolved against the fixture model's layers, written back and parsed again.
#include "fuzzutil.h"

#include "quantlens/model/model.h"
#include "quantlens/recipe/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const ql::Model& model = qlfuzz::fixtureModel();
    auto recipe = ql::parseRecipe(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!recipe) return 0;
    if (auto specs = ql::resolveRecipe(*recipe, model.linearLayers())) (void)ql::resolvedToJson(*specs);
    // What QuantLens writes it must read back.
    const std::string again = ql::recipeToJson(*recipe);
    if (!ql::parseRecipe(again)) {
        std::fprintf(stderr, "a parsed recipe does not parse after recipeToJson:\n%s\n", again.c_str());
        std::abort();
    }
    return 0;
}
