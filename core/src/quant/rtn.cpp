#include "quantlens/quant/rtn.h"

#include "quantlens/quant/formats.h"
#include "quantlens/quant/groupparams.h"

#include <algorithm>
#include <stdexcept>

namespace ql {

// The parameter and rounding rules are groupparams.h's, the ones the rtn quantizer, GPTQ and AWQ
// use, so a sensitivity measured with this function is the error those methods start from.
RowMatrix rtnFakeQuant(Eigen::Ref<const RowMatrix> w, int bits, int group, bool symmetric)
{
    const Eigen::Index rows = w.rows(), cols = w.cols();
    if (group <= 0 || group > cols) group = static_cast<int>(cols);
    auto id = intFormatId(bits, symmetric);
    if (!id) throw std::invalid_argument(id.error().message);
    const WeightFormat& f = **findFormat(*id);
    RowMatrix out(rows, cols);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r) {
        for (Eigen::Index g0 = 0; g0 < cols; g0 += group) {
            const Eigen::Index len = std::min<Eigen::Index>(group, cols - g0);
            const Eigen::VectorXf seg = w.row(r).segment(g0, len).transpose();
            // Non-finite weights have no parameters; they pass through unchanged.
            auto p = computeParams(f, seg);
            out.row(r).segment(g0, len) = (p ? fakeQuantize(f, *p, seg) : seg).transpose();
        }
    }
    return out;
}

} // namespace ql
