#pragma once
// Channel concatenation: the U-Net skip connection joins encoder and decoder features.
//
//   y[n, c, h, w]      = a[n, c, h, w]        c < Ca
//   y[n, Ca + c, h, w] = b[n, c, h, w]        c < Cb
//
//   a  N Ca H W,  b  N Cb H W,  y  N (Ca+Cb) H W        (all contiguous)
//
// Backward splits dy along C and ADDS the parts into da and db, because a skip tensor's gradient
// also arrives from the encoder path.

#include <cstdint>
#include <cstring>

#include "unetpp/error.hpp"
#include "unetpp/kernels/grad_write.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

// Checks a (N Ca H W), b (N Cb H W) and y (N Ca+Cb H W); all contiguous.
template <class T>
void concat_channels_check(const char* fn, const ConstTensorView<T>& a,
                           const ConstTensorView<T>& b, const ConstTensorView<T>& y,
                           const char* an, const char* bn, const char* yn) {
    if (a.rank() != 4 || b.rank() != 4) {
        throw ShapeError(concat(fn, ": ", an, " and ", bn, " must be N C H W (rank 4), got ",
                                a.shape().str(), " and ", b.shape().str()));
    }
    if (b.n() != a.n() || b.h() != a.h() || b.w() != a.w()) {
        throw ShapeError(concat(fn, ": ", an, " ", a.shape().str(), " and ", bn, " ",
                                b.shape().str(), " must agree in N, H and W (crop the skip "
                                "tensor first?)"));
    }
    shape_check(concat(fn, ": ", yn, " (N Ca+Cb H W)").c_str(), y.shape(),
                Shape{a.n(), a.c() + b.c(), a.h(), a.w()});
    contiguous_check(concat(fn, ": ", an).c_str(), a);
    contiguous_check(concat(fn, ": ", bn).c_str(), b);
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
}

}  // namespace detail

// Scalar reference. ASSIGNS y = [a, b] along C.
template <class T>
void concat_channels_forward_reference(ConstTensorView<T> a, ConstTensorView<T> b,
                                       TensorView<T> y) {
    detail::concat_channels_check<T>("concat_channels_forward_reference", a, b,
                                  ConstTensorView<T>(y), "a", "b", "y");
    for (int64_t n = 0; n < y.n(); ++n)
        for (int64_t c = 0; c < y.c(); ++c)
            for (int64_t h = 0; h < y.h(); ++h)
                for (int64_t w = 0; w < y.w(); ++w)
                    y(n, c, h, w) = c < a.c() ? a(n, c, h, w) : b(n, c - a.c(), h, w);
}

// Scalar reference. ADDS the channels [0, Ca) of dy into da and [Ca, Ca+Cb) into db.
template <class T>
void concat_channels_backward_reference(ConstTensorView<T> dy, TensorView<T> da,
                                        TensorView<T> db) {
    detail::concat_channels_check<T>("concat_channels_backward_reference", ConstTensorView<T>(da),
                                  ConstTensorView<T>(db), dy, "da", "db", "dy");
    for (int64_t n = 0; n < dy.n(); ++n)
        for (int64_t c = 0; c < dy.c(); ++c)
            for (int64_t h = 0; h < dy.h(); ++h)
                for (int64_t w = 0; w < dy.w(); ++w) {
                    T& target = c < da.c() ? da(n, c, h, w) : db(n, c - da.c(), h, w);
                    target += dy(n, c, h, w);
                }
}

// ASSIGNS y (N Ca+Cb H W) = a (N Ca H W) then b (N Cb H W) along C. y must not overlap a or b.
// Parallel over the channel planes of y, so that a single large image uses every thread.
template <class T>
void concat_channels_forward(ConstTensorView<T> a, ConstTensorView<T> b, TensorView<T> y) {
    detail::concat_channels_check<T>("concat_channels_forward", a, b, ConstTensorView<T>(y), "a",
                                  "b", "y");
    const int64_t ca = a.c(), cy = y.c(), plane = y.h() * y.w();
    parallel_for(0, y.n() * cy, [&](int64_t p) {
        const int64_t n = p / cy, c = p % cy;
        const T* src = c < ca ? a.data() + (n * ca + c) * plane
                              : b.data() + (n * (cy - ca) + c - ca) * plane;
        std::memcpy(y.data() + p * plane, src, sizeof(T) * plane);
    });
}

// Input gradients. ADDS dy's first Ca channels into da and the remaining Cb into db
// (GradWrite::assign: copies them). Parallel over the channel planes of dy.
template <class T>
void concat_channels_backward(ConstTensorView<T> dy, TensorView<T> da, TensorView<T> db,
                              GradWrite write = GradWrite::add) {
    detail::concat_channels_check<T>("concat_channels_backward", ConstTensorView<T>(da),
                                  ConstTensorView<T>(db), dy, "da", "db", "dy");
    const int64_t ca = da.c(), cy = dy.c(), plane = dy.h() * dy.w();
    parallel_for(0, dy.n() * cy, [&](int64_t p) {
        const int64_t n = p / cy, c = p % cy;
        T* dst = c < ca ? da.data() + (n * ca + c) * plane
                        : db.data() + (n * (cy - ca) + c - ca) * plane;
        if (write == GradWrite::assign) std::memcpy(dst, dy.data() + p * plane, sizeof(T) * plane);
        else simd::add(plane, dst, dy.data() + p * plane, dst);
    });
}

}  // namespace unetpp
