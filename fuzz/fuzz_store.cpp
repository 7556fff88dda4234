// Analysis stores (HDF5): the metadata alone and the whole file.
#include "fuzzutil.h"

#include "quantlens/store/analysisstore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string path = qlfuzz::writeInput("analysis.h5", data, size);
    (void)ql::AnalysisStore::readMeta(path);
    (void)ql::AnalysisStore::read(path);
    return 0;
}
