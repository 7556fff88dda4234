// Safetensors header and tensor table, alone and as a model folder's weights (shapes checked
// against config.json), then every tensor converted to fp32.
#include "fuzzutil.h"

#include "quantlens/model/model.h"
#include "quantlens/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::string dir = [] {
        const std::string d = qlfuzz::scratchDir() + "/safetensors-model";
        qlfuzz::writeFixtureModel(d); // config.json fixed; model.safetensors replaced by each input
        return d;
    }();
    const std::string path = dir + "/model.safetensors";
    qlfuzz::writeInput("safetensors-model/model.safetensors", data, size);
    if (auto file = ql::SafetensorsFile::open(path)) {
        volatile unsigned sink = 0;
        for (const auto& t : file->tensors())
            for (size_t i = 0; i < t.nbytes; i += 61) sink = sink + unsigned(t.data[i]);
    }
    if (auto model = ql::Model::open(dir)) {
        for (const auto& [name, info] : model->tensors()) {
            auto m = model->tensorAsFloat(name);
            (void)m;
        }
        (void)model->nonFiniteTensors();
    }
    return 0;
}
