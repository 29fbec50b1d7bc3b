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
//
// Known gaps (speed): the GEMM writes Y' to scratch and a second pass scatters it into y; for the
// C = 32, K = 16 layer (64 FLOPs per output) that round trip costs about as much as the GEMM
// (60% of peak, see docs/benchmarks.md). Remove once a microkernel stores the s = 0/1 pair
// interleaved straight into y.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/kernels/bias.hpp"
#include "unetpp/kernels/gemm.hpp"
#include "unetpp/kernels/scratch.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"
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
// Fast path. Forward and backward-data cut the batch into work units of a few hundred GEMM
// columns: a band of input rows of one image, or several whole small images side by side (so the
// weight matrix is packed once per unit, not once per 8x8 image). Each unit is one GEMM plus a
// scatter or gather that stays in cache, and units run in parallel. Backward-weight sums the
// units' products into a fixed number of partial sums. Scratch comes from scratch.hpp, so a
// steady-state loop does not allocate.

namespace detail {

// Forward and backward-data: the unit's 4K x columns block of Y' or G (128 KiB) stays in L2.
constexpr int64_t kConvTransposeUnitFloats = 32768;
inline int64_t conv_transpose2d_data_columns(int64_t K) {
    return std::max<int64_t>(256, kConvTransposeUnitFloats / (4 * K));
}
// Backward-weight: at least 1024 columns per unit, so that each unit's C x 4K partial product
// is small next to the inputs it reads (8x8 decoder images would otherwise add a full dW per
// image).
inline int64_t conv_transpose2d_weight_columns(int64_t K) {
    return std::max<int64_t>(1024, conv_transpose2d_data_columns(K));
}

// Partial weight-gradient sums: up to this many groups of units run in parallel.
constexpr int64_t kConvTransposeWeightGroups = 8;

// How the batch is cut into units: `images` whole images per unit (small images) or, with
// images == 1, bands of `rows` input rows.
struct ConvTranspose2dUnits {
    int64_t images = 1, rows = 0, bands = 1, count = 0;

