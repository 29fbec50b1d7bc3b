#pragma once
// AVX-512 microkernels of the direct 3x3 convolution (kernels/conv2d_direct.hpp). run: KB output
// channels times JV vectors of 16 output pixels, held in KB*JV zmm accumulators. run_weight:
// the weight gradient of KB output channels for one input channel and kernel row (below).
//
//   y[kk, v] (+)= sum_{c < C, r < 3, s < 3} w[((c*3 + r)*3 + s)*KB + kk]
//                                             * xp[c*plane + x_off[v] + r*ld + s + lane]
// for kk < KB, v < JV, lane < 16: xp is a zero-padded input (pad 1 folded into x_off), w the
// weights of one block of KB output channels packed tap by tap. Per tap it loads JV input
// vectors, broadcasts the KB weights and issues KB*JV FMAs; 8 x 3 gives 24 accumulators, 3 input
// vectors and a broadcast in the 32 registers. With few output channels (KB <= 3, the input
// gradient of a first layer on 3 colour channels) a tap would make only 3 x 3 FMAs per 6 loads,
// so up to kMaxJVFew vectors are taken instead: the KB weights are broadcast first and each
// input vector is loaded, used KB times and dropped (3 x 8: 24 accumulators, 3 weights, 1
// input). Output vector v goes to y + kk*y_plane + y_off[v] under mask[v] (the tail of a row
// narrower than a multiple of 16), plus what y held (add) or plus bias[kk] (bias not null),
// added to the finished sum in both cases, then clamped at 0 when relu (a ReLU fused into the
// store). With a gate (laid out like y), the sum is first zeroed where gate <= 0: a
// backward-data pass that applies the derivative of the ReLU whose output was its forward's
// input, as relu_backward would after it.

#include <immintrin.h>

#include <cstdint>

// GCC 12 warns falsely about its own intrinsics' undefined-register placeholders (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace unetpp {
namespace detail {
namespace avx512 {

struct Conv3x3Kernel {
    static constexpr int kLanes = 16;
    static constexpr int kMaxKB = 8;
    static constexpr int kMaxJV = 3;
    static constexpr int kMaxJVFew = 8;
    // The most output vectors one call takes for blocks of kb output channels.
    static constexpr int max_jv(int kb) { return kb <= 3 ? kMaxJVFew : kMaxJV; }

    // Which lanes of a vector are valid: a mask register.
    using Mask = __mmask16;
    static constexpr Mask kFullMask = 0xffff;
    // The first n lanes (1 <= n; all 16 for n >= 16).
    static constexpr Mask mask_first(int64_t n) {
        return n >= kLanes ? kFullMask : Mask((1u << n) - 1u);
    }

    // Paired rows (Pairs = true), for images exactly 8 pixels wide: each vector holds two
    // output rows, lanes 0-7 the upper and 8-15 the lower, and xp has no padding columns (rows
    // of ld = 8 floats, one after the other). Tap s then loads from xr + x_off[v] + s with x_off
    // one float before the rows, under kPairMask[s], which zeroes the lanes that would take the
    // other row's pixel in place of the missing left or right neighbour.
    static constexpr __mmask16 kPairMask[3] = {0xfefe, 0xffff, 0x7f7f};

