#pragma once
// Transposed convolution with a 2x2 kernel and stride 2: the U-Net decoder's learned upsampling.
//
//   y[n,k,2i+r,2j+s] = b[k] + sum_c w[c,k,r,s] * x[n,c,i,j]        r, s in {0, 1}
//
//   x       N C H W        (contiguous)
//   weight  C K 2 2        (PyTorch's nn.ConvTranspose2d layout)
//   bias    K              (or nullptr: no bias)
//   y       N K 2H 2W      (contiguous)
//
// With kernel size equal to stride, the output windows of different input pixels never overlap, so
// each image is one GEMM and a scatter:
//   Y'[(k,r,s), (i,j)] = sum_c W[c, (k,r,s)] * X[c, (i,j)]     (M = 4K, N = H W, depth C)
// and y[k, 2i+r, 2j+s] = Y'[(k,r,s), (i,j)] + b[k]. The backward passes are the same GEMM turned
// around on the gathered output gradient G[(k,r,s), (i,j)] = dy[k, 2i+r, 2j+s]:
//   dX[c, (i,j)]     += sum_{(k,r,s)} W[c, (k,r,s)] * G[(k,r,s), (i,j)]
//   dW[c, (k,r,s)]    = sum_n sum_{(i,j)} X_n[c, (i,j)] * G_n[(k,r,s), (i,j)]
//   db[k]             = sum_{n, h, w} dy[n,k,h,w]
//
// Only kernel 2x2, stride 2, no padding and no output padding are supported: that is the only
// transposed convolution a U-Net decoder uses. Other kernels would overlap output windows and need
// a col2im accumulation instead of the scatter.
//
// Each function has a plain scalar *_reference twin that the tests compare against.

#include <cstdint>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/kernels/bias.hpp"
#include "unetpp/kernels/gemm.hpp"
#include "unetpp/kernels/scratch.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// Channels of a 2x2 stride-2 transposed convolution: C in, K out.
struct ConvTranspose2dSpec {
    int64_t C = 0;
    int64_t K = 0;
};

namespace detail {

// Checks x (N C H W), weight (C K 2 2) and y (N K 2H 2W) against the spec; all contiguous.
// xn and yn name x and y in messages ("x"/"y" or "dx"/"dy").
template <class T>
void conv_transpose2d_check(const char* fn, const ConvTranspose2dSpec& spec,
                            const ConstTensorView<T>& x, const ConstTensorView<T>& weight,
                            const ConstTensorView<T>& y, const char* xn = "x",
                            const char* yn = "y") {
    if (spec.C <= 0 || spec.K <= 0) {
        throw ShapeError(concat(fn, ": spec needs positive channel counts, got C=", spec.C,
                                " K=", spec.K));
    }
    if (x.rank() != 4) {
        throw ShapeError(concat(fn, ": ", xn, " must be N C H W (rank 4), got shape ",
                                x.shape().str()));
    }
    if (x.c() != spec.C) {
        throw ShapeError(concat(fn, ": ", xn, " has ", x.c(), " channels, spec expects C=", spec.C,
                                " (shape ", x.shape().str(), ")"));
    }
    shape_check(concat(fn, ": weight (C K 2 2)").c_str(), weight.shape(),
                Shape{spec.C, spec.K, 2, 2});
    shape_check(concat(fn, ": ", yn, " (N K 2H 2W)").c_str(), y.shape(),
                Shape{x.n(), spec.K, 2 * x.h(), 2 * x.w()});
    contiguous_check(concat(fn, ": ", xn).c_str(), x);
    contiguous_check(concat(fn, ": weight").c_str(), weight);
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Scalar references: direct loops over the formula above.

// ASSIGNS y = conv_transpose(x) + bias. bias may be nullptr.
template <class T>
void conv_transpose2d_forward_reference(const ConvTranspose2dSpec& spec, ConstTensorView<T> x,
                                        ConstTensorView<T> weight, const T* bias,
                                        TensorView<T> y) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_forward_reference", spec, x, weight, y);
    for (int64_t n = 0; n < y.n(); ++n)
        for (int64_t k = 0; k < spec.K; ++k)
            for (int64_t oh = 0; oh < y.h(); ++oh)
                for (int64_t ow = 0; ow < y.w(); ++ow) {
                    T acc = bias ? bias[k] : T(0);
                    for (int64_t c = 0; c < spec.C; ++c) {
                        acc += weight(c, k, oh % 2, ow % 2) * x(n, c, oh / 2, ow / 2);
                    }
                    y(n, k, oh, ow) = acc;
                }
}

// ADDS into dx: dx[n,c,i,j] += sum_{k,r,s} w[c,k,r,s] * dy[n,k,2i+r,2j+s].
template <class T>
void conv_transpose2d_backward_data_reference(const ConvTranspose2dSpec& spec,
                                              ConstTensorView<T> dy, ConstTensorView<T> weight,
                                              TensorView<T> dx) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_data_reference", spec, dx,
                                      weight, dy, "dx", "dy");
    for (int64_t n = 0; n < dx.n(); ++n)
        for (int64_t c = 0; c < spec.C; ++c)
            for (int64_t i = 0; i < dx.h(); ++i)
                for (int64_t j = 0; j < dx.w(); ++j) {
                    T acc = 0;
                    for (int64_t k = 0; k < spec.K; ++k)
                        for (int64_t r = 0; r < 2; ++r)
                            for (int64_t s = 0; s < 2; ++s)
                                acc += weight(c, k, r, s) * dy(n, k, 2 * i + r, 2 * j + s);
                    dx(n, c, i, j) += acc;
                }
}

