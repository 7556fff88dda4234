// config.json: every key the model configuration reads, types, ranges and contradictions.
#include "fuzzutil.h"

#include "quantlens/model/modelconfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto config = ql::ModelConfig::fromJson(std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
    if (config) (void)ql::checkSequenceLength(*config, 512, false, "fuzz");
    return 0;
}
