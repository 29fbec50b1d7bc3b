#pragma once
// 2-D convolution: the spec, its shape checks, and the plain scalar kernels that the fast path
// in conv2d.hpp is tested against and falls back to.
//
//   y[n,k,i,j] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n,c,i*stride+r-pad, j*stride+s-pad]
// x: N C H W, w: K C R S, b: K, y: N K OH OW with OH = (H + 2 pad - R) / stride + 1 (same for
// OW). Taps that fall outside the image read zero (zero padding). Cross-correlation, as in
// PyTorch's Conv2d: the kernel is not flipped.

#include <cstdint>

#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// Channels, kernel size, stride and zero padding of one convolution (same in both directions).
struct Conv2dSpec {
    int64_t C = 0, K = 0, R = 3, S = 3, stride = 1, pad = 1;

    int64_t out_h(int64_t H) const { return (H + 2 * pad - R) / stride + 1; }
    int64_t out_w(int64_t W) const { return (W + 2 * pad - S) / stride + 1; }
};

// What a forward convolution applies to its finished outputs as it stores them: nothing, or a
// ReLU (y = max(y, 0)), which saves the separate pass over y that a ReLU layer would make.
enum class ConvActivation { none, relu };

namespace detail {

inline void conv2d_check_spec(const char* what, const Conv2dSpec& s) {
    if (s.C < 1 || s.K < 1 || s.R < 1 || s.S < 1 || s.stride < 1 || s.pad < 0) {
        throw ShapeError(concat(what, ": invalid spec C=", s.C, " K=", s.K, " R=", s.R, " S=", s.S,
                                " stride=", s.stride, " pad=", s.pad,
                                " (need C, K, R, S, stride >= 1 and pad >= 0)"));
    }
}

template <class View>
void conv2d_check_rank(const char* what, const char* name, const View& v) {
    if (v.rank() != 4) {
        throw ShapeError(concat(what, ": ", name, " must be rank 4, got shape ", v.shape().str()));
    }
    contiguous_check(what, v);
}

// Checks x (N C H W) and weight (K C R S) against the spec; returns nothing, throws ShapeError.
template <class XView, class WView>
void conv2d_check_input(const char* what, const Conv2dSpec& s, const char* x_name,
                        const XView& x, const WView& weight) {
    conv2d_check_spec(what, s);
    conv2d_check_rank(what, x_name, x);
    conv2d_check_rank(what, "weight", weight);
    if (x.c() != s.C) {
        throw ShapeError(concat(what, ": ", x_name, " has ", x.c(),
                                " channels, spec/weights expect ", s.C));
    }
    shape_check(concat(what, ": weight (K C R S)").c_str(), weight.shape(),
                Shape{s.K, s.C, s.R, s.S});
    if (x.h() + 2 * s.pad < s.R || x.w() + 2 * s.pad < s.S) {
        throw ShapeError(concat(what, ": ", x_name, " of ", x.h(), "x", x.w(),
                                " is smaller than the ", s.R, "x", s.S, " kernel with pad ", s.pad));
    }
}

// Checks the output-side tensor (y or dy): N K OH OW for input x.
template <class XView, class YView>
void conv2d_check_output(const char* what, const Conv2dSpec& s, const XView& x,
                         const char* y_name, const YView& y) {
    conv2d_check_rank(what, y_name, y);
    Shape expected{x.n(), s.K, s.out_h(x.h()), s.out_w(x.w())};
    if (y.shape() != expected) {
        throw ShapeError(concat(what, ": ", y_name, " (N K OH OW) has shape ", y.shape().str(),
                                ", expected ", expected.str(), " for input ", x.shape().str()));
    }
}

}  // namespace detail

