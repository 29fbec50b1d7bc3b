#pragma once
// The plain scalar GEMM that the fast path in gemm.hpp is tested against and falls back to.
//
// C[i,j] = (accumulate ? C[i,j] : 0) + sum_k op(A)[i,k] * op(B)[k,j]
// Row-major: A[i,k] = a[i*lda + k] (a[k*lda + i] when trans_a); B[k,j] = b[k*ldb + j]
// (b[j*ldb + k] when trans_b); C[i,j] = c[i*ldc + j].

#include <cstdint>

#include "unetpp/error.hpp"

namespace unetpp {

// The shape of one GEMM call. lda, ldb, ldc are the row strides of the matrices as stored.
struct GemmSpec {
    int64_t M = 0, N = 0, K = 0;
    int64_t lda = 0, ldb = 0, ldc = 0;
    bool trans_a = false, trans_b = false, accumulate = false;
};

namespace detail {

// Throws ShapeError unless the spec describes a valid GEMM.
inline void gemm_check(const char* what, const GemmSpec& s) {
    if (s.M < 0 || s.N < 0 || s.K < 0) {
        throw ShapeError(concat(what, ": sizes must be non-negative, got M=", s.M, " N=", s.N,
                                " K=", s.K));
    }
    int64_t a_width = s.trans_a ? s.M : s.K;
    int64_t b_width = s.trans_b ? s.K : s.N;
    if (s.lda < std::max<int64_t>(a_width, 1)) {
        throw ShapeError(concat(what, ": lda must be at least ", a_width, " (the row length of ",
                                s.trans_a ? "A^T" : "A", "), got ", s.lda));
    }
    if (s.ldb < std::max<int64_t>(b_width, 1)) {
        throw ShapeError(concat(what, ": ldb must be at least ", b_width, " (the row length of ",
                                s.trans_b ? "B^T" : "B", "), got ", s.ldb));
    }
    if (s.ldc < std::max<int64_t>(s.N, 1)) {
        throw ShapeError(concat(what, ": ldc must be at least N=", s.N, ", got ", s.ldc));
    }
}

}  // namespace detail

// Same contract as gemm (gemm.hpp): plain triple loop, summing over k in increasing order.
template <class T>
void gemm_reference(const GemmSpec& spec, const T* a, const T* b, T* c) {
    detail::gemm_check("gemm_reference", spec);
    for (int64_t i = 0; i < spec.M; ++i) {
        for (int64_t j = 0; j < spec.N; ++j) {
            T sum = spec.accumulate ? c[i * spec.ldc + j] : T(0);
            for (int64_t k = 0; k < spec.K; ++k) {
                T av = spec.trans_a ? a[k * spec.lda + i] : a[i * spec.lda + k];
                T bv = spec.trans_b ? b[j * spec.ldb + k] : b[k * spec.ldb + j];
                sum += av * bv;
            }
            c[i * spec.ldc + j] = sum;
        }
    }
}

}  // namespace unetpp
