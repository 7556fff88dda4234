// A run folder's quantized state (safetensors with a JSON description) read for the fixture
// model, then every layer dequantized as evaluation and export do.
#include "fuzzutil.h"

#include "quantlens/model/model.h"
#include "quantlens/store/runstate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const ql::Model& model = qlfuzz::fixtureModel();
    auto state = ql::readRunState(qlfuzz::writeInput("state.safetensors", data, size), model);
    if (!state) return 0;
    ql::BlockWeights block;
    for (int b = 0; b < model.config().layers; ++b) (void)state->model->block(b, block);
    return 0;
}
