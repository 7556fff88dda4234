#include "quantlens/rtn.h"

#include <algorithm>
#include <cmath>

namespace ql {

RowMatrix rtnFakeQuant(Eigen::Ref<const RowMatrix> w, int bits, int group, bool symmetric)
{
    const Eigen::Index rows = w.rows(), cols = w.cols();
    if (group <= 0 || group > cols) group = static_cast<int>(cols);
    const float qmax = float((1 << bits) - 1);
    RowMatrix out(rows, cols);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r) {
        for (Eigen::Index g0 = 0; g0 < cols; g0 += group) {
            const Eigen::Index len = std::min<Eigen::Index>(group, cols - g0);
            const auto seg = w.row(r).segment(g0, len);
            float lo = std::min(0.f, seg.minCoeff()), hi = std::max(0.f, seg.maxCoeff());
            if (symmetric) {
                const float m = std::max(std::abs(lo), hi);
                lo = -m;
                hi = m;
            }
            if (lo == hi) { // all zeros: any scale reproduces them
                lo = -1.f;
                hi = 1.f;
            }
            const float scale = (hi - lo) / qmax;
            const float zero = symmetric ? float(1 << (bits - 1)) : std::round(-lo / scale);
            for (Eigen::Index c = 0; c < len; ++c) {
                const float q = std::clamp(std::round(seg[c] / scale) + zero, 0.f, qmax);
                out(r, g0 + c) = scale * (q - zero);
            }
        }
    }
    return out;
}

} // namespace ql
