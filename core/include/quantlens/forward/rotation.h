#pragma once

// A seeded Hadamard-based orthogonal matrix R applied in O(n·(m + log p)) per vector; constructions
// in docs/methods.md, "Hadamard rotations".

#include "quantlens/base/expected.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <cstdint>
#include <string>

namespace ql {

/// Row-major double matrix, for weights being transformed in double precision.
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A seeded orthogonal matrix R = c·(A ⊗ H_p)·diag(d) of order n (docs/methods.md).
class HadamardRotation {
public:
    /// Builds the rotation of order n; signs from seed when randomSigns (else d = 1).
    static Expected<HadamardRotation> create(int n, uint64_t seed, bool randomSigns = true);

    /// The order n.
    int size() const { return m_n; }
    /// The seed the signs were drawn from (create's argument).
    uint64_t seed() const { return m_seed; }
    /// True when d holds random signs (create's argument).
    bool randomSigns() const { return m_randomSigns; }
    /// m, the order of the factor A (1 for a power of two).
    int factorOrder() const { return m_m; }
    /// p, the order of the Sylvester factor.
    int powerOfTwo() const { return m_p; }
    /// True when R is a Hadamard matrix up to scale (cases 1 and 2 in docs/methods.md).
    bool isHadamard() const { return m_hadamardFactor; }
    /// How R was built, e.g. "Paley I 12 ⊗ Sylvester 4" or "random orthogonal 43 ⊗ Sylvester 4".
    const std::string& construction() const { return m_construction; }

    /// x ← R·x, or Rᵀ·x when transposed: every column of x is transformed (x needs size() rows;
    /// any other x is left unchanged, as with the three functions below).
    void leftMultiply(Eigen::Ref<Eigen::MatrixXf> x, bool transposed = false) const;
    /// Double-precision variant of leftMultiply.
    void leftMultiply(Eigen::Ref<Eigen::MatrixXd> x, bool transposed = false) const;
    /// x ← x·R, or x·Rᵀ when transposed: every row of x is transformed (x needs size() columns).
    void rightMultiply(Eigen::Ref<RowMatrix> x, bool transposed = false) const;
    /// Double-precision variant of rightMultiply.
    void rightMultiply(Eigen::Ref<RowMatrixD> x, bool transposed = false) const;
    /// R as a dense matrix (tests, small sizes).
    Eigen::MatrixXd matrix() const;

private:
    template <class S>
    void transformVectors(S* data, Eigen::Index count, Eigen::Index stride, bool transposed) const;
    template <class S>
    void transformOne(S* x, S* tmp, bool transposed) const;

    int m_n = 0, m_m = 1, m_p = 1;
    uint64_t m_seed = 0;
    bool m_randomSigns = true;
    bool m_hadamardFactor = true;
    std::string m_construction;
    Eigen::MatrixXd m_a;     ///< A (m × m), empty when m = 1
    Eigen::MatrixXf m_af;    ///< A in float, for float vectors
    Eigen::VectorXd m_signs; ///< d, empty when signs are off
    Eigen::VectorXf m_signsf;
    double m_scale = 1;
};

} // namespace ql
