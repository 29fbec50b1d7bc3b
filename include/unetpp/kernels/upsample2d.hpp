#pragma once
// Bilinear 2x upsampling, align_corners=false: the parameter-free decoder upsampling, matching
// PyTorch's nn.Upsample(scale_factor=2, mode="bilinear") and F.interpolate with
// align_corners=False.
//
// Output pixel o samples the input at s = max(0, (o + 0.5) / 2 - 0.5) along each axis, between
// i0 = floor(s) and i1 = min(i0 + 1, L - 1) with weights 1 - (s - i0) and s - i0:
//   y[n,c,oh,ow] = sum_{a,b in {0,1}} lh_a lw_b x[n,c,h_a,w_b]
// With scale 2 the weights are always 1/4 and 3/4, so along one axis of length L:
//   out[2i]   = 1/4 in[max(i-1, 0)] + 3/4 in[i]
//   out[2i+1] = 3/4 in[i]           + 1/4 in[min(i+1, L-1)]
// and the fast path applies that separably (rows, then columns); backward is its adjoint.
//
//   x  N C H W,  y  N C 2H 2W   (contiguous)
//
// Backward ADDS into dx. Every (n, c) plane is owned by one parallel iteration.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

template <class T>
void upsample2d_check(const char* fn, const ConstTensorView<T>& x, const ConstTensorView<T>& y,
                      const char* xn, const char* yn) {
    if (x.rank() != 4) {
        throw ShapeError(concat(fn, ": ", xn, " must be N C H W (rank 4), got shape ",
                                x.shape().str()));
    }
    shape_check(concat(fn, ": ", yn, " (N C 2H 2W)").c_str(), y.shape(),
                Shape{x.n(), x.c(), 2 * x.h(), 2 * x.w()});
    contiguous_check(concat(fn, ": ", xn).c_str(), x);
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
}

// PyTorch's source index for align_corners=false at scale 2: lower index, upper index and the
// weight of the upper one.
struct BilinearTap {
    int64_t lo, hi;
    double frac;
};
inline BilinearTap bilinear_tap(int64_t o, int64_t length) {
    const double s = std::max(0.0, (double(o) + 0.5) * 0.5 - 0.5);
    const int64_t lo = std::min(static_cast<int64_t>(std::floor(s)), length - 1);
    return {lo, std::min(lo + 1, length - 1), s - double(lo)};
}

// One axis, forward: ASSIGNS out (2L values) from in (L values). The clamped ends are peeled
// off so that the interior loop has no min/max indices and vectorises.
template <class T>
void upsample_line(int64_t L, const T* in, T* out) {
    const T q = T(0.25), t = T(0.75);
    const int64_t last = L - 1;
    out[0] = q * in[0] + t * in[0];
    for (int64_t i = 1; i < L; ++i) out[2 * i] = q * in[i - 1] + t * in[i];
    for (int64_t i = 0; i < last; ++i) out[2 * i + 1] = t * in[i] + q * in[i + 1];
    out[2 * last + 1] = t * in[last] + q * in[last];
}

// One axis, adjoint: in[i] gets the 1/4, 3/4 weights of every out that read it. ASSIGNS in.
template <class T>
void upsample_line_adjoint(int64_t L, const T* out, T* in) {
    const T q = T(0.25), t = T(0.75);
    if (L == 1) {
        in[0] = t * (out[0] + out[1]) + q * (out[0] + out[1]);
        return;
    }
    in[0] = t * (out[0] + out[1]) + q * (out[0] + out[2]);
    for (int64_t i = 1; i + 1 < L; ++i) {
        in[i] = t * (out[2 * i] + out[2 * i + 1]) + q * (out[2 * i - 1] + out[2 * i + 2]);
    }
    in[L - 1] = t * (out[2 * L - 2] + out[2 * L - 1]) + q * (out[2 * L - 3] + out[2 * L - 1]);
}

}  // namespace detail

// Scalar reference, straight from PyTorch's index formula. ASSIGNS y.
template <class T>
void upsample2d_bilinear_forward_reference(ConstTensorView<T> x, TensorView<T> y) {
    detail::upsample2d_check<T>("upsample2d_bilinear_forward_reference", x, ConstTensorView<T>(y),
                             "x", "y");
    for (int64_t n = 0; n < y.n(); ++n)
        for (int64_t c = 0; c < y.c(); ++c)
            for (int64_t oh = 0; oh < y.h(); ++oh)
                for (int64_t ow = 0; ow < y.w(); ++ow) {
                    const auto th = detail::bilinear_tap(oh, x.h());
                    const auto tw = detail::bilinear_tap(ow, x.w());
                    const T h1 = T(th.frac), h0 = T(1) - h1, w1 = T(tw.frac), w0 = T(1) - w1;
                    const T top = w0 * x(n, c, th.lo, tw.lo) + w1 * x(n, c, th.lo, tw.hi);
                    const T bottom = w0 * x(n, c, th.hi, tw.lo) + w1 * x(n, c, th.hi, tw.hi);
                    y(n, c, oh, ow) = h0 * top + h1 * bottom;
                }
}

