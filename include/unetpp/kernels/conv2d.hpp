#pragma once
// 2-D convolution, fast path: lowered onto the packed GEMM (gemm.hpp).
//
//   forward:          y[n,k,i,j] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n,c,i*st+r-pad, j*st+s-pad]
//   backward data:    dx[n,c,h,w] += sum_{k,r,s} w[k,c,r,s] * dy[n,k,i,j]   (h = i*st+r-pad, ...)
//   backward weight:  dw[k,c,r,s] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i*st+r-pad, j*st+s-pad]
//                     db[k] = sum_{n,i,j} dy[n,k,i,j]
// Layouts: x N C H W, w K C R S, y N K OH OW (see conv2d_reference.hpp for the spec and checks).
//
// Lowering, per image (Chellapilla et al., "High performance convolutional neural networks for
// document processing", 2006): col[(c,r,s), (i,j)] is the im2col matrix (conv2d_im2col.hpp), so
//   forward          Y[K, OH*OW] = W[K, C*R*S] * col
//   backward data    stride 1 and pad <= R-1 (the U-Net's 3x3 pad 1): a forward convolution of dy
//                    with weights flipped in space and with C and K swapped, added into dx;
//                    otherwise col = W^T * dY, then col2im adds col into dx
//   backward weight  dW[K, C*R*S] = sum_n dY_n * col_n^T
// A 1x1, stride 1, pad 0 convolution skips im2col: x itself is the column matrix. On AVX-512
// and AVX2 builds, float 3x3 stride-1 pad-1 convolutions at least kDirectMinWidth wide (one
// vector: 16 or 8 pixels), or on AVX-512 exactly kDirectPairWidth wide, skip the lowering: the
// direct kernels of conv2d_direct.hpp compute their forward (and so their backward data) and
// their weight gradient (on AVX-512 the lanes kernel, for K = 16m and C >= 16, at any width).
//
// Threads: forward and backward data split (image, band of output pixels) work units over the
// threads. Backward weight by the GEMM splits the batch into a fixed number of groups
// (independent of the thread count), sums each group in image order into its own partial dW and
// adds the partials in group order; the direct kernels give each unit whole blocks of dW. Every
// result is bit-identical for any thread count.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "unetpp/kernels/activation.hpp"
#include "unetpp/kernels/conv2d_direct.hpp"
#include "unetpp/kernels/conv2d_im2col.hpp"
#include "unetpp/kernels/conv2d_reference.hpp"
#include "unetpp/kernels/fill.hpp"
#include "unetpp/kernels/gemm.hpp"
#include "unetpp/kernels/grad_write.hpp"
#include "unetpp/kernels/scratch.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"

