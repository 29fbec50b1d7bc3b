#pragma once
// AVX2 + FMA GEMM microkernel: an MR x 16 tile of C (MR <= 6) in 2*MR ymm accumulators.
//
// Packed layouts (see kernels/gemm.hpp): a[k*MR + i], b[k*16 + j]; columns j >= n_valid of the
// panel are zero and are not stored.

#include <immintrin.h>

#include <cstdint>

namespace unetpp {
namespace detail {
namespace avx2 {

struct GemmKernel {
    static constexpr int kNR = 16;
    static constexpr int kMaxMR = 6;

    // c[i*ldc + j] (+)= sum_k a[k*MR + i] * b[k*16 + j] for i < MR, j < n_valid.
    template <int MR>
    static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                    int64_t n_valid, bool accumulate) {
        __m256 acc0[MR], acc1[MR];
        for (int i = 0; i < MR; ++i) {
            acc0[i] = _mm256_setzero_ps();
            acc1[i] = _mm256_setzero_ps();
        }

        // 1. rank-1 updates over the packed k range
        for (int64_t k = 0; k < kc; ++k) {
            __m256 b0 = _mm256_load_ps(b);
            __m256 b1 = _mm256_load_ps(b + 8);
            for (int i = 0; i < MR; ++i) {
                __m256 av = _mm256_broadcast_ss(a + i);
                acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
                acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
            }
            a += MR;
            b += 16;
        }

        // 2. write (or add) the valid columns of the tile
        alignas(32) int lanes[16];
        for (int j = 0; j < 16; ++j) lanes[j] = j < n_valid ? -1 : 0;
        __m256i m0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
        __m256i m1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
        for (int i = 0; i < MR; ++i) {
            float* row = c + i * ldc;
            if (accumulate) {
                acc0[i] = _mm256_add_ps(acc0[i], _mm256_maskload_ps(row, m0));
                acc1[i] = _mm256_add_ps(acc1[i], _mm256_maskload_ps(row + 8, m1));
            }
            _mm256_maskstore_ps(row, m0, acc0[i]);
            _mm256_maskstore_ps(row + 8, m1, acc1[i]);
        }
    }
};

}  // namespace avx2
}  // namespace detail
}  // namespace unetpp
