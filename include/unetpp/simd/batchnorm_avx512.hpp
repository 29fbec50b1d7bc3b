#pragma once
// AVX-512 loops of BatchNorm2d's backward (layers/batchnorm2d.hpp), for float. GCC does not
// vectorise the portable versions: it keeps the fused ReLU's mask as a branch, and the sign
// of the ReLU's output is unpredictable.
//
//   lane_sums:  a[l] += g[i], b[l] += g[i] * h[i] in double, for i = l (mod 16) over the
//               16-float blocks of [0, n), then the tail i in [n - n % 16, n) into lanes 0, 1..
//   dx:         dx[i] += float(k * (M g[i] - dbeta - h[i] dgamma))   (batch statistics)
//               dx[i] += float(k * g[i])                             (fixed statistics)
//               (= in place of += when assign)
// where g[i] is zero wherever relu_y (when not null) is not positive. Same lanes and order
// as the portable loops, so the sums do not depend on the thread count either.

#include <immintrin.h>

#include <cstdint>

namespace unetpp {
namespace detail {
namespace avx512 {

// 16 floats of g, zeroed where relu_y[i] <= 0 (relu_y may be null: no mask).
inline __m512 bn_masked_grad(const float* g, const float* relu_y, int64_t i) {
    const __m512 gv = _mm512_loadu_ps(g + i);
    if (relu_y == nullptr) return gv;
    const __mmask16 on =
        _mm512_cmp_ps_mask(_mm512_loadu_ps(relu_y + i), _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_maskz_mov_ps(on, gv);
}

inline __m512d bn_low(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d bn_high(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// The 16-float blocks of lane_sums (a, b: 16 doubles each); returns the first index not done.
inline int64_t bn_lane_sums(const float* g, const float* relu_y, const float* h, int64_t n,
                            double* a, double* b) {
    __m512d a0 = _mm512_loadu_pd(a), a1 = _mm512_loadu_pd(a + 8);
    __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 gv = bn_masked_grad(g, relu_y, i), hv = _mm512_loadu_ps(h + i);
        const __m512d glo = bn_low(gv), ghi = bn_high(gv);
        a0 = _mm512_add_pd(a0, glo);
        a1 = _mm512_add_pd(a1, ghi);
        b0 = _mm512_fmadd_pd(glo, bn_low(hv), b0);
        b1 = _mm512_fmadd_pd(ghi, bn_high(hv), b1);
    }
    _mm512_storeu_pd(a, a0);
    _mm512_storeu_pd(a + 8, a1);
    _mm512_storeu_pd(b, b0);
    _mm512_storeu_pd(b + 8, b1);
    return i;
}

// The 16-float blocks of dx; returns the first index not done.
inline int64_t bn_dx(bool batch, bool assign, const float* g, const float* relu_y, const float* h,
                     int64_t n, double k, double M, double dbeta, double dgamma, float* dx) {
    const __m512d kv = _mm512_set1_pd(k), mv = _mm512_set1_pd(M);
    const __m512d bv = _mm512_set1_pd(dbeta), dgv = _mm512_set1_pd(dgamma);
    auto term = [&](__m512d gd, __m512d hd) {
        if (!batch) return _mm512_mul_pd(kv, gd);
        const __m512d t = _mm512_fnmadd_pd(hd, dgv, _mm512_sub_pd(_mm512_mul_pd(mv, gd), bv));
        return _mm512_mul_pd(kv, t);
    };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 gv = bn_masked_grad(g, relu_y, i), hv = _mm512_loadu_ps(h + i);
        const __m256 lo = _mm512_cvtpd_ps(term(bn_low(gv), bn_low(hv)));
        const __m256 hi = _mm512_cvtpd_ps(term(bn_high(gv), bn_high(hv)));
        const __m512 sum = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
        _mm512_storeu_ps(dx + i, assign ? sum : _mm512_add_ps(_mm512_loadu_ps(dx + i), sum));
    }
    return i;
}

}  // namespace avx512
}  // namespace detail
}  // namespace unetpp