// ASSIGNS dweight[c,k,r,s] = sum_{n,i,j} x[n,c,i,j] * dy[n,k,2i+r,2j+s] and, when dbias is not
// nullptr, dbias[k] = sum_{n,h,w} dy[n,k,h,w].
template <class T>
void conv_transpose2d_backward_weight_reference(const ConvTranspose2dSpec& spec,
                                                ConstTensorView<T> x, ConstTensorView<T> dy,
                                                TensorView<T> dweight, T* dbias) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_weight_reference", spec, x,
                                      dweight, dy, "x", "dy");
    // 1. weight gradient
    for (int64_t c = 0; c < spec.C; ++c)
        for (int64_t k = 0; k < spec.K; ++k)
            for (int64_t r = 0; r < 2; ++r)
                for (int64_t s = 0; s < 2; ++s) {
                    T acc = 0;
                    for (int64_t n = 0; n < x.n(); ++n)
                        for (int64_t i = 0; i < x.h(); ++i)
                            for (int64_t j = 0; j < x.w(); ++j)
                                acc += x(n, c, i, j) * dy(n, k, 2 * i + r, 2 * j + s);
                    dweight(c, k, r, s) = acc;
                }

    // 2. bias gradient
    if (dbias == nullptr) return;
    for (int64_t k = 0; k < spec.K; ++k) {
        T acc = 0;
        for (int64_t n = 0; n < dy.n(); ++n)
            for (int64_t h = 0; h < dy.h(); ++h)
                for (int64_t w = 0; w < dy.w(); ++w) acc += dy(n, k, h, w);
        dbias[k] = acc;
    }
}

// ---------------------------------------------------------------------------------------------
// Fast path: per image one GEMM against the weight matrix plus a scatter or gather. Scratch for
// Y' and G comes from ScratchSlot::kConvColumns, so a steady-state loop does not allocate.

