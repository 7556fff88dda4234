#pragma once

// Hadamard-based random orthogonal matrices (QuaRot, Ashkboos et al. 2024; QuIP#'s Kronecker
// trick for sizes that are not powers of two), applied in O(n · (m + log p)) per vector
// instead of O(n²).
//
// A rotation of order n = m · p, with p the largest power of two dividing n (or p·2^-j, see
// below), is  R = c · (A ⊗ H_p) · diag(d):
//   - H_p is the Sylvester Hadamard matrix of order p (±1 entries, symmetric), applied with the
//     fast Walsh–Hadamard transform;
//   - d ∈ {±1}ⁿ are random signs drawn from the seed (all +1 when signs are off);
//   - A is chosen, in this order:
//       1. n a power of two: A = [1] (m = 1);
//       2. the smallest m = (odd part of n) · 2^j ≤ 1024 that is a Paley order, with q prime:
//          Paley I, m = q + 1 (q ≡ 3 mod 4), or Paley II, m = 2(q + 1) (q ≡ 1 mod 4): A is
//          that ±1 Hadamard matrix and R is a true Hadamard matrix of order n (every entry
//          ±1/√n). E.g. 12 = 11+1, 20 = 19+1, 36 = 2·18 (q = 17); then 48 = 12·4, 96 = 12·8,
//          576 = 36·16, 1536 = 12·128, 896 = 28·32 (q = 13, Paley II), 4864 = 76·64.
//       3. otherwise (e.g. 172 = 43·4, 11008 = 43·256: Paley needs q = 42, 85, 171, ... none
//          prime): A is a random orthogonal matrix of order m = the odd part of n (QR of a
//          seeded Gaussian matrix; odd parts above 8192 are refused). R is then orthogonal and mixes every channel, but its
//          entries are not all ±1/√n; QuaRot's hard-coded Williamson matrices (had_172 …)
//          are not reproduced.
//   - c = 1/√(m·p) when A is ±1 Hadamard, 1/√p when A is orthonormal.
// Every construction is checked (AAᵀ = m·I, resp. = I) when it is built.

#include "quantlens/expected.h"
#include "quantlens/weights.h"

#include <Eigen/Core>

#include <cstdint>
#include <string>

namespace ql {

/// Row-major double matrix, for weights being transformed in double precision.
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A seeded orthogonal matrix R = c·(A ⊗ H_p)·diag(d) of order n (see the file comment).
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
    /// True when R is a Hadamard matrix up to scale (cases 1 and 2 of the file comment).
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
    Eigen::MatrixXd m_a;  ///< A (m × m), empty when m = 1
    Eigen::MatrixXf m_af; ///< A in float, for float vectors
    Eigen::VectorXd m_signs; ///< d, empty when signs are off
    Eigen::VectorXf m_signsf;
    double m_scale = 1;
};

} // namespace ql