    // Writes (add: adds to) the KB x JV output vectors described above.
    template <int KB, int JV, bool Pairs = false>
    static void run(int64_t C, const float* xp, int64_t plane, int64_t ld, const int64_t* x_off,
                    const float* w, float* y, int64_t y_plane, const int64_t* y_off,
                    const __mmask16* mask, bool add, const float* bias, bool relu,
                    const float* gate = nullptr) {
        __m512 acc[KB][JV];
#pragma GCC unroll 8
        for (int kk = 0; kk < KB; ++kk) {
#pragma GCC unroll 8
            for (int v = 0; v < JV; ++v) acc[kk][v] = _mm512_setzero_ps();
        }

        // 1. taps in (c, r, s) order: JV input loads, KB broadcasts, KB*JV FMAs each
        for (int64_t c = 0; c < C; ++c) {
            const float* xc = xp + c * plane;
            for (int r = 0; r < 3; ++r) {
                const float* xr = xc + r * ld;
#pragma GCC unroll 3
                for (int s = 0; s < 3; ++s) {
                    auto load = [&](int v) {
                        if constexpr (Pairs) {
                            return _mm512_maskz_loadu_ps(kPairMask[s], xr + x_off[v] + s);
                        } else {
                            return _mm512_loadu_ps(xr + x_off[v] + s);
                        }
                    };
                    if constexpr (KB <= 3) {
                        __m512 wv[KB];
                        for (int kk = 0; kk < KB; ++kk) wv[kk] = _mm512_set1_ps(w[kk]);
#pragma GCC unroll 8
                        for (int v = 0; v < JV; ++v) {
                            const __m512 xv = load(v);
                            for (int kk = 0; kk < KB; ++kk) {
                                acc[kk][v] = _mm512_fmadd_ps(wv[kk], xv, acc[kk][v]);
                            }
                        }
                        w += KB;
                        continue;
                    }
                    __m512 xv[JV];
#pragma GCC unroll 3
                    for (int v = 0; v < JV; ++v) xv[v] = load(v);
#pragma GCC unroll 8
                    for (int kk = 0; kk < KB; ++kk) {
                        const __m512 wv = _mm512_set1_ps(w[kk]);
#pragma GCC unroll 3
                        for (int v = 0; v < JV; ++v) {
                            acc[kk][v] = _mm512_fmadd_ps(wv, xv[v], acc[kk][v]);
                        }
                    }
                    w += KB;
                }
            }
        }

        // 2. store (or add) under each vector's mask
#pragma GCC unroll 8
        for (int kk = 0; kk < KB; ++kk) {
#pragma GCC unroll 8
            for (int v = 0; v < JV; ++v) {
                float* dst = y + kk * y_plane + y_off[v];
                __m512 out = acc[kk][v];
                if (gate != nullptr) {
                    const __m512 g =
                        _mm512_maskz_loadu_ps(mask[v], gate + kk * y_plane + y_off[v]);
                    out = _mm512_maskz_mov_ps(
                        _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_GT_OQ), out);
                }
                if (add) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mask[v], dst));
                else if (bias != nullptr) out = _mm512_add_ps(out, _mm512_set1_ps(bias[kk]));
                if (relu) out = _mm512_max_ps(out, _mm512_setzero_ps());
                _mm512_mask_storeu_ps(dst, mask[v], out);
            }
        }
    }

    // Weight gradient of one input channel c and kernel row r for KB output channels:
    //   acc[kk*3 + s] += sum_{t < rows, u < W} dy[kk*dy_plane + t*W + u] * xr[t*ld + u + s]
    // lane-wise (u = vector*16 + lane; lanes past W are masked off in dy), for s < 3. xr points
    // at row r of the band's zero-padded input of channel c; acc_mem holds the 3*KB vectors of
    // 16 floats (64-byte aligned) between calls.
    // Per vector it loads 3 shifted input vectors and KB gradient vectors for 3*KB FMAs.
    template <int KB>
    static void run_weight(int64_t rows, int64_t W, const float* xr, int64_t ld, const float* dy,
                           int64_t dy_plane, __mmask16 tail, float* acc_mem) {
        __m512 acc[KB][3];
#pragma GCC unroll 8
        for (int kk = 0; kk < KB; ++kk) {
            for (int s = 0; s < 3; ++s) acc[kk][s] = _mm512_load_ps(acc_mem + (kk * 3 + s) * 16);
        }
        for (int64_t t = 0; t < rows; ++t) {
            const float* xt = xr + t * ld;
            const float* dt = dy + t * W;
            for (int64_t u = 0; u < W; u += kLanes) {
                const __mmask16 m = u + kLanes <= W ? __mmask16(0xffff) : tail;
                const __m512 x0 = _mm512_loadu_ps(xt + u);
                const __m512 x1 = _mm512_loadu_ps(xt + u + 1);
                const __m512 x2 = _mm512_loadu_ps(xt + u + 2);
#pragma GCC unroll 8
                for (int kk = 0; kk < KB; ++kk) {
                    const __m512 d = _mm512_maskz_loadu_ps(m, dt + kk * dy_plane + u);
                    acc[kk][0] = _mm512_fmadd_ps(d, x0, acc[kk][0]);
                    acc[kk][1] = _mm512_fmadd_ps(d, x1, acc[kk][1]);
                    acc[kk][2] = _mm512_fmadd_ps(d, x2, acc[kk][2]);
                }
            }
        }
#pragma GCC unroll 8
        for (int kk = 0; kk < KB; ++kk) {
            for (int s = 0; s < 3; ++s) _mm512_store_ps(acc_mem + (kk * 3 + s) * 16, acc[kk][s]);
        }
    }

    // Weight gradient with 16 output channels in the lanes, for CB input channels at once, over
    // `rows` rows of one image:
    //   acc[(c*3 + r)*3 + s][lane] += sum_{i < rows, j < W} dyt[(i*W + j)*ld_k + lane]
    //                                   * xp[c*plane + (i + r)*ld + j + s]
    // for c < CB, r, s < 3: dyt is the output gradient transposed to pixel-major (ld_k floats per
    // pixel, 64-byte aligned), xp the zero-padded input from the row above the first output row.
    // Per pixel one 512-bit load of dyt serves 9*CB FMAs with broadcast inputs; 3 channels give
    // 27 accumulators. acc_mem holds the 9*CB vectors (16 floats each, 64-byte aligned) between
    // calls, so a caller can walk the pixels in tiles and keep each tile of dyt in L1 while it
    // serves several channel blocks; the pixels are still summed in raster order.
    // GCC's predictive commoning would carry each input value over to the next pixel's taps in
    // spilled scalar registers (about 20% of the time went to those moves); embedded broadcasts
    // from memory are cheaper, so that pass is off for this function.
    template <int CB>