    // Units of about `target` GEMM columns.
    ConvTranspose2dUnits(int64_t N, int64_t H, int64_t W, int64_t target) {
        if (H * W >= target) {
            rows = std::max<int64_t>(1, target / W);
            bands = (H + rows - 1) / rows;
            count = N * bands;
        } else {
            images = std::min(N, std::max<int64_t>(1, target / (H * W)));
            rows = H;
            count = (N + images - 1) / images;
        }
    }
    // Unit u covers images [n0, n0 + g) and, of each, input rows [i0, i0 + r).
    void locate(int64_t u, int64_t N, int64_t H, int64_t& n0, int64_t& g, int64_t& i0,
                int64_t& r) const {
        if (images > 1 || bands == 1) {
            n0 = u * images, g = std::min(images, N - n0), i0 = 0, r = H;
        } else {
            n0 = u / bands, g = 1, i0 = (u % bands) * rows, r = std::min(rows, H - i0);
        }
    }
};

// A unit's input X[C, cols] as a matrix: in place for a band of one image (rows hw apart),
// or the g small images copied side by side into scratch (rows cols apart). Sets ld.
template <class T>
const T* conv_transpose2d_unit_input(const T* x, int64_t C, int64_t hw, int64_t n0, int64_t g,
                                     int64_t i0, int64_t W, int64_t cols, int64_t& ld) {
    const T* xb = x + n0 * C * hw + i0 * W;
    ld = hw;
    if (g == 1) return xb;
    T* xs = scratch<T>(ScratchSlot::kConvPartial, C * cols);
    for (int64_t m = 0; m < g; ++m)
        for (int64_t c = 0; c < C; ++c)
            std::copy_n(xb + (m * C + c) * hw, hw, xs + c * cols + m * hw);
    ld = cols;
    return xs;
}

// y[k, 2(i0+i)+r, 2j+s] = yp[(4k + 2r + s), i W + j] + b[k] for i < rows: scatters one image's
// band of Y' (rows ld apart) into y (one image, K x 2H x 2W).
template <class T>
void conv_transpose2d_scatter(int64_t K, int64_t H, int64_t W, int64_t i0, int64_t rows,
                              const T* yp, int64_t ld, const T* bias, T* y) {
    for (int64_t k = 0; k < K; ++k) {
        const T b = bias ? bias[k] : T(0);
        for (int64_t r = 0; r < 2; ++r) {
            const T* s0 = yp + (4 * k + 2 * r) * ld;  // s = 0
            const T* s1 = s0 + ld;                     // s = 1
            for (int64_t i = 0; i < rows; ++i) {
                T* out = y + (k * 2 * H + 2 * (i0 + i) + r) * 2 * W;
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

// g[(4k + 2r + s), i W + j] = dy[k, 2(i0+i)+r, 2j+s] for i < rows: gathers a band of one image's
// output gradient (K x 2H x 2W) into G (rows ld apart). The inverse of the scatter.
template <class T>
void conv_transpose2d_gather(int64_t K, int64_t H, int64_t W, int64_t i0, int64_t rows,
                             const T* dy, T* g, int64_t ld) {
    for (int64_t k = 0; k < K; ++k) {
        for (int64_t r = 0; r < 2; ++r) {
            T* s0 = g + (4 * k + 2 * r) * ld;
            T* s1 = s0 + ld;
            for (int64_t i = 0; i < rows; ++i) {
                const T* in = dy + (k * 2 * H + 2 * (i0 + i) + r) * 2 * W;
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

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public kernels. Contracts as the references; y, dx and dweight must not alias the inputs.

// ASSIGNS y (N K 2H 2W) = transposed convolution of x (N C H W) plus bias (K, or nullptr).
template <class T>
void conv_transpose2d_forward(const ConvTranspose2dSpec& spec, ConstTensorView<T> x,
                              ConstTensorView<T> weight, const T* bias, TensorView<T> y) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_forward", spec, x, weight, y);
    const int64_t N = x.n(), C = spec.C, K = spec.K, H = x.h(), W = x.w(), hw = H * W;
    if (N == 0 || hw == 0) return;
    const detail::ConvTranspose2dUnits units(N, H, W, detail::conv_transpose2d_data_columns(K));
    parallel_for(0, units.count, [&](int64_t u) {
        int64_t n0, g, i0, rows;
        units.locate(u, N, H, n0, g, i0, rows);
        const int64_t cols = g * rows * W;

        // 1. the unit's X[C, cols]: a band of one image in place, or small images copied
        int64_t ldb = 0;
        const T* xb =
            detail::conv_transpose2d_unit_input(x.data(), C, hw, n0, g, i0, W, cols, ldb);

        // 2. Y'[4K, cols] = W[C, 4K]^T * X[C, cols]
        T* yp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * cols);
        GemmSpec gs;
        gs.M = 4 * K, gs.N = cols, gs.K = C;
        gs.lda = 4 * K, gs.ldb = ldb, gs.ldc = cols;
        gs.trans_a = true;
        gemm(gs, weight.data(), xb, yp);

        // 3. scatter each image's part into y, adding the bias
        for (int64_t m = 0; m < g; ++m) {
            detail::conv_transpose2d_scatter(K, H, W, i0, rows, yp + m * rows * W, cols, bias,
                                             y.data() + (n0 + m) * K * 4 * hw);
        }
    });
}

// Input gradient. ADDS into dx (N C H W); dy is N K 2H 2W.
template <class T>
void conv_transpose2d_backward_data(const ConvTranspose2dSpec& spec, ConstTensorView<T> dy,
                                    ConstTensorView<T> weight, TensorView<T> dx) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_data", spec, dx, weight, dy,
                                      "dx", "dy");
    const int64_t N = dx.n(), C = spec.C, K = spec.K, H = dx.h(), W = dx.w(), hw = H * W;
    if (N == 0 || hw == 0) return;
    const detail::ConvTranspose2dUnits units(N, H, W, detail::conv_transpose2d_data_columns(K));
    parallel_for(0, units.count, [&](int64_t u) {
        int64_t n0, g, i0, rows;
        units.locate(u, N, H, n0, g, i0, rows);
        const int64_t cols = g * rows * W;

        // 1. gather the unit's G[4K, cols] from dy
        T* gp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * cols);
        for (int64_t m = 0; m < g; ++m) {
            detail::conv_transpose2d_gather(K, H, W, i0, rows, dy.data() + (n0 + m) * K * 4 * hw,
                                            gp + m * rows * W, cols);
        }

        // 2. dX[C, cols] += W[C, 4K] * G[4K, cols]: straight into dx for one image, else into
        // scratch and then added image by image
        GemmSpec gs;
        gs.M = C, gs.N = cols, gs.K = 4 * K;
        gs.lda = 4 * K, gs.ldb = cols;
        T* dxb = dx.data() + n0 * C * hw + i0 * W;
        if (g == 1) {
            gs.ldc = hw, gs.accumulate = true;
            gemm(gs, weight.data(), gp, dxb);
            return;
        }
        T* ds = scratch<T>(ScratchSlot::kConvPartial, C * cols);
        gs.ldc = cols;
        gemm(gs, weight.data(), gp, ds);
        for (int64_t m = 0; m < g; ++m)
            for (int64_t c = 0; c < C; ++c) {
                T* d = dxb + (m * C + c) * hw;
                simd::add(hw, d, ds + c * cols + m * hw, d);
            }
    });
}

// Weight and bias gradients. ASSIGNS dweight (C K 2 2) and, unless nullptr, dbias (K).
template <class T>
void conv_transpose2d_backward_weight(const ConvTranspose2dSpec& spec, ConstTensorView<T> x,
                                      ConstTensorView<T> dy, TensorView<T> dweight, T* dbias) {
    detail::conv_transpose2d_check<T>("conv_transpose2d_backward_weight", spec, x, dweight, dy,
                                      "x", "dy");
    const int64_t N = x.n(), C = spec.C, K = spec.K, H = x.h(), W = x.w(), hw = H * W;
    if (N == 0 || hw == 0) {
        tensor_fill(dweight, T(0));
        if (dbias != nullptr) bias_backward(dy, dbias);
        return;
    }

    // 1. weight gradient. Unit u (larger than forward's) adds X_u[C, cols] * G_u[4K, cols]^T
    // into the partial sum of group u % groups; groups run in parallel, then are summed in order.
    // The group count does not depend on the thread count, so neither does the result.
    const detail::ConvTranspose2dUnits units(N, H, W,
                                             detail::conv_transpose2d_weight_columns(K));
    const int64_t groups = std::min(units.count, detail::kConvTransposeWeightGroups);
    const int64_t dw_size = C * 4 * K;
    T* partial = scratch<T>(ScratchSlot::kConvWeights, (groups - 1) * dw_size);
    parallel_for(0, groups, [&](int64_t grp) {
        T* out = grp == 0 ? dweight.data() : partial + (grp - 1) * dw_size;
        for (int64_t u = grp; u < units.count; u += groups) {
            int64_t n0, g, i0, rows;
            units.locate(u, N, H, n0, g, i0, rows);
            const int64_t cols = g * rows * W;

            // 1a. the unit's X[C, cols] (in place for one image) and G[4K, cols]
            int64_t lda = 0;
            const T* xb =
                detail::conv_transpose2d_unit_input(x.data(), C, hw, n0, g, i0, W, cols, lda);
            T* gp = scratch<T>(ScratchSlot::kConvColumns, 4 * K * cols);
            for (int64_t m = 0; m < g; ++m) {
                detail::conv_transpose2d_gather(K, H, W, i0, rows,
                                                dy.data() + (n0 + m) * K * 4 * hw,
                                                gp + m * rows * W, cols);
            }

            // 1b. partial dW[C, 4K] (+)= X[C, cols] * G[4K, cols]^T
            GemmSpec gs;
            gs.M = C, gs.N = 4 * K, gs.K = cols;
            gs.lda = lda, gs.ldb = cols, gs.ldc = 4 * K;
            gs.trans_b = true;
            gs.accumulate = u != grp;
            gemm(gs, xb, gp, out);
        }
    });
    parallel_for(0, C, [&](int64_t c) {
        T* row = dweight.data() + c * 4 * K;
        for (int64_t grp = 1; grp < groups; ++grp) {
            simd::add(4 * K, row, partial + (grp - 1) * dw_size + c * 4 * K, row);
        }
    });

    // 2. bias gradient
    if (dbias != nullptr) bias_backward(dy, dbias);
}

}  // namespace unetpp
