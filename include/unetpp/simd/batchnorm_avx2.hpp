#pragma once
// AVX2 + FMA loops of BatchNorm2d's backward (layers/batchnorm2d.hpp), for float: the 8-lane
// twin of batchnorm_avx512.hpp, with the same contract. GCC does not vectorise the portable
// versions (it keeps the fused ReLU's mask as a branch, and the sign of the ReLU's output is
// unpredictable).
//
//   lane_sums:  a[l] += g[i], b[l] += g[i] * h[i] in double, for i = l (mod 16) over the
//               16-float blocks of [0, n); the caller does the tail
//   dx:         dx[i] += float(k * (M g[i] - dbeta - h[i] dgamma))   (batch statistics)
//               dx[i] += float(k * g[i])                             (fixed statistics)
//               (= in place of += when assign)
// where g[i] is zero wherever relu_y (when not null) is not positive. The 16 lanes of double
// sums are those of the portable loops and of AVX-512 (four ymm of 4 doubles each for a and
// for b), so the sums do not depend on the thread count either.

#include <immintrin.h>

#include <cstdint>

namespace unetpp {
namespace detail {
namespace avx2 {

// 8 floats of g, zeroed where relu_y[i] <= 0 (relu_y may be null: no mask).
inline __m256 bn_masked_grad(const float* g, const float* relu_y, int64_t i) {
    const __m256 gv = _mm256_loadu_ps(g + i);
    if (relu_y == nullptr) return gv;
    const __m256 on = _mm256_cmp_ps(_mm256_loadu_ps(relu_y + i), _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_and_ps(gv, on);
}

inline __m256d bn_low(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d bn_high(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

// The 16-float blocks of lane_sums (a, b: 16 doubles each); returns the first index not done.
inline int64_t bn_lane_sums(const float* g, const float* relu_y, const float* h, int64_t n,
                            double* a, double* b) {
    __m256d av[4], bv[4];
    for (int q = 0; q < 4; ++q) {
        av[q] = _mm256_loadu_pd(a + 4 * q);
        bv[q] = _mm256_loadu_pd(b + 4 * q);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int half = 0; half < 2; ++half) {
            const __m256 gv = bn_masked_grad(g, relu_y, i + 8 * half);
            const __m256 hv = _mm256_loadu_ps(h + i + 8 * half);
            const __m256d glo = bn_low(gv), ghi = bn_high(gv);
            av[2 * half] = _mm256_add_pd(av[2 * half], glo);
            av[2 * half + 1] = _mm256_add_pd(av[2 * half + 1], ghi);
            bv[2 * half] = _mm256_fmadd_pd(glo, bn_low(hv), bv[2 * half]);
            bv[2 * half + 1] = _mm256_fmadd_pd(ghi, bn_high(hv), bv[2 * half + 1]);
        }
    }
    for (int q = 0; q < 4; ++q) {
        _mm256_storeu_pd(a + 4 * q, av[q]);
        _mm256_storeu_pd(b + 4 * q, bv[q]);
    }
    return i;
}

// The 8-float blocks of dx; returns the first index not done.
inline int64_t bn_dx(bool batch, bool assign, const float* g, const float* relu_y, const float* h,
                     int64_t n, double k, double M, double dbeta, double dgamma, float* dx) {
    const __m256d kv = _mm256_set1_pd(k), mv = _mm256_set1_pd(M);
    const __m256d bv = _mm256_set1_pd(dbeta), dgv = _mm256_set1_pd(dgamma);
    auto term = [&](__m256d gd, __m256d hd) {
        if (!batch) return _mm256_mul_pd(kv, gd);
        const __m256d t = _mm256_fnmadd_pd(hd, dgv, _mm256_sub_pd(_mm256_mul_pd(mv, gd), bv));
        return _mm256_mul_pd(kv, t);
    };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = bn_masked_grad(g, relu_y, i), hv = _mm256_loadu_ps(h + i);
        const __m128 lo = _mm256_cvtpd_ps(term(bn_low(gv), bn_low(hv)));
        const __m128 hi = _mm256_cvtpd_ps(term(bn_high(gv), bn_high(hv)));
        const __m256 sum = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
        _mm256_storeu_ps(dx + i, assign ? sum : _mm256_add_ps(_mm256_loadu_ps(dx + i), sum));
    }
    return i;
}

}  // namespace avx2
}  // namespace detail
}  // namespace unetpp
