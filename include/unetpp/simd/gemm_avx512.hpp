#pragma once
// AVX-512 GEMM microkernel: an MR x 32 tile of C (MR <= 12) held in 2*MR zmm accumulators.
//
// Per k it loads one 32-wide row of the packed B panel (two vectors), broadcasts the MR values of
// the packed A column and issues 2*MR FMAs. Up to 24 accumulators + 2 B vectors + 1 broadcast fit
// in the 32 registers, enough independent FMA chains to hide the 4-cycle latency on two ports.
//
// Packed layouts (see kernels/gemm.hpp): a[k*MR + i], b[k*32 + j]; columns j >= n_valid of the
// panel are zero and are not stored.

#include <immintrin.h>

#include <cstdint>

// GCC 12 warns falsely about its own intrinsics' undefined-register placeholders (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace unetpp {
namespace detail {
namespace avx512 {

struct GemmKernel {
    static constexpr int kNR = 32;
    static constexpr int kMaxMR = 12;

    // c[i*ldc + j] (+)= sum_k a[k*MR + i] * b[k*32 + j] for i < MR, j < n_valid.
    template <int MR>
    static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                    int64_t n_valid, bool accumulate) {
        __m512 acc0[MR], acc1[MR];
        for (int i = 0; i < MR; ++i) {
            acc0[i] = _mm512_setzero_ps();
            acc1[i] = _mm512_setzero_ps();
        }

        // 1. rank-1 updates over the packed k range
        for (int64_t k = 0; k < kc; ++k) {
            __m512 b0 = _mm512_load_ps(b);
            __m512 b1 = _mm512_load_ps(b + 16);
            for (int i = 0; i < MR; ++i) {
                __m512 av = _mm512_set1_ps(a[i]);
                acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
                acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
            }
            a += MR;
            b += 32;
        }

        // 2. write (or add) the valid columns of the tile
        __mmask16 m0 = n_valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << n_valid) - 1u);
        __mmask16 m1 = n_valid >= 32   ? __mmask16(0xffff)
                       : n_valid <= 16 ? __mmask16(0)
                                       : __mmask16((1u << (n_valid - 16)) - 1u);
        for (int i = 0; i < MR; ++i) {
            float* row = c + i * ldc;
            if (accumulate) {
                acc0[i] = _mm512_add_ps(acc0[i], _mm512_maskz_loadu_ps(m0, row));
                acc1[i] = _mm512_add_ps(acc1[i], _mm512_maskz_loadu_ps(m1, row + 16));
            }
            _mm512_mask_storeu_ps(row, m0, acc0[i]);
            _mm512_mask_storeu_ps(row + 16, m1, acc1[i]);
        }
    }
};

// Dot-product form for a product with few outputs and a long K whose A rows and B^T rows are both
// contiguous in k (a weight gradient's shape: 16 x 27 outputs over 16384 pixels). Nothing is
// packed or transposed. A tile of MR x NR outputs (MR <= 4, NR <= 6) keeps one 16-lane partial
// sum per output (lane l takes k = l mod 16) in 24 zmm at most, beside the MR vectors of A; each
// row is one long sequential stream, which the hardware prefetcher follows.
struct GemmDotKernel {
    static constexpr int kMaxMR = 4;
    static constexpr int kMaxNR = 6;

    // c[i*ldc + j] (+)= sum_k a[i*lda + k] * b[j*ldb + k] for i < MR, j < NR, k < K; the last
    // vector is masked when K is not a multiple of 16, and each output's lanes are added up in
    // one fixed order.
    template <int MR, int NR>
    static void run(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                    int64_t ldc, bool accumulate) {
        __m512 sum[MR][NR];
        for (int i = 0; i < MR; ++i) {
            for (int j = 0; j < NR; ++j) sum[i][j] = _mm512_setzero_ps();
        }
        auto step = [&](auto load) {
            __m512 av[MR];
            for (int i = 0; i < MR; ++i) av[i] = load(a + i * lda);
            for (int j = 0; j < NR; ++j) {
                __m512 bv = load(b + j * ldb);
                // keep bv in a register: GCC otherwise folds the load into each of the MR FMAs,
                // and the loads, not the FMAs, set the pace
                __asm__("" : "+v"(bv));
                for (int i = 0; i < MR; ++i) sum[i][j] = _mm512_fmadd_ps(av[i], bv, sum[i][j]);
            }
        };
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) {
            step([k](const float* row) { return _mm512_loadu_ps(row + k); });
        }
        if (k < K) {
            const __mmask16 m = __mmask16((1u << (K - k)) - 1u);
            step([k, m](const float* row) { return _mm512_maskz_loadu_ps(m, row + k); });
        }
        for (int i = 0; i < MR; ++i) {
            for (int j = 0; j < NR; ++j) {
                float v = _mm512_reduce_add_ps(sum[i][j]);
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
            }
        }
    }
};

// Transposes a rows x 16 block (rows <= 16) into 16 rows of `lanes` values:
// dst[j*ld_dst + i] = src[i*ld_src + j] for j < 16, i < lanes; source rows i >= rows read as zero.
inline void transpose_16(const float* src, int64_t ld_src, int rows, float* dst, int64_t ld_dst,
                         int lanes) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) {
        r[i] = i < rows ? _mm512_loadu_ps(src + i * ld_src) : _mm512_setzero_ps();
    }
    // 1. interleave pairs of rows at 32-bit granularity
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    // 2. interleave at 64-bit granularity
    for (int i = 0; i < 16; i += 4) {
        __m512d a0 = _mm512_castps_pd(t[i]), a1 = _mm512_castps_pd(t[i + 1]);
        __m512d a2 = _mm512_castps_pd(t[i + 2]), a3 = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    // 3. exchange 128-bit lanes between groups of four rows, then between groups of eight
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
    // 4. store the first `lanes` values of each transposed row
    const __mmask16 m = lanes >= 16 ? __mmask16(0xffff) : __mmask16((1u << lanes) - 1u);
    for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(dst + i * ld_dst, m, r[i]);
}

// dst[0..n) = src[0..n) with full and masked vectors (no library call for short runs).
inline void copy_floats(int64_t n, const float* src, float* dst) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        __mmask16 m = __mmask16((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}

}  // namespace avx512
}  // namespace detail
}  // namespace unetpp

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
