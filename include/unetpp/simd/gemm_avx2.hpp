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
        // Every loop over i is unrolled, so that each accumulator is a register: with one
        // loop left rolled (the stores below), GCC kept the arrays in memory and stored all 12
        // accumulators on every k, which held the kernel to under half of the FMA peak.
        __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            acc0[i] = _mm256_setzero_ps();
            acc1[i] = _mm256_setzero_ps();
        }

        // 1. rank-1 updates over the packed k range
        for (int64_t k = 0; k < kc; ++k) {
            __m256 b0 = _mm256_load_ps(b);
            __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
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
#pragma GCC unroll 6
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

// Transposes a rows x 8 block (rows <= 8) into 8 rows of 8 lanes:
// dst[j*ld_dst + i] = src[i*ld_src + j] for j < 8, i < 8; source rows i >= rows read as zero.
// Packs the B^T panels of a weight gradient, which the element-by-element loop of
// transpose_block made cost half as much as the multiplication itself.
inline void transpose_8(const float* src, int64_t ld_src, int rows, float* dst, int64_t ld_dst) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) {
        r[i] = i < rows ? _mm256_loadu_ps(src + i * ld_src) : _mm256_setzero_ps();
    }
    // 1. interleave pairs of rows at 32-bit granularity
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    // 2. interleave at 64-bit granularity: within each 128-bit half, r[i] holds column j of
    // rows 4q..4q+3 for the four columns j of that half
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    // 3. exchange 128-bit halves between the first and second group of four rows
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + j * ld_dst, t[j]);
}

}  // namespace avx2
}  // namespace detail
}  // namespace unetpp
