#include "quantlens/forward/rotation.h"

#include <Eigen/QR>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace ql {

namespace {

// Largest Paley factor order tried; beyond it the Kronecker product costs nearly a dense GEMM.
constexpr int kMaxPaleyOrder = 1024;
// Largest odd part for which a random orthogonal factor is built (its QR is O(m³)).
constexpr int kMaxOddFactor = 8192;

// splitmix64: a tiny, portable, seedable generator (results must not depend on the C++ library).
struct SplitMix {
    uint64_t state;
    uint64_t next()
    {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (double(next() >> 11) + 0.5) * 0x1.0p-53; } // in (0, 1)
    double gaussian() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
};

bool isPrime(int q)
{
    if (q < 2) return false;
    for (int d = 2; d * d <= q; ++d)
        if (q % d == 0) return false;
    return true;
}

// Quadratic character mod a prime q: χ(0) = 0, +1 on nonzero squares, -1 otherwise.
std::vector<int> quadraticCharacter(int q)
{
    std::vector<int> chi(size_t(q), -1);
    chi[0] = 0;
    for (int x = 1; x < q; ++x) chi[size_t(int64_t(x) * x % q)] = 1;
    return chi;
}

// Paley I: order q + 1 for a prime q ≡ 3 (mod 4). H = I + S with S = [[0, 1ᵀ], [-1, Q]] and the
// Jacobsthal matrix Q_ij = χ(j - i), which is skew-symmetric for such q.
Eigen::MatrixXd paleyOne(int q)
{
    const auto chi = quadraticCharacter(q);
    Eigen::MatrixXd h = Eigen::MatrixXd::Identity(q + 1, q + 1);
    for (int j = 1; j <= q; ++j) {
        h(0, j) += 1;
        h(j, 0) -= 1;
    }
    for (int i = 0; i < q; ++i)
        for (int j = 0; j < q; ++j) h(i + 1, j + 1) += chi[size_t(((j - i) % q + q) % q)];
    return h;
}

// Paley II: order 2(q + 1) for a prime q ≡ 1 (mod 4), from the symmetric conference matrix
// C = [[0, 1ᵀ], [1, Q]]: each 0 becomes [[1, -1], [-1, -1]] and each ±1 becomes ±[[1, 1], [1, -1]].
Eigen::MatrixXd paleyTwo(int q)
{
    const auto chi = quadraticCharacter(q);
    const int c = q + 1;
    auto conf = [&](int i, int j) -> int {
        if (i == 0 && j == 0) return 0;
        if (i == 0 || j == 0) return 1;
        return chi[size_t(((j - i) % q + q) % q)];
    };
    Eigen::MatrixXd h(2 * c, 2 * c);
    for (int i = 0; i < c; ++i)
        for (int j = 0; j < c; ++j) {
            const int v = conf(i, j);
            Eigen::Matrix2d b;
            if (v == 0)
                b << 1, -1, -1, -1;
            else
                b << v, v, v, -v;
            h.block<2, 2>(2 * i, 2 * j) = b;
        }
    return h;
}

// In-place unnormalised fast Walsh–Hadamard transform of n = 2^k values (Sylvester order).
template <class S>
void fwht(S* x, int n)
{
    for (int h = 1; h < n; h *= 2)
        for (int i = 0; i < n; i += 2 * h)
            for (int j = i; j < i + h; ++j) {
                const S a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

} // namespace

Expected<HadamardRotation> HadamardRotation::create(int n, uint64_t seed, bool randomSigns)
{
    if (n <= 0) return makeError("Hadamard rotation: order must be positive, got " + std::to_string(n));
    HadamardRotation r;
    r.m_n = n;
    r.m_seed = seed;
    r.m_randomSigns = randomSigns;
    int odd = n, pow2 = 1;
    while (odd % 2 == 0) odd /= 2, pow2 *= 2;
    if (odd == 1) {
        r.m_m = 1;
        r.m_p = n;
        r.m_construction = "Sylvester " + std::to_string(n);
    } else {
        // Case 2: the smallest Paley order m = odd · 2^j dividing n.
        for (int m = odd; m <= std::min(n, kMaxPaleyOrder) && r.m_a.size() == 0; m *= 2) {
            Eigen::MatrixXd a;
            std::string name;
            if (isPrime(m - 1) && (m - 1) % 4 == 3) {
                a = paleyOne(m - 1);
                name = "Paley I ";
            } else if (m % 2 == 0 && isPrime(m / 2 - 1) && (m / 2 - 1) % 4 == 1) {
                a = paleyTwo(m / 2 - 1);
                name = "Paley II ";
            } else {
                continue;
            }
            // A construction that is not Hadamard would silently break orthogonality: check it.
            if (((a * a.transpose()) - double(m) * Eigen::MatrixXd::Identity(m, m)).cwiseAbs().maxCoeff() > 1e-9)
                continue;
            r.m_a = std::move(a);
            r.m_m = m;
            r.m_p = n / m;
            r.m_construction = name + std::to_string(m) + " ⊗ Sylvester " + std::to_string(r.m_p);
        }
        if (r.m_a.size() == 0) {
            // Case 3: a Haar-random orthogonal factor on the odd part.
            if (odd > kMaxOddFactor)
                return makeError("Hadamard rotation: no construction for order " + std::to_string(n) + " (odd part " +
                                 std::to_string(odd) + " is above " + std::to_string(kMaxOddFactor) + ")");
            SplitMix g{seed ^ 0x5DEECE66DULL};
            Eigen::MatrixXd z(odd, odd);
            for (Eigen::Index j = 0; j < z.cols(); ++j)
                for (Eigen::Index i = 0; i < z.rows(); ++i) z(i, j) = g.gaussian();
            Eigen::HouseholderQR<Eigen::MatrixXd> qr(z);
            Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(odd, odd);
            // Sign-correct by diag(R) so the factor is Haar distributed, not biased by the QR convention.
            const Eigen::MatrixXd rr = qr.matrixQR().triangularView<Eigen::Upper>();
            for (int j = 0; j < odd; ++j)
                if (rr(j, j) < 0) q.col(j) = -q.col(j);
            if (((q.transpose() * q) - Eigen::MatrixXd::Identity(odd, odd)).cwiseAbs().maxCoeff() > 1e-10)
                return makeError("Hadamard rotation: random orthogonal factor of order " + std::to_string(odd) +
                                 " is not orthogonal");
            r.m_a = std::move(q);
            r.m_m = odd;
            r.m_p = pow2;
            r.m_hadamardFactor = false;
            r.m_construction = "random orthogonal " + std::to_string(odd) + " ⊗ Sylvester " + std::to_string(pow2);
        }
        r.m_af = r.m_a.cast<float>();
    }
    r.m_scale = 1.0 / std::sqrt(double(r.m_p) * (r.m_hadamardFactor ? double(r.m_m) : 1.0));
    if (randomSigns) {
        SplitMix g{seed};
        r.m_signs.resize(n);
        for (int i = 0; i < n; ++i) r.m_signs[i] = (g.next() >> 63) ? -1.0 : 1.0;
        r.m_signsf = r.m_signs.cast<float>();
    }
    return r;
}

template <class S>
void HadamardRotation::transformOne(S* x, S* tmp, bool transposed) const
{
    // R = c·(A ⊗ H_p)·D: R·x applies the signs first, Rᵀ·x = c·D·(Aᵀ ⊗ H_p)·x applies them last
    // (H_p is symmetric). With x viewed as the row-major m × p matrix X, (A ⊗ H_p)·x = A·X·H_p.
    const S* d = nullptr;
    if (m_signs.size()) {
        if constexpr (std::is_same_v<S, float>)
            d = m_signsf.data();
        else
            d = m_signs.data();
    }
    if (d && !transposed)
        for (int i = 0; i < m_n; ++i) x[i] *= d[i];
    for (int a = 0; a < m_m; ++a) fwht(x + Eigen::Index(a) * m_p, m_p);
    if (m_m > 1) {
        using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        Eigen::Map<const Mat> xm(x, m_m, m_p);
        Eigen::Map<Mat> t(tmp, m_m, m_p);
        const auto& a = [&]() -> const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& {
            if constexpr (std::is_same_v<S, float>)
                return m_af;
            else
                return m_a;
        }();
        if (transposed)
            t.noalias() = a.transpose() * xm;
        else
            t.noalias() = a * xm;
        std::copy(tmp, tmp + m_n, x);
    }
    const S c = static_cast<S>(m_scale);
    if (d && transposed)
        for (int i = 0; i < m_n; ++i) x[i] *= c * d[i];
    else
        for (int i = 0; i < m_n; ++i) x[i] *= c;
}

template <class S>
void HadamardRotation::transformVectors(S* data, Eigen::Index count, Eigen::Index stride, bool transposed) const
{
    // Vectors are independent; threads only when there is enough work to pay for the team.
    const bool parallel = count > 1 && double(count) * m_n * (m_m + 8) > 1e6;
#pragma omp parallel if (parallel)
    {
        std::vector<S> tmp(m_m > 1 ? size_t(m_n) : 0);
#pragma omp for schedule(static)
        for (Eigen::Index v = 0; v < count; ++v) transformOne(data + v * stride, tmp.data(), transposed);
    }
}

void HadamardRotation::leftMultiply(Eigen::Ref<Eigen::MatrixXf> x, bool transposed) const
{
    if (x.rows() != m_n) return; // callers check shapes; a mismatch must not write out of bounds
    transformVectors(x.data(), x.cols(), x.outerStride(), transposed);
}

void HadamardRotation::leftMultiply(Eigen::Ref<Eigen::MatrixXd> x, bool transposed) const
{
    if (x.rows() != m_n) return;
    transformVectors(x.data(), x.cols(), x.outerStride(), transposed);
}

// x·R = (Rᵀ·xᵀ)ᵀ: each row, seen as a vector, gets the opposite transpose.
void HadamardRotation::rightMultiply(Eigen::Ref<RowMatrix> x, bool transposed) const
{
    if (x.cols() != m_n) return;
    transformVectors(x.data(), x.rows(), x.outerStride(), !transposed);
}

void HadamardRotation::rightMultiply(Eigen::Ref<RowMatrixD> x, bool transposed) const
{
    if (x.cols() != m_n) return;
    transformVectors(x.data(), x.rows(), x.outerStride(), !transposed);
}

Eigen::MatrixXd HadamardRotation::matrix() const
{
    Eigen::MatrixXd r = Eigen::MatrixXd::Identity(m_n, m_n);
    leftMultiply(r);
    return r;
}

} // namespace ql