// Reference forward: ASSIGNS y (N K OH OW); bias may be nullptr (no bias).
template <class T>
void conv2d_forward_reference(const Conv2dSpec& spec, ConstTensorView<T> x,
                              ConstTensorView<T> weight, const T* bias, TensorView<T> y) {
    const char* what = "conv2d_forward_reference";
    detail::conv2d_check_input(what, spec, "input", x, weight);
    detail::conv2d_check_output(what, spec, x, "output", y);
    const int64_t H = x.h(), W = x.w(), OH = y.h(), OW = y.w();
    for (int64_t n = 0; n < x.n(); ++n)
        for (int64_t k = 0; k < spec.K; ++k)
            for (int64_t i = 0; i < OH; ++i)
                for (int64_t j = 0; j < OW; ++j) {
                    T sum = bias ? bias[k] : T(0);
                    for (int64_t c = 0; c < spec.C; ++c)
                        for (int64_t r = 0; r < spec.R; ++r)
                            for (int64_t s = 0; s < spec.S; ++s) {
                                int64_t h = i * spec.stride + r - spec.pad;
                                int64_t w = j * spec.stride + s - spec.pad;
                                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                                sum += weight(k, c, r, s) * x(n, c, h, w);
                            }
                    y(n, k, i, j) = sum;
                }
}

// Reference input gradient: dx[n,c,h,w] += sum_{k,r,s} w[k,c,r,s] * dy[n,k,i,j] over the (i,j)
// with i*stride + r - pad = h and j*stride + s - pad = w. ADDS into dx (N C H W).
template <class T>
void conv2d_backward_data_reference(const Conv2dSpec& spec, ConstTensorView<T> dy,
                                    ConstTensorView<T> weight, TensorView<T> dx) {
    const char* what = "conv2d_backward_data_reference";
    detail::conv2d_check_input(what, spec, "dx", dx, weight);
    detail::conv2d_check_output(what, spec, dx, "dy", dy);
    const int64_t H = dx.h(), W = dx.w(), OH = dy.h(), OW = dy.w();
    for (int64_t n = 0; n < dx.n(); ++n)
        for (int64_t k = 0; k < spec.K; ++k)
            for (int64_t i = 0; i < OH; ++i)
                for (int64_t j = 0; j < OW; ++j) {
                    T g = dy(n, k, i, j);
                    for (int64_t c = 0; c < spec.C; ++c)
                        for (int64_t r = 0; r < spec.R; ++r)
                            for (int64_t s = 0; s < spec.S; ++s) {
                                int64_t h = i * spec.stride + r - spec.pad;
                                int64_t w = j * spec.stride + s - spec.pad;
                                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                                dx(n, c, h, w) += weight(k, c, r, s) * g;
                            }
                }
}

// Reference weight and bias gradients, summed over the batch:
//   dw[k,c,r,s] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i*stride+r-pad, j*stride+s-pad]
//   db[k] = sum_{n,i,j} dy[n,k,i,j]
// ASSIGNS dweight (K C R S) and dbias (K values; nullptr skips it).
template <class T>
void conv2d_backward_weight_reference(const Conv2dSpec& spec, ConstTensorView<T> x,
                                      ConstTensorView<T> dy, TensorView<T> dweight, T* dbias) {
    const char* what = "conv2d_backward_weight_reference";
    detail::conv2d_check_input(what, spec, "input", x, ConstTensorView<T>(dweight));
    detail::conv2d_check_output(what, spec, x, "dy", dy);
    const int64_t H = x.h(), W = x.w(), OH = dy.h(), OW = dy.w();
    for (int64_t k = 0; k < spec.K; ++k) {
        for (int64_t c = 0; c < spec.C; ++c)
            for (int64_t r = 0; r < spec.R; ++r)
                for (int64_t s = 0; s < spec.S; ++s) {
                    T sum = 0;
                    for (int64_t n = 0; n < x.n(); ++n)
                        for (int64_t i = 0; i < OH; ++i)
                            for (int64_t j = 0; j < OW; ++j) {
                                int64_t h = i * spec.stride + r - spec.pad;
                                int64_t w = j * spec.stride + s - spec.pad;
                                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                                sum += dy(n, k, i, j) * x(n, c, h, w);
                            }
                    dweight(k, c, r, s) = sum;
                }
        if (dbias) {
            T sum = 0;
            for (int64_t n = 0; n < x.n(); ++n)
                for (int64_t i = 0; i < OH; ++i)
                    for (int64_t j = 0; j < OW; ++j) sum += dy(n, k, i, j);
            dbias[k] = sum;
        }
    }
}

}  // namespace unetpp