#if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("no-predictive-commoning")))
#endif
    static void run_weight_lanes(int64_t rows, int64_t W, const float* xp, int64_t plane,
                                 int64_t ld, const float* dyt, int64_t ld_k, float* acc_mem) {
        __m512 acc[CB * 9];
#pragma GCC unroll 27
        for (int t = 0; t < CB * 9; ++t) acc[t] = _mm512_load_ps(acc_mem + t * kLanes);
        for (int64_t i = 0; i < rows; ++i) {
            const float* x_row = xp + i * ld;
            const float* d_row = dyt + i * W * ld_k;
            for (int64_t j = 0; j < W; ++j) {
                const __m512 d = _mm512_load_ps(d_row + j * ld_k);
#pragma GCC unroll 3
                for (int c = 0; c < CB; ++c) {
#pragma GCC unroll 3
                    for (int r = 0; r < 3; ++r) {
                        const float* xr = x_row + c * plane + r * ld + j;
#pragma GCC unroll 3
                        for (int s = 0; s < 3; ++s) {
                            acc[(c * 3 + r) * 3 + s] = _mm512_fmadd_ps(
                                _mm512_set1_ps(xr[s]), d, acc[(c * 3 + r) * 3 + s]);
                        }
                    }
                }
            }
        }
#pragma GCC unroll 27
        for (int t = 0; t < CB * 9; ++t) _mm512_store_ps(acc_mem + t * kLanes, acc[t]);
    }

    // Sum of the 16 floats at v (64-byte aligned), in a fixed tree order.
    static float lanes_sum(const float* v) { return _mm512_reduce_add_ps(_mm512_load_ps(v)); }
};

}  // namespace avx512
}  // namespace detail
}  // namespace unetpp

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
