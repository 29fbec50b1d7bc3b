#pragma once
// Max pooling, 2x2 window, stride 2: the U-Net encoder's downsampling.
//
//   y[n,c,i,j] = max_{r,s in {0,1}} x[n,c,2i+r,2j+s]
//   argmax[n,c,i,j] = (2i+r*) * W + (2j+s*)   flat index of the max inside its input plane
//
//   x       N C H W           (contiguous)
//   y       N C H/2 W/2       (contiguous; floor division)
//   argmax  N*C*(H/2)*(W/2)   int32, same order as y
//
// Odd H or W: the last row or column is dropped (floor), as PyTorch's MaxPool2d with
// ceil_mode=false. Ties go to the first maximum in row-major order, (2i,2j) before (2i,2j+1)
// before (2i+1,2j) before (2i+1,2j+1), as PyTorch's CPU kernel. NaN inputs are not propagated.
//
// Backward sends each output gradient to the single input element recorded in argmax.

#include <cstdint>
#include <limits>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

// Checks x (N C H W, H and W >= 2) and y (N C H/2 W/2); both contiguous.
template <class T>
void maxpool2d_check(const char* fn, const ConstTensorView<T>& x, const ConstTensorView<T>& y,
                     const char* xn, const char* yn) {
    if (x.rank() != 4) {
        throw ShapeError(concat(fn, ": ", xn, " must be N C H W (rank 4), got shape ",
                                x.shape().str()));
    }
    if (x.h() < 2 || x.w() < 2) {
        throw ShapeError(concat(fn, ": ", xn, " of shape ", x.shape().str(),
                                " is smaller than the 2x2 window (need H >= 2 and W >= 2)"));
    }
    shape_check(concat(fn, ": ", yn, " (N C H/2 W/2)").c_str(), y.shape(),
                Shape{x.n(), x.c(), x.h() / 2, x.w() / 2});
    contiguous_check(concat(fn, ": ", xn).c_str(), x);
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
    if (x.h() * x.w() > int64_t(std::numeric_limits<int32_t>::max())) {
        throw ShapeError(concat(fn, ": a plane of ", x.h(), "x", x.w(),
                                " elements does not fit the int32 argmax"));
    }
}

// One plane: y (Ho x Wo) and argmax from x (H x W), rows of x W apart.
template <class T>
void maxpool2d_plane(const T* x, int64_t W, int64_t Ho, int64_t Wo, T* y, int32_t* argmax) {
    for (int64_t i = 0; i < Ho; ++i) {
        const T* row0 = x + 2 * i * W;
        const T* row1 = row0 + W;
        for (int64_t j = 0; j < Wo; ++j) {
            // Strict '>' keeps the earlier element on ties.
            T best = row0[2 * j];
            int64_t at = 2 * i * W + 2 * j;
            if (row0[2 * j + 1] > best) {
                best = row0[2 * j + 1];
                at = 2 * i * W + 2 * j + 1;
            }
            if (row1[2 * j] > best) {
                best = row1[2 * j];
                at = (2 * i + 1) * W + 2 * j;
            }
            if (row1[2 * j + 1] > best) {
                best = row1[2 * j + 1];
                at = (2 * i + 1) * W + 2 * j + 1;
            }
            y[i * Wo + j] = best;
            argmax[i * Wo + j] = static_cast<int32_t>(at);
        }
    }
}

}  // namespace detail

// Scalar reference. ASSIGNS y and argmax (resized to y.numel()).
template <class T>
void maxpool2d_forward_reference(ConstTensorView<T> x, TensorView<T> y,
                                 std::vector<int32_t>& argmax) {
    detail::maxpool2d_check<T>("maxpool2d_forward_reference", x, ConstTensorView<T>(y), "x", "y");
    argmax.assign(static_cast<std::size_t>(y.numel()), 0);
    int64_t out = 0;
    for (int64_t n = 0; n < y.n(); ++n)
        for (int64_t c = 0; c < y.c(); ++c)
            for (int64_t i = 0; i < y.h(); ++i)
                for (int64_t j = 0; j < y.w(); ++j, ++out) {
                    int64_t best_h = 2 * i, best_w = 2 * j;
                    for (int64_t h = 2 * i; h < 2 * i + 2; ++h)
                        for (int64_t w = 2 * j; w < 2 * j + 2; ++w)
                            if (x(n, c, h, w) > x(n, c, best_h, best_w)) {
                                best_h = h;
                                best_w = w;
                            }
                    y(n, c, i, j) = x(n, c, best_h, best_w);
                    argmax[out] = static_cast<int32_t>(best_h * x.w() + best_w);
                }
}