// Scalar reference: scatters each dy back with the forward weights. ADDS into dx.
template <class T>
void upsample2d_bilinear_backward_reference(ConstTensorView<T> dy, TensorView<T> dx) {
    detail::upsample2d_check<T>("upsample2d_bilinear_backward_reference",
                                ConstTensorView<T>(dx), dy, "dx", "dy");
    for (int64_t n = 0; n < dy.n(); ++n)
        for (int64_t c = 0; c < dy.c(); ++c)
            for (int64_t oh = 0; oh < dy.h(); ++oh)
                for (int64_t ow = 0; ow < dy.w(); ++ow) {
                    const auto th = detail::bilinear_tap(oh, dx.h());
                    const auto tw = detail::bilinear_tap(ow, dx.w());
                    const T h1 = T(th.frac), h0 = T(1) - h1, w1 = T(tw.frac), w0 = T(1) - w1;
                    const T g = dy(n, c, oh, ow);
                    dx(n, c, th.lo, tw.lo) += h0 * w0 * g;
                    dx(n, c, th.lo, tw.hi) += h0 * w1 * g;
                    dx(n, c, th.hi, tw.lo) += h1 * w0 * g;
                    dx(n, c, th.hi, tw.hi) += h1 * w1 * g;
                }
}

// ASSIGNS y (N C 2H 2W) = bilinear 2x upsampling of x (N C H W). Parallel over planes.
template <class T>
void upsample2d_bilinear_forward(ConstTensorView<T> x, TensorView<T> y) {
    detail::upsample2d_check<T>("upsample2d_bilinear_forward", x, ConstTensorView<T>(y), "x", "y");
    const int64_t H = x.h(), W = x.w();
    const T q = T(0.25), t = T(0.75);
    parallel_for(0, x.n() * x.c(), [&](int64_t p) {
        const T* in = x.data() + p * H * W;
        T* out = y.data() + p * 4 * H * W;
        thread_local std::vector<T> row;
        row.resize(static_cast<std::size_t>(W));
        for (int64_t oh = 0; oh < 2 * H; ++oh) {
            // 1. blend the two source rows, then 2. upsample the blend along W
            const int64_t i = oh / 2;
            const T* near = in + i * W;
            const T* far = in + (oh % 2 == 0 ? std::max<int64_t>(i - 1, 0)
                                             : std::min(i + 1, H - 1)) * W;
            for (int64_t w = 0; w < W; ++w) row[w] = t * near[w] + q * far[w];
            detail::upsample_line(W, row.data(), out + oh * 2 * W);
        }
    });
}

// Input gradient. ADDS the adjoint of the upsampling of dy (N C 2H 2W) into dx (N C H W).
// Parallel over planes.
template <class T>
void upsample2d_bilinear_backward(ConstTensorView<T> dy, TensorView<T> dx) {
    detail::upsample2d_check<T>("upsample2d_bilinear_backward", ConstTensorView<T>(dx), dy, "dx",
                             "dy");
    const int64_t H = dx.h(), W = dx.w();
    const T q = T(0.25), t = T(0.75);
    parallel_for(0, dx.n() * dx.c(), [&](int64_t p) {
        const T* g = dy.data() + p * 4 * H * W;
        T* d = dx.data() + p * H * W;
        // 1. adjoint along W: cols[oh] holds the W-axis adjoint of output row oh
        thread_local std::vector<T> cols;
        cols.resize(static_cast<std::size_t>(2 * H * W));
        for (int64_t oh = 0; oh < 2 * H; ++oh) {
            detail::upsample_line_adjoint(W, g + oh * 2 * W, cols.data() + oh * W);
        }
        // 2. adjoint along H, added into dx row by row
        for (int64_t i = 0; i < H; ++i) {
            const T* even = cols.data() + 2 * i * W;
            const T* odd = even + W;
            const T* left = cols.data() + (i > 0 ? 2 * i - 1 : 0) * W;
            const T* right = cols.data() + (i + 1 < H ? 2 * i + 2 : 2 * H - 1) * W;
            for (int64_t w = 0; w < W; ++w) {
                d[i * W + w] += t * (even[w] + odd[w]) + q * (left[w] + right[w]);
            }
        }
    });
}

}  // namespace unetpp