namespace unetpp {
namespace detail {

// Batch groups for the weight gradient: fixed, so the summation order never depends on threads.
constexpr int64_t kConvWeightGroups = 4;

inline bool conv2d_is_pointwise(const Conv2dSpec& s) {
    return s.R == 1 && s.S == 1 && s.stride == 1 && s.pad == 0;
}

// Bytes of im2col columns one forward work unit lowers at a time: small enough to stay in L2
// next to the packed weights, large enough that the GEMM runs many 32-column strips per call.
constexpr int64_t kConvBandBytes = 256 * 1024;

// Output pixels per forward work unit for a layer with `crs` = C*R*S column rows: the whole
// image when its columns fit in kConvBandBytes, else a multiple of the microkernel's NR columns.
inline int64_t conv2d_band_pixels(int64_t crs, int64_t pixels, int64_t nr, int64_t elem_bytes) {
    const int64_t fit = kConvBandBytes / std::max<int64_t>(1, crs * elem_bytes);
    if (fit >= pixels) return pixels;
    return std::max<int64_t>(nr, fit / nr * nr);
}

// Forward over a batch: y (K x OH*OW per image) = [bias] + W * col(x), or y += W * col(x) when
// accumulate. W is packed once for all images. The work units are bands of output pixels of
// each image (conv2d_band_pixels), split over threads: a band is lowered by im2col into this
// thread's L2-sized scratch and its B panels are copied from there, so even a 16-channel
// 128x128 layer never streams a whole-image column matrix (9.4 MB) through memory, and one
// large image still keeps every thread busy. Each y element is one band's sum in a fixed k
// order, so results do not depend on the thread count.
template <class T>
void conv2d_forward_batch_gemm(const Conv2dSpec& s, const ConvGeometry& g, int64_t N, const T* x,
                               const T* w, const T* bias, T* y, bool accumulate,
                               bool relu = false) {
    using Kernel = typename GemmKernelFor<T>::type;
    constexpr int NR = Kernel::kNR;
    const int64_t crs = s.C * s.R * s.S, pixels = g.OH * g.OW;
    const int64_t x_size = s.C * g.H * g.W, y_size = s.K * pixels;
    const bool pointwise = conv2d_is_pointwise(s);
    const int64_t band = pointwise ? pixels : conv2d_band_pixels(crs, pixels, NR, sizeof(T));
    const int64_t bands = (pixels + band - 1) / band;

    // 1. pack the weights W[K, C*R*S] once for all images
    GemmSpec packed;
    packed.M = s.K, packed.N = pixels, packed.K = crs;
    packed.lda = crs;
    T* w_packed = scratch<T>(ScratchSlot::kConvPackedWeights, s.K * crs);
    gemm_pack_a_all(packed, w, Kernel::kMaxMR, w_packed);

    // 2. per (image, band): bias, im2col of the band, then the GEMM into y's band columns
    parallel_for(0, N * bands, [&](int64_t unit) {
        const int64_t n = unit / bands, p0 = unit % bands * band;
        const int64_t len = std::min(band, pixels - p0);
        const T* x_n = x + n * x_size;
        T* y_band = y + n * y_size + p0;
        if (bias && !accumulate) {
            for (int64_t k = 0; k < s.K; ++k) {
                std::fill(y_band + k * pixels, y_band + k * pixels + len, bias[k]);
            }
        }
        const T* col = x_n + p0;
        int64_t ld_col = pixels;
        if (!pointwise) {
            T* buffer = scratch<T>(ScratchSlot::kConvColumns, crs * len);
            for (int64_t row = 0; row < crs; ++row) {
                im2col_segment(s, g, x_n, row, p0, len, buffer + row * len);
            }
            col = buffer;
            ld_col = len;
        }
        GemmSpec mm = packed;
        mm.N = len;
        mm.ldb = ld_col, mm.ldc = pixels, mm.accumulate = accumulate || bias;
        auto pack = [&](int64_t k0, int64_t kc, int64_t j0, int64_t n_cols, T* dst) {
            for (int64_t kk = 0; kk < kc; ++kk) {
                gemm_pack_row<T, NR>(col + (k0 + kk) * ld_col + j0, n_cols, kk, kc, dst);
            }
        };
        gemm_prepacked(mm, w_packed, pack, y_band);
        if (relu) {  // while the band is still in cache; relu_forward's own primitive
            for (int64_t k = 0; k < s.K; ++k) {
                simd::max_scalar(len, y_band + k * pixels, T(0), y_band + k * pixels);
            }
        }
    });
}

// Output width from which the direct 3x3 kernel beats the GEMM lowering (bench_conv2d --algo
// all): one vector of its lanes (16 on AVX-512, 8 on AVX2), below which most lanes would be
// masked off. On AVX-512, images exactly kDirectPairWidth (8) wide take the direct kernel too,
// with two rows in each vector.
#if defined(UNETPP_CONV_DIRECT)
constexpr int64_t kDirectMinWidth = DirectKernel::kLanes;
#else
constexpr int64_t kDirectMinWidth = 16;
#endif
#if defined(UNETPP_SIMD_AVX512)
constexpr bool kDirectPairs = true;
#else
constexpr bool kDirectPairs = false;
#endif

// True when the direct forward (and so backward data) rather than the GEMM lowering should run
// this convolution.
template <class T>
bool conv2d_direct_preferred(const Conv2dSpec& s, const ConvGeometry& g) {
    return conv2d_direct_applies<T>(s) &&
           (g.OW >= kDirectMinWidth || (kDirectPairs && g.OW == kDirectPairWidth));
}

// The forward convolution of a batch by the fastest kernel this build has for it: the direct
// 3x3 kernel (conv2d_direct.hpp) where it applies, else the GEMM lowering. Same contract as
// conv2d_forward_batch_gemm.
template <class T>
void conv2d_forward_batch(const Conv2dSpec& s, const ConvGeometry& g, int64_t N, const T* x,
                          const T* w, const T* bias, T* y, bool accumulate, bool relu = false) {
#if defined(UNETPP_CONV_DIRECT)
    if constexpr (std::is_same<T, float>::value) {
        if (conv2d_direct_preferred<T>(s, g)) {
            conv2d_direct_forward_batch(s, N, g.H, g.W, x, w, bias, y, accumulate, relu);
            return;
        }
    }
#endif
    conv2d_forward_batch_gemm(s, g, N, x, w, bias, y, accumulate, relu);
}

// True when the input gradient is the forward convolution of dy with flipped weights (stride 1,
// square kernel, pad <= R-1, not pointwise); conv2d_flipped_spec is that convolution.
inline bool conv2d_backward_data_flips(const Conv2dSpec& s) {
    return s.stride == 1 && s.R == s.S && s.pad <= s.R - 1 && !conv2d_is_pointwise(s);
}
inline Conv2dSpec conv2d_flipped_spec(const Conv2dSpec& s) {
    return Conv2dSpec{s.K, s.C, s.R, s.S, 1, s.R - 1 - s.pad};
}

// w'[c,k,r,s] = w[k,c,R-1-r,S-1-s]: the weights of the convolution that maps dy to dx.
template <class T>
void conv2d_flip_weights(const Conv2dSpec& s, const T* w, T* flipped) {
    const int64_t rs = s.R * s.S;
    for (int64_t k = 0; k < s.K; ++k)
        for (int64_t c = 0; c < s.C; ++c)
            for (int64_t t = 0; t < rs; ++t) {
                flipped[(c * s.K + k) * rs + (rs - 1 - t)] = w[(k * s.C + c) * rs + t];
            }
}

// dx_n += col2im(W^T * dY_n) for one image (any stride and padding).
template <class T>
void conv2d_backward_data_image(const Conv2dSpec& s, const ConvGeometry& g, const T* dy,
                                const T* w, T* dx) {
    const int64_t crs = s.C * s.R * s.S, pixels = g.OH * g.OW;
    GemmSpec mm;
    mm.M = crs, mm.N = pixels, mm.K = s.K;
    mm.lda = crs, mm.ldb = pixels, mm.ldc = pixels, mm.trans_a = true;
    if (conv2d_is_pointwise(s)) {
        mm.accumulate = true;
        gemm(mm, w, dy, dx);
        return;
    }
    T* col = scratch<T>(ScratchSlot::kConvColumns, crs * pixels);
    gemm(mm, w, dy, col);
    col2im_add(s, g, col, dx);
}

// dW (+)= dY_n * col_n^T for one image. The panels of col^T are packed from x directly: up to 16
// rows of col at a time go to a small buffer and are transposed into the panel.
template <class T>
void conv2d_backward_weight_image(const Conv2dSpec& s, const ConvGeometry& g, const T* x,
                                  const T* dy, T* dw, bool accumulate) {
    using Kernel = typename GemmKernelFor<T>::type;
    constexpr int64_t NR = Kernel::kNR, kLanes = NR < 16 ? NR : 16;
    const int64_t crs = s.C * s.R * s.S, pixels = g.OH * g.OW;
    GemmSpec mm;
    mm.M = s.K, mm.N = crs, mm.K = pixels;
    mm.lda = pixels, mm.ldb = pixels, mm.ldc = crs, mm.trans_b = true;
    mm.accumulate = accumulate;
    auto pack = [&](int64_t k0, int64_t kc, int64_t j0, int64_t n_cols, T* dst) {
        // every lane block of every panel, as gemm_pack_b does; those past n_cols get zeros
        alignas(64) T rows_buffer[kLanes * kGemmKc];
        const int64_t panel_cols = (n_cols + NR - 1) / NR * NR;
        for (int64_t col = 0; col < panel_cols; col += kLanes) {
            const int64_t rows = std::max<int64_t>(0, std::min<int64_t>(kLanes, n_cols - col));
            for (int64_t i = 0; i < rows; ++i) {
                im2col_segment(s, g, x, j0 + col + i, k0, kc, rows_buffer + i * kc);
            }
            transpose_block(rows_buffer, kc, rows, kc, dst + (col / NR) * kc * NR + col % NR,
                            NR, kLanes);
        }
    };
    gemm_packed(mm, dy, pack, dw);
}

}  // namespace detail

// Forward convolution. x: N C H W, weight: K C R S, bias: K values or nullptr, y: N K OH OW with
// OH = spec.out_h(H), OW = spec.out_w(W). ASSIGNS y, or relu(y) with ConvActivation::relu
// (bit-identical to the convolution followed by relu_forward).
// Requires: contiguous tensors of those shapes (ShapeError naming expected and actual otherwise);
// y must not overlap the inputs. Guarantees: bit-identical for any thread count; callable inside
// a parallel_for body; no allocation once the scratch buffers have grown.
template <class T>
void conv2d_forward(const Conv2dSpec& spec, ConstTensorView<T> x, ConstTensorView<T> weight,
                    const T* bias, TensorView<T> y,
                    ConvActivation activation = ConvActivation::none) {
    detail::conv2d_check_input("conv2d_forward", spec, "input", x, weight);
    detail::conv2d_check_output("conv2d_forward", spec, x, "output", y);
    const detail::ConvGeometry g(spec, x.h(), x.w());
    detail::conv2d_forward_batch(spec, g, x.n(), x.data(), weight.data(), bias, y.data(), false,
                                 activation == ConvActivation::relu);
}

// Forward convolution by the GEMM lowering alone (im2col bands and the packed GEMM), whatever
// the shape: the same contract as conv2d_forward. For benchmarks and tests of that path;
// conv2d_forward picks the faster kernel by itself.
template <class T>
void conv2d_forward_gemm(const Conv2dSpec& spec, ConstTensorView<T> x, ConstTensorView<T> weight,
                         const T* bias, TensorView<T> y,
                         ConvActivation activation = ConvActivation::none) {
    detail::conv2d_check_input("conv2d_forward_gemm", spec, "input", x, weight);
    detail::conv2d_check_output("conv2d_forward_gemm", spec, x, "output", y);
    const detail::ConvGeometry g(spec, x.h(), x.w());
    detail::conv2d_forward_batch_gemm(spec, g, x.n(), x.data(), weight.data(), bias, y.data(),
                                      false, activation == ConvActivation::relu);
}

namespace detail {

// conv2d_backward_data without a gate (below): both of its paths.
template <class T>
void conv2d_backward_data_plain(const Conv2dSpec& spec, const ConvGeometry& g, int64_t N,
                                const T* dy, const T* weight, T* dx, GradWrite write) {
    const int64_t dx_size = spec.C * g.H * g.W, dy_size = spec.K * g.OH * g.OW;
    // 1. stride 1, square kernel, pad <= R-1: forward convolution of dy with flipped weights
    if (conv2d_backward_data_flips(spec)) {
        const Conv2dSpec flipped_spec = conv2d_flipped_spec(spec);
        T* flipped = scratch<T>(ScratchSlot::kConvWeights, spec.K * spec.C * spec.R * spec.S);
        conv2d_flip_weights(spec, weight, flipped);
        const ConvGeometry fg(flipped_spec, g.OH, g.OW);
        conv2d_forward_batch(flipped_spec, fg, N, dy, flipped, static_cast<const T*>(nullptr),
                             dx, write == GradWrite::add);
        return;
    }

    // 2. otherwise GEMM into columns and col2im, image by image (col2im adds)
    if (write == GradWrite::assign) fill_parallel(dx, N * dx_size, T(0));
    parallel_for(0, N, [&](int64_t n) {
        conv2d_backward_data_image(spec, g, dy + n * dy_size, weight, dx + n * dx_size);
    });
}

}  // namespace detail

// Input gradient. dy: N K OH OW, weight: K C R S, dx: N C H W. ADDS the gradient into dx (skip
// and concat paths sum there); GradWrite::assign ASSIGNS it instead. Same requirements and
// guarantees as conv2d_forward.
// With relu_output (the output of a ReLU that was this convolution's input, shaped like dx),
// each input-gradient value is first zeroed where relu_output <= 0: the gradient through that
// ReLU too, with the bits of conv2d_backward_data followed by relu_backward. The direct 3x3
// kernel applies it as it stores (no pass over dx, no buffer in between); the other paths run
// the two steps.
template <class T>
void conv2d_backward_data(const Conv2dSpec& spec, ConstTensorView<T> dy,
                          ConstTensorView<T> weight, TensorView<T> dx,
                          GradWrite write = GradWrite::add,
                          ConstTensorView<T> relu_output = ConstTensorView<T>()) {
    detail::conv2d_check_input("conv2d_backward_data", spec, "dx", dx, weight);
    detail::conv2d_check_output("conv2d_backward_data", spec, dx, "dy", dy);
    const detail::ConvGeometry g(spec, dx.h(), dx.w());
    const int64_t N = dx.n();
    if (relu_output.data() == nullptr) {
        detail::conv2d_backward_data_plain(spec, g, N, dy.data(), weight.data(), dx.data(), write);
        return;
    }
    shape_check("conv2d_backward_data: relu_output", relu_output.shape(), dx.shape());
    contiguous_check("conv2d_backward_data: relu_output", relu_output);
#if defined(UNETPP_CONV_DIRECT)
    if constexpr (std::is_same<T, float>::value) {
        const Conv2dSpec fs = detail::conv2d_flipped_spec(spec);
        if (detail::conv2d_backward_data_flips(spec) &&
            detail::conv2d_direct_preferred<T>(fs, detail::ConvGeometry(fs, g.OH, g.OW))) {
            float* flipped = scratch<float>(ScratchSlot::kConvWeights, weight.numel());
            detail::conv2d_flip_weights(spec, weight.data(), flipped);
            detail::conv2d_direct_forward_batch(fs, N, g.OH, g.OW, dy.data(), flipped, nullptr,
                                                dx.data(), write == GradWrite::add, false,
                                                relu_output.data());
            return;
        }
    }
#endif
    // the convolution's gradient, then the ReLU's (assigned in place, or added from scratch)
    if (write == GradWrite::assign) {
        detail::conv2d_backward_data_plain(spec, g, N, dy.data(), weight.data(), dx.data(),
                                           GradWrite::assign);
        relu_backward(relu_output, ConstTensorView<T>(dx), dx, GradWrite::assign);
        return;
    }
    T* tmp = scratch<T>(ScratchSlot::kConvGated, dx.numel());
    TensorView<T> grad(tmp, dx.shape());
    detail::conv2d_backward_data_plain(spec, g, N, dy.data(), weight.data(), tmp,
                                       GradWrite::assign);
    relu_backward(relu_output, ConstTensorView<T>(grad), dx, GradWrite::add);
}

namespace detail {

// dweight = sum over the batch of dY_n * col_n^T by the GEMM lowering: each of a fixed number of
// image groups sums into its own partial (group 0 straight into dweight), then the partials are
// added in group order.
template <class T>
void conv2d_backward_weight_gemm(const Conv2dSpec& spec, const ConvGeometry& g, int64_t N,
                                 const T* x, const T* dy, T* dweight) {
    const int64_t x_size = spec.C * g.H * g.W, dy_size = spec.K * g.OH * g.OW;
    const int64_t w_size = spec.K * spec.C * spec.R * spec.S;
    const int64_t groups = std::max<int64_t>(1, std::min(N, kConvWeightGroups));
    T* partials = scratch<T>(ScratchSlot::kConvPartial, (groups - 1) * w_size);
    if (N == 0) std::fill(dweight, dweight + w_size, T(0));
    parallel_for(0, groups, [&](int64_t group) {
        T* dw = group == 0 ? dweight : partials + (group - 1) * w_size;
        int64_t lo = even_split(N, groups, group);
        int64_t hi = even_split(N, groups, group + 1);
        for (int64_t n = lo; n < hi; ++n) {
            conv2d_backward_weight_image(spec, g, x + n * x_size, dy + n * dy_size, dw, n > lo);
        }
    });
    for (int64_t group = 1; group < groups; ++group) {
        simd::add(w_size, dweight, partials + (group - 1) * w_size, dweight);
    }
}

// dbias[k] = sum over images n in order of simd::sum(plane (n, k) of dy), or of
// image_sums[n*K + k] where a kernel has already summed the planes.
template <class T>
void conv2d_bias_grad(const Conv2dSpec& s, int64_t N, int64_t pixels, const T* dy,
                      const T* image_sums, T* dbias) {
    parallel_for(0, s.K, [&](int64_t k) {
        T sum = 0;
        for (int64_t n = 0; n < N; ++n) {
            sum += image_sums != nullptr ? image_sums[n * s.K + k]
                                         : simd::sum(pixels, dy + (n * s.K + k) * pixels);
        }
        dbias[k] = sum;
    });
}

// The weight (and bias, when dbias is not null) gradient of a batch by the fastest kernel this
// build has for it, like conv2d_forward_batch: on AVX-512 the lanes kernel when K = 16m and
// C >= 16 (any width); else, on AVX-512 and AVX2, the direct kernel on images at least
// kDirectMinWidth wide; else the GEMM lowering. ASSIGNS dweight and dbias.
template <class T>
void conv2d_backward_weight_batch(const Conv2dSpec& s, const ConvGeometry& g, int64_t N,
                                  const T* x, const T* dy, T* dweight, T* dbias) {
    T* image_sums = nullptr;  // the bias terms, where the weight kernel has summed dy's planes
    bool done = false;
#if defined(UNETPP_SIMD_AVX512)
    if constexpr (std::is_same<T, float>::value) {
        // the lanes kernel walks pixels one at a time, so it suits any width
        const bool lanes = conv2d_direct_applies<T>(s) && s.K % 16 == 0 && s.C >= 16;
        if (lanes && N > 0) {
            if (dbias) image_sums = scratch<T>(ScratchSlot::kConvBias, N * s.K);
            conv2d_direct_backward_weight_lanes(s, N, g.H, g.W, x, dy, dweight, image_sums);
            done = true;
        }
    }
#endif
#if defined(UNETPP_CONV_DIRECT)
    if constexpr (std::is_same<T, float>::value) {
        if (!done && conv2d_direct_applies<T>(s) && g.OW >= kDirectMinWidth && N > 0) {
            conv2d_direct_backward_weight(s, N, g.H, g.W, x, dy, dweight);
            done = true;
        }
    }
#endif
    if (!done) conv2d_backward_weight_gemm(s, g, N, x, dy, dweight);
    if (dbias) conv2d_bias_grad<T>(s, N, g.OH * g.OW, dy, image_sums, dbias);
}

}  // namespace detail

// Weight and bias gradients summed over the batch. x: N C H W, dy: N K OH OW, dweight: K C R S,
// dbias: K values or nullptr. ASSIGNS dweight and dbias. Same requirements and guarantees as
// conv2d_forward (the batch sum runs in a fixed order, independent of the thread count). Float
// 3x3 stride-1 pad-1 layers take a direct kernel (conv2d_direct.hpp): on AVX-512 builds when
// K = 16m and C >= 16, and on AVX-512 and AVX2 builds when at least kDirectMinWidth wide; every
// other shape the GEMM lowering.
template <class T>
void conv2d_backward_weight(const Conv2dSpec& spec, ConstTensorView<T> x, ConstTensorView<T> dy,
                            TensorView<T> dweight, T* dbias) {
    const char* what = "conv2d_backward_weight";
    detail::conv2d_check_input(what, spec, "input", x, ConstTensorView<T>(dweight));
    detail::conv2d_check_output(what, spec, x, "dy", dy);
    const detail::ConvGeometry g(spec, x.h(), x.w());
    // the bias gradient per output channel: images in order, each plane by simd::sum
    detail::conv2d_backward_weight_batch(spec, g, x.n(), x.data(), dy.data(), dweight.data(),
                                         dbias);
}

}  // namespace unetpp
