#include "quantlens/forward/bf16gemm.h"

#include "quantlens/model/safetensors.h"

#include <immintrin.h>

#include <algorithm>
#include <cassert>

namespace ql::bf16 {

namespace {

constexpr Eigen::Index kRowBlock = 48; // three 16-lane accumulators per token
constexpr Eigen::Index kPanel = 8;     // tokens per micro-tile: 24 accumulators of 32

// Two floats as one word of bf16 pairs: the even feature in the low half, as the dot product
// instruction pairs them.
inline uint32_t pairWord(float lo, float hi)
{
    return uint32_t(floatToBf16(lo)) | (uint32_t(floatToBf16(hi)) << 16);
}

// One 48-row block of W against one panel of 8 tokens: out(r0 + i, t0 + j) for i < rows, j < tokens.
__attribute__((target("avx512f,avx512bf16"))) void tile(const uint32_t* w, const uint32_t* x, Eigen::Index pairs,
                                                        float* out, Eigen::Index ld, Eigen::Index rows,
                                                        Eigen::Index tokens)
{
    __m512 acc[3][kPanel];
    for (auto& r : acc)
        for (auto& a : r) a = _mm512_setzero_ps();
    for (Eigen::Index k = 0; k < pairs; ++k) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + k * kRowBlock);
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + k * kRowBlock + 16);
        const __m512bh w2 = (__m512bh)_mm512_loadu_si512(w + k * kRowBlock + 32);
        const uint32_t* xk = x + k * kPanel;
#pragma GCC unroll 8
        for (int j = 0; j < kPanel; ++j) {
            const __m512bh b = (__m512bh)_mm512_set1_epi32(int(xk[j]));
            acc[0][j] = _mm512_dpbf16_ps(acc[0][j], w0, b);
            acc[1][j] = _mm512_dpbf16_ps(acc[1][j], w1, b);
            acc[2][j] = _mm512_dpbf16_ps(acc[2][j], w2, b);
        }
    }
    for (Eigen::Index j = 0; j < tokens; ++j)
        for (int r = 0; r < 3; ++r) {
            const Eigen::Index left = rows - r * 16;
            if (left <= 0) break;
            const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
            _mm512_mask_storeu_ps(out + j * ld + r * 16, m, acc[r][j]);
        }
}

// Rows [r0, r0 + 48) of a row-major [rows, cols] matrix into dst (pairs × 48 words), zeros past
// the last row and column.
void packBlock(const float* a, Eigen::Index rows, Eigen::Index cols, Eigen::Index r0, uint32_t* dst)
{
    const Eigen::Index pairs = (cols + 1) / 2, r1 = std::min(rows, r0 + kRowBlock);
    if (r1 - r0 < kRowBlock) std::fill(dst, dst + pairs * kRowBlock, 0u);
    for (Eigen::Index r = r0; r < r1; ++r) {
        const float* row = a + r * cols;
        uint32_t* d = dst + (r - r0);
        for (Eigen::Index k = 0; k < cols / 2; ++k) d[k * kRowBlock] = pairWord(row[2 * k], row[2 * k + 1]);
        if (cols % 2) d[(pairs - 1) * kRowBlock] = pairWord(row[cols - 1], 0.f);
    }
}

// Row block b of W·X into out (rows × tokens, column-major).
void multiplyBlock(const uint32_t* wb, const PackedInput& x, Eigen::Index b, Eigen::Index rows, Eigen::Index pairs,
                   float* out)
{
    const Eigen::Index tokens = x.cols(), r0 = b * kRowBlock, nr = std::min(kRowBlock, rows - r0);
    for (Eigen::Index t0 = 0; t0 < tokens; t0 += kPanel)
        tile(wb, x.data() + t0 * pairs, pairs, out + t0 * rows + r0, rows, nr, std::min(kPanel, tokens - t0));
}

} // namespace

bool supported()
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
}

void PackedWeights::pack(const float* a, Eigen::Index rows, Eigen::Index cols)
{
    m_rows = rows;
    m_cols = cols;
    const Eigen::Index pairs = (cols + 1) / 2, blocks = (rows + kRowBlock - 1) / kRowBlock;
    m_data.resize(size_t(blocks * pairs * kRowBlock));
#pragma omp parallel for schedule(static)
    for (Eigen::Index b = 0; b < blocks; ++b)
        packBlock(a, rows, cols, b * kRowBlock, m_data.data() + b * pairs * kRowBlock);
}

void PackedInput::pack(const Eigen::Ref<const Eigen::MatrixXf>& x)
{
    m_rows = x.rows();
    m_cols = x.cols();
    const Eigen::Index pairs = (m_rows + 1) / 2, panels = (m_cols + kPanel - 1) / kPanel;
    m_data.resize(size_t(panels * pairs * kPanel));
#pragma omp parallel for schedule(static)
    for (Eigen::Index p = 0; p < panels; ++p) {
        uint32_t* dst = m_data.data() + p * pairs * kPanel;
        for (Eigen::Index j = 0; j < kPanel; ++j) {
            const Eigen::Index t = p * kPanel + j;
            if (t >= m_cols) {
                for (Eigen::Index k = 0; k < pairs; ++k) dst[k * kPanel + j] = 0u;
                continue;
            }
            const float* col = x.col(t).data();
            for (Eigen::Index k = 0; k < m_rows / 2; ++k) dst[k * kPanel + j] = pairWord(col[2 * k], col[2 * k + 1]);
            if (m_rows % 2) dst[(pairs - 1) * kPanel + j] = pairWord(col[m_rows - 1], 0.f);
        }
    }
}

void multiply(const PackedWeights& w, const PackedInput& x, Eigen::MatrixXf& out)
{
    assert(w.cols() == x.rows());
    const Eigen::Index rows = w.rows(), pairs = (w.cols() + 1) / 2, blocks = (rows + kRowBlock - 1) / kRowBlock;
    out.resize(rows, x.cols());
    // A thread keeps a block of W (48 rows) in its cache and streams the panels of X past it.
#pragma omp parallel for schedule(dynamic)
    for (Eigen::Index b = 0; b < blocks; ++b)
        multiplyBlock(w.data() + b * pairs * kRowBlock, x, b, rows, pairs, out.data());
}

void multiply(const float* w, Eigen::Index rows, Eigen::Index cols, const PackedInput& x, Eigen::MatrixXf& out)
{
    assert(cols == x.rows());
    const Eigen::Index pairs = (cols + 1) / 2, blocks = (rows + kRowBlock - 1) / kRowBlock;
    out.resize(rows, x.cols());
#pragma omp parallel
    {
        std::vector<uint32_t> wb(size_t(pairs * kRowBlock));
#pragma omp for schedule(dynamic)
        for (Eigen::Index b = 0; b < blocks; ++b) {
            packBlock(w, rows, cols, b * kRowBlock, wb.data());
            multiplyBlock(wb.data(), x, b, rows, pairs, out.data());
        }
    }
}

} // namespace ql::bf16