// Scalar reference. ADDS dy[n,c,i,j] into dx[n,c] at flat plane index argmax[n,c,i,j].
template <class T>
void maxpool2d_backward_reference(ConstTensorView<T> dy, const std::vector<int32_t>& argmax,
                                  TensorView<T> dx) {
    detail::maxpool2d_check<T>("maxpool2d_backward_reference", ConstTensorView<T>(dx), dy, "dx",
                            "dy");
    if (static_cast<int64_t>(argmax.size()) != dy.numel()) {
        throw ShapeError(detail::concat("maxpool2d_backward_reference: argmax has ", argmax.size(),
                                        " entries, dy has ", dy.numel(), " elements"));
    }
    int64_t out = 0;
    for (int64_t n = 0; n < dy.n(); ++n)
        for (int64_t c = 0; c < dy.c(); ++c)
            for (int64_t i = 0; i < dy.h(); ++i)
                for (int64_t j = 0; j < dy.w(); ++j, ++out) {
                    int64_t at = argmax[out];
                    dx(n, c, at / dx.w(), at % dx.w()) += dy(n, c, i, j);
                }
}

// ASSIGNS y (N C H/2 W/2) = 2x2 stride-2 max of x (N C H W) and argmax (resized to y.numel()):
// per output, the flat index h*W + w of its max inside the input plane. Parallel over planes.
template <class T>
void maxpool2d_forward(ConstTensorView<T> x, TensorView<T> y, std::vector<int32_t>& argmax) {
    detail::maxpool2d_check<T>("maxpool2d_forward", x, ConstTensorView<T>(y), "x", "y");
    argmax.resize(static_cast<std::size_t>(y.numel()));
    const int64_t in_plane = x.h() * x.w(), out_plane = y.h() * y.w();
    const T* xp = x.data();
    T* yp = y.data();
    int32_t* ap = argmax.data();
    parallel_for(0, x.n() * x.c(), [&](int64_t p) {
        detail::maxpool2d_plane(xp + p * in_plane, x.w(), y.h(), y.w(), yp + p * out_plane,
                                ap + p * out_plane);
    });
}

// Input gradient. ADDS dy into dx at the positions argmax recorded; dx is N C H W, dy N C H/2 W/2,
// argmax as written by maxpool2d_forward for this shape. Parallel over planes.
template <class T>
void maxpool2d_backward(ConstTensorView<T> dy, const std::vector<int32_t>& argmax,
                        TensorView<T> dx) {
    detail::maxpool2d_check<T>("maxpool2d_backward", ConstTensorView<T>(dx), dy, "dx", "dy");
    if (static_cast<int64_t>(argmax.size()) != dy.numel()) {
        throw ShapeError(detail::concat("maxpool2d_backward: argmax has ", argmax.size(),
                                        " entries, dy has ", dy.numel(),
                                        " elements (pass the argmax of the matching forward)"));
    }
    const int64_t in_plane = dx.h() * dx.w(), out_plane = dy.h() * dy.w();
    const T* dyp = dy.data();
    T* dxp = dx.data();
    const int32_t* ap = argmax.data();
    parallel_for(0, dx.n() * dx.c(), [&](int64_t p) {
        T* dx_plane = dxp + p * in_plane;
        const int32_t* a = ap + p * out_plane;
        const T* g = dyp + p * out_plane;
        for (int64_t o = 0; o < out_plane; ++o) {
            if (a[o] < 0 || a[o] >= in_plane) {
                throw ShapeError(detail::concat("maxpool2d_backward: argmax ", a[o], " at plane ",
                                                p, " lies outside the ", dx.h(), "x", dx.w(),
                                                " input plane (argmax from another shape?)"));
            }
            dx_plane[a[o]] += g[o];
        }
    });
}

}  // namespace unetpp
