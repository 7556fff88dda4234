#pragma once

// The parts GPTQ and PB-LLM share: the Hessian's inverse Cholesky factor and the blocked
// column loop with lazy batch updates. Each method supplies what happens when a block is entered
// and how one weight is quantized.

#include "quantlens/base/expected.h"
#include "quantlens/quant/groupparams.h"

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ql::detail {

/// Below about this many flops a parallel region costs more than it saves.
inline constexpr Eigen::Index kParallelWork = Eigen::Index(1) << 20;

template <class S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The Hessian side of GPTQ after dead-column handling, ordering and dampening.
struct PreparedHessian {
    /// Lower triangle: L⁻¹ for J (H + λI) J = L Lᵀ, J reversing the processing order; the
    /// upper Cholesky factor of (H + λI)⁻¹ is U = J L⁻¹ J (see factor()).
    Eigen::MatrixXd reversedInverse;
    std::vector<int> perm;     ///< processing position -> original column
    std::vector<uint8_t> dead; ///< per original column: H_jj was 0
    int deadCount = 0;
    double lambda = 0; ///< the dampening added to the diagonal

    /// U, upper triangular, row-major in the scalar the loop runs in. The copy transposes, so
    /// it goes by square tiles that keep both sides in cache.
    template <class S>
    RowMat<S> factor() const
    {
        constexpr Eigen::Index kTile = 64;
        const Eigen::Index n = reversedInverse.rows();
        RowMat<S> u = RowMat<S>::Zero(n, n);
        for (Eigen::Index i0 = 0; i0 < n; i0 += kTile)
            for (Eigen::Index j0 = i0; j0 < n; j0 += kTile)
                for (Eigen::Index i = i0; i < std::min(i0 + kTile, n); ++i)
                    for (Eigen::Index j = std::max(j0, i); j < std::min(j0 + kTile, n); ++j)
                        u(i, j) = S(reversedInverse(n - 1 - i, n - 1 - j));
        return u;
    }
};

/// Checks h against `cols`, marks dead columns, orders (act order), dampens and factors.
Expected<PreparedHessian> prepareHessian(const Eigen::MatrixXd& h, Eigen::Index cols, double damp, bool actOrder);

/// Round-to-nearest parameters of a group, optionally with quant.py's MSE clip grid search.
Expected<GroupParams> groupParams(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> values, bool mseClip);

/// The block being processed, for callbacks that need current values of later columns.
template <class S>
struct BlockView {
    const RowMat<S>& w;
    const RowMat<S>& u;
    const RowMat<S>& err;   ///< errors of this block's columns so far, [rows, block]
    const RowMat<S>& start; ///< the block's columns as they were when the block began, [rows, block]
    Eigen::Index i1, i2;    ///< the block's columns [i1, i2)

    /// Value of (r, c), c >= i1, when the block began: after every earlier block's updates and
    /// none of this block's (what the published GPTQ loop reads from W inside a block).
    S atBlockStart(Eigen::Index r, Eigen::Index c) const { return c < i2 ? start(r, c - i1) : w(r, c); }

    /// Value of (r, c), c >= i1 + i, after the updates of every column before i1 + i. Later
    /// columns of the block are updated in place; columns past it still owe this block's
    /// updates, which the lazy batch applies only when the block ends.
    S current(Eigen::Index r, Eigen::Index c, Eigen::Index i) const
    {
        S v = w(r, c);
        if (c >= i2)
            for (Eigen::Index k = 0; k < i; ++k) v -= err(r, k) * u(i1 + k, c);
        return v;
    }
};

/// GPTQ's loop over w [rows, cols] (processing order) with factor u (same scalar). begin(i1, i2)
/// runs once per block before its columns, with the block's columns fully updated. step(r, p, i,
/// view) returns the dequantized value of w(r, p) (i = p - i1); it runs for the rows of a block in
/// parallel, each row's columns in order. q receives the dequantized weights, rowLoss ½ Σ err².
template <class S, class Begin, class Step>
void gptqLoop(RowMat<S>& w, const RowMat<S>& u, int blockSize, Begin&& begin, Step&& step, RowMat<S>& q,
              std::vector<double>& rowLoss)
{
    const Eigen::Index rows = w.rows(), cols = w.cols();
    q.resize(rows, cols);
    rowLoss.assign(size_t(rows), 0.0);
    RowMat<S> err, start;
    for (Eigen::Index i1 = 0; i1 < cols; i1 += blockSize) {
        const Eigen::Index i2 = std::min<Eigen::Index>(i1 + blockSize, cols), count = i2 - i1;
        begin(i1, i2);
        err.setZero(rows, count);
        start = w.middleCols(i1, count);
        const BlockView<S> view{w, u, err, start, i1, i2};
        // Rows are independent inside a block: every row has its own parameters and its own
        // error, and the updates only mix columns. Small blocks stay on one thread, where a
        // parallel region would cost more than the work.
#pragma omp parallel for schedule(static) if (rows * count * count >= kParallelWork)
        for (Eigen::Index r = 0; r < rows; ++r) {
            double loss = 0;
            for (Eigen::Index i = 0; i < count; ++i) {
                const Eigen::Index p = i1 + i;
                const S x = w(r, p);
                const S qv = step(r, p, i, view);
                q(r, p) = qv;
                const S e = (x - qv) / u(p, p);
                err(r, i) = e;
                loss += 0.5 * double(e) * double(e);
                const Eigen::Index rest = i2 - p - 1;
                if (rest > 0) w.row(r).segment(p + 1, rest).noalias() -= e * u.row(p).segment(p + 1, rest);
            }
            rowLoss[size_t(r)] += loss;
        }
        // The lazy batch update: one GEMM carries the block's errors to every later column.
        if (i2 < cols) w.rightCols(cols - i2).noalias() -= err * u.block(i1, i2, count, cols - i2);
    }
}

} // namespace ql::detail