namespace detail {

// y[k, 2i+r, 2j+s] = yp[(4k + 2r + s), (i W + j)] + b[k]: the forward scatter of one image.
template <class T>
void conv_transpose2d_scatter(int64_t K, int64_t H, int64_t W, const T* yp, const T* bias, T* y) {
    const int64_t hw = H * W;
    for (int64_t k = 0; k < K; ++k) {
        const T b = bias ? bias[k] : T(0);
        for (int64_t r = 0; r < 2; ++r) {
            const T* s0 = yp + (4 * k + 2 * r) * hw;  // s = 0 plane
            const T* s1 = s0 + hw;                     // s = 1 plane
            for (int64_t i = 0; i < H; ++i) {
                T* out = y + (k * 2 * H + 2 * i + r) * 2 * W;
                const T* a = s0 + i * W;
                const T* c = s1 + i * W;
                for (int64_t j = 0; j < W; ++j) {
                    out[2 * j] = a[j] + b;
                    out[2 * j + 1] = c[j] + b;
                }
            }
        }
    }
}

// g[(4k + 2r + s), (i W + j)] = dy[k, 2i+r, 2j+s]: the gather of one image's output gradient.
template <class T>
void conv_transpose2d_gather(int64_t K, int64_t H, int64_t W, const T* dy, T* g) {
    const int64_t hw = H * W;
    for (int64_t k = 0; k < K; ++k) {
        for (int64_t r = 0; r < 2; ++r) {
            T* s0 = g + (4 * k + 2 * r) * hw;
            T* s1 = s0 + hw;
            for (int64_t i = 0; i < H; ++i) {
                const T* in = dy + (k * 2 * H + 2 * i + r) * 2 * W;
                T* a = s0 + i * W;
                T* c = s1 + i * W;
                for (int64_t j = 0; j < W; ++j) {
                    a[j] = in[2 * j];
                    c[j] = in[2 * j + 1];
                }
            }
        }
    }
}

// Runs body(n) for every image: one image per thread when there are enough images, else image
// after image with each GEMM splitting its columns over the threads. Either way every output is
// computed by the same sequence of operations, so results do not depend on the thread count.
template <class Body>
void conv_transpose2d_per_image(int64_t N, Body&& body) {
    if (N >= num_threads()) {
        parallel_for(0, N, body);
        return;
    }
    for (int64_t n = 0; n < N; ++n) body(n);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public kernels. Contracts as the references; y, dx and dweight must not alias the inputs.

// ASSIGNS y (N K 2H 2W) = transposed convolution of x (N C H W) plus bias (K, or nullptr).
template <class T>
void conv_transpose2d_forward(const ConvTranspose2dSpec& spec, ConstTensorView<T> x,
                              ConstTensorView<T> weight, const T* bias, TensorView<T> y) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_forward", spec, x, weight, y);
    const int64_t C = spec.C, K = spec.K, H = x.h(), W = x.w(), hw = H * W;
    if (hw == 0) return;
    // Y'[4K, HW] = W[C, 4K]^T * X[C, HW]
    GemmSpec g;
    g.M = 4 * K, g.N = hw, g.K = C;
    g.lda = 4 * K, g.ldb = hw, g.ldc = hw;
    g.trans_a = true;
    detail::conv_transpose2d_per_image(x.n(), [&](int64_t n) {
        T* yp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * hw);
        gemm(g, weight.data(), x.data() + n * C * hw, yp);
        detail::conv_transpose2d_scatter(K, H, W, yp, bias, y.data() + n * K * 4 * hw);
    });
}

// Input gradient. ADDS into dx (N C H W); dy is N K 2H 2W.
template <class T>
void conv_transpose2d_backward_data(const ConvTranspose2dSpec& spec, ConstTensorView<T> dy,
                                    ConstTensorView<T> weight, TensorView<T> dx) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_data", spec, dx, weight, dy,
                                      "dx", "dy");
    const int64_t C = spec.C, K = spec.K, H = dx.h(), W = dx.w(), hw = H * W;
    if (hw == 0) return;
    // dX[C, HW] += W[C, 4K] * G[4K, HW]
    GemmSpec g;
    g.M = C, g.N = hw, g.K = 4 * K;
    g.lda = 4 * K, g.ldb = hw, g.ldc = hw;
    g.accumulate = true;
    detail::conv_transpose2d_per_image(dx.n(), [&](int64_t n) {
        T* gp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * hw);
        detail::conv_transpose2d_gather(K, H, W, dy.data() + n * K * 4 * hw, gp);
        gemm(g, weight.data(), gp, dx.data() + n * C * hw);
    });
}

// Weight and bias gradients. ASSIGNS dweight (C K 2 2) and, unless nullptr, dbias (K).
template <class T>
void conv_transpose2d_backward_weight(const ConvTranspose2dSpec& spec, ConstTensorView<T> x,
                                      ConstTensorView<T> dy, TensorView<T> dweight, T* dbias) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_weight", spec, x, dweight, dy,
                                      "x", "dy");
    const int64_t C = spec.C, K = spec.K, H = x.h(), W = x.w(), hw = H * W;

    // 1. weight gradient: dW[C, 4K] = sum_n X_n[C, HW] * G_n[4K, HW]^T, images in order
    if (x.n() == 0 || hw == 0) {
        tensor_fill(dweight, T(0));
    }
    GemmSpec g;
    g.M = C, g.N = 4 * K, g.K = hw;
    g.lda = hw, g.ldb = hw, g.ldc = 4 * K;
    g.trans_b = true;
    for (int64_t n = 0; n < x.n() && hw > 0; ++n) {
        T* gp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * hw);
        const T* dyn = dy.data() + n * K * 4 * hw;
        parallel_for(0, K, [&](int64_t k) {
            detail::conv_transpose2d_gather(int64_t(1), H, W, dyn + k * 4 * hw, gp + k * 4 * hw);
        });
        g.accumulate = n > 0;
        gemm(g, x.data() + n * C * hw, gp, dweight.data());
    }

    // 2. bias gradient
    if (dbias != nullptr) bias_backward(dy, dbias);
}

}  // namespace unetpp
