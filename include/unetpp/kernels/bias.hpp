#pragma once
// Per-channel bias, kept apart from convolutions so that a layer can fuse it or not.
//
//   forward:   y[n,k,h,w] += b[k]
//   backward:  db[k] = sum_{n,h,w} dy[n,k,h,w]
//
//   y, dy  N K H W (contiguous),  b, db  K
//
// bias_backward is deterministic for any thread count: each k is summed by one iteration, over
// the batch in order n = 0..N-1, each plane by the same simd::sum.

#include <cstdint>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

template <class T>
void bias_check(const char* fn, const ConstTensorView<T>& y, const void* bias, const char* yn,
                const char* bn) {
    if (y.rank() != 4) {
        throw ShapeError(concat(fn, ": ", yn, " must be N K H W (rank 4), got shape ",
                                y.shape().str()));
    }
    if (bias == nullptr) {
        throw Error(concat(fn, ": ", bn, " is nullptr, expected ", y.c(), " values"));
    }
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
}

}  // namespace detail

// Scalar reference. y[n,k,h,w] += bias[k]; bias holds y.c() values.
template <class T>
void bias_add_forward_reference(const T* bias, TensorView<T> y) {
    detail::bias_check<T>("bias_add_forward_reference", ConstTensorView<T>(y), bias, "y", "bias");
    for (int64_t n = 0; n < y.n(); ++n)
        for (int64_t k = 0; k < y.c(); ++k)
            for (int64_t h = 0; h < y.h(); ++h)
                for (int64_t w = 0; w < y.w(); ++w) y(n, k, h, w) += bias[k];
}

// Scalar reference. ASSIGNS dbias[k] = sum_{n,h,w} dy[n,k,h,w]; dbias holds dy.c() values.
template <class T>
void bias_backward_reference(ConstTensorView<T> dy, T* dbias) {
    detail::bias_check<T>("bias_backward_reference", dy, dbias, "dy", "dbias");
    for (int64_t k = 0; k < dy.c(); ++k) {
        T acc = 0;
        for (int64_t n = 0; n < dy.n(); ++n)
            for (int64_t h = 0; h < dy.h(); ++h)
                for (int64_t w = 0; w < dy.w(); ++w) acc += dy(n, k, h, w);
        dbias[k] = acc;
    }
}

// Adds bias[k] (K = y.c() values) to every element of channel k of y (N K H W), in place.
// Parallel over (n, k) planes.
template <class T>
void bias_add_forward(const T* bias, TensorView<T> y) {
    detail::bias_check<T>("bias_add_forward", ConstTensorView<T>(y), bias, "y", "bias");
    const int64_t K = y.c(), plane = y.h() * y.w();
    T* yp = y.data();
    parallel_for(0, y.n() * K, [&](int64_t p) {
        simd::add_scalar(plane, bias[p % K], yp + p * plane);
    });
}

// Bias gradient. ASSIGNS dbias[k] = sum over n, h, w of dy[n,k,h,w] (K = dy.c() values).
// Parallel over k; the sum order is fixed (see the file comment).
template <class T>
void bias_backward(ConstTensorView<T> dy, T* dbias) {
    detail::bias_check<T>("bias_backward", dy, dbias, "dy", "dbias");
    const int64_t K = dy.c(), plane = dy.h() * dy.w();
    const T* g = dy.data();
    parallel_for(0, K, [&](int64_t k) {
        T acc = 0;
        for (int64_t n = 0; n < dy.n(); ++n) acc += simd::sum(plane, g + (n * K + k) * plane);
        dbias[k] = acc;
    });
}

}  // namespace unetpp
