#pragma once
// AVX2 + FMA microkernels of the direct 3x3 convolution (kernels/conv2d_direct.hpp), the 8-lane
// twin of conv3x3_avx512.hpp with the same contracts. run: KB output channels times JV vectors
// of 8 output pixels, held in KB*JV ymm accumulators. run_weight: the weight gradient of KB
// output channels for one input channel and kernel row.
//
//   y[kk, v] (+)= sum_{c < C, r < 3, s < 3} w[((c*3 + r)*3 + s)*KB + kk]
//                                             * xp[c*plane + x_off[v] + r*ld + s + lane]
// for kk < KB, v < JV, lane < 8: xp is a zero-padded input (pad 1 folded into x_off), w the
// weights of one block of KB output channels packed tap by tap.
//
// Registers: AVX2 has 16 ymm, against AVX-512's 32 zmm, so the tiles are smaller. With KB = 4
// a tap loads 3 input vectors, broadcasts 4 weights and issues 12 FMAs: 12 accumulators, 3
// inputs and a broadcast fill the 16 registers. With fewer output channels (KB <= 3: the last
// block of a layer, or a first layer's input gradient on 3 colour channels) the KB weights are
// broadcast first and each input vector is loaded, used KB times and dropped, over up to
// max_jv(KB) vectors (12 accumulators or fewer beside KB weights and one input).
// Output vector v goes to y + kk*y_plane + y_off[v], its first mask[v] lanes only (the tail of
// a row narrower than a multiple of 8), plus what y held (add) or plus bias[kk] (bias not
// null), then clamped at 0 when relu. With a gate (laid out like y) the sum is first zeroed
// where gate <= 0, as in the AVX-512 kernel.
// A mask here is the count of valid leading lanes (Mask = int): AVX2 has no mask registers,
// and the 8 x 32-bit lane mask that vmaskmovps takes is read from a sliding window of
// kMaskWindow.

#include <immintrin.h>

#include <cstdint>

#include "unetpp/simd/simd_avx2.hpp"

namespace unetpp {
namespace detail {
namespace avx2 {

struct Conv3x3Kernel {
    static constexpr int kLanes = 8;
    static constexpr int kMaxKB = 4;
    static constexpr int kMaxJV = 3;
    static constexpr int kMaxJVFew = 8;
    // The most output vectors one call takes for blocks of kb output channels: at most 12
    // accumulators (8 for a single channel, whose calls are few).
    static constexpr int max_jv(int kb) {
        return kb == 1 ? 8 : kb == 2 ? 6 : kb == 3 ? 4 : kMaxJV;
    }

    // Valid leading lanes of a vector: 1..8.
    using Mask = int;
    static constexpr Mask kFullMask = kLanes;
    static constexpr Mask mask_first(int64_t n) { return n >= kLanes ? kLanes : Mask(n); }

    // The vmaskmovps mask of the first n lanes (0 <= n <= 8).
    static __m256i lane_mask(Mask n) {
        alignas(32) static constexpr int32_t kMaskWindow[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                                 0,  0,  0,  0,  0,  0,  0,  0};
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskWindow + kLanes - n));
    }

    // Writes (add: adds to) the KB x JV output vectors described above. Pairs (two output rows
    // a vector, AVX-512's layout for 8-wide images) does not exist here: an 8-wide row fills
    // one 8-lane vector.
    template <int KB, int JV, bool Pairs = false>
    static void run(int64_t C, const float* xp, int64_t plane, int64_t ld, const int64_t* x_off,
                    const float* w, float* y, int64_t y_plane, const int64_t* y_off,
                    const Mask* mask, bool add, const float* bias, bool relu,
                    const float* gate = nullptr) {
        static_assert(KB >= 1 && KB <= kMaxKB && JV >= 1 && JV <= max_jv(KB),
                      "Conv3x3Kernel::run: the tile must fit in the 16 ymm registers");
        static_assert(!Pairs, "Conv3x3Kernel::run: paired rows exist on AVX-512 only");
        __m256 acc[KB][JV];
#pragma GCC unroll 4
        for (int kk = 0; kk < KB; ++kk) {
#pragma GCC unroll 8
            for (int v = 0; v < JV; ++v) acc[kk][v] = _mm256_setzero_ps();
        }

        // 1. taps in (c, r, s) order
        for (int64_t c = 0; c < C; ++c) {
            const float* xc = xp + c * plane;
            for (int r = 0; r < 3; ++r) {
                const float* xr = xc + r * ld;
#pragma GCC unroll 3
                for (int s = 0; s < 3; ++s) {
                    if constexpr (KB <= 3) {
                        // few channels: weights first, each input vector used KB times
                        __m256 wv[KB];
#pragma GCC unroll 3
                        for (int kk = 0; kk < KB; ++kk) wv[kk] = _mm256_broadcast_ss(w + kk);
#pragma GCC unroll 8
                        for (int v = 0; v < JV; ++v) {
                            const __m256 xv = _mm256_loadu_ps(xr + x_off[v] + s);
#pragma GCC unroll 3
                            for (int kk = 0; kk < KB; ++kk) {
                                acc[kk][v] = _mm256_fmadd_ps(wv[kk], xv, acc[kk][v]);
                            }
                        }
                    } else {
                        __m256 xv[JV];
#pragma GCC unroll 3
                        for (int v = 0; v < JV; ++v) xv[v] = _mm256_loadu_ps(xr + x_off[v] + s);
#pragma GCC unroll 4
                        for (int kk = 0; kk < KB; ++kk) {
                            const __m256 wv = _mm256_broadcast_ss(w + kk);
#pragma GCC unroll 3
                            for (int v = 0; v < JV; ++v) {
                                acc[kk][v] = _mm256_fmadd_ps(wv, xv[v], acc[kk][v]);
                            }
                        }
                    }
                    w += KB;
                }
            }
        }

        // 2. store (or add) the valid lanes of each vector
        const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int v = 0; v < JV; ++v) {
            const bool full = mask[v] == kLanes;
            const __m256i m = lane_mask(mask[v]);
#pragma GCC unroll 4
            for (int kk = 0; kk < KB; ++kk) {
                float* dst = y + kk * y_plane + y_off[v];
                __m256 out = acc[kk][v];
                if (gate != nullptr) {
                    const float* g = gate + kk * y_plane + y_off[v];
                    const __m256 gv = full ? _mm256_loadu_ps(g) : _mm256_maskload_ps(g, m);
                    out = _mm256_and_ps(out, _mm256_cmp_ps(gv, zero, _CMP_GT_OQ));
                }
                if (add) {
                    out = _mm256_add_ps(out, full ? _mm256_loadu_ps(dst)
                                                  : _mm256_maskload_ps(dst, m));
                } else if (bias != nullptr) {
                    out = _mm256_add_ps(out, _mm256_broadcast_ss(bias + kk));
                }
                if (relu) out = _mm256_max_ps(out, zero);
                if (full) {
                    _mm256_storeu_ps(dst, out);
                } else {
                    _mm256_maskstore_ps(dst, m, out);
                }
            }
        }
    }

    // Weight gradient of one input channel c and kernel row r for KB output channels:
    //   acc[kk*3 + s] += sum_{t < rows, u < W} dy[kk*dy_plane + t*W + u] * xr[t*ld + u + s]
    // lane-wise (u = vector*8 + lane; lanes past W are masked off in dy: `tail` valid lanes in
    // a row's last vector), for s < 3. xr points at row r of the zero-padded input of channel
    // c; acc_mem holds the 3*KB vectors of 8 floats (32-byte aligned) between calls.
    // Per vector it loads 3 shifted input vectors and KB gradient vectors for 3*KB FMAs: 12
    // accumulators, 3 inputs and a gradient with KB = 4.
    template <int KB>
    static void run_weight(int64_t rows, int64_t W, const float* xr, int64_t ld, const float* dy,
                           int64_t dy_plane, Mask tail, float* acc_mem) {
        static_assert(KB >= 1 && KB <= kMaxKB,
                      "Conv3x3Kernel::run_weight: 3 * KB accumulators must fit in 12 ymm");
        __m256 acc[KB][3];
#pragma GCC unroll 4
        for (int kk = 0; kk < KB; ++kk) {
            for (int s = 0; s < 3; ++s) acc[kk][s] = _mm256_load_ps(acc_mem + (kk * 3 + s) * 8);
        }
        const __m256i tail_mask = lane_mask(tail);
        const int64_t full_end = tail == kLanes ? W : W - tail;  // start of a partial vector
        for (int64_t t = 0; t < rows; ++t) {
            const float* xt = xr + t * ld;
            const float* dt = dy + t * W;
            auto step = [&](int64_t u, auto load_dy) {
                const __m256 x0 = _mm256_loadu_ps(xt + u);
                const __m256 x1 = _mm256_loadu_ps(xt + u + 1);
                const __m256 x2 = _mm256_loadu_ps(xt + u + 2);
#pragma GCC unroll 4
                for (int kk = 0; kk < KB; ++kk) {
                    const __m256 d = load_dy(dt + kk * dy_plane + u);
                    acc[kk][0] = _mm256_fmadd_ps(d, x0, acc[kk][0]);
                    acc[kk][1] = _mm256_fmadd_ps(d, x1, acc[kk][1]);
                    acc[kk][2] = _mm256_fmadd_ps(d, x2, acc[kk][2]);
                }
            };
            int64_t u = 0;
            for (; u < full_end; u += kLanes) {
                step(u, [](const float* p) { return _mm256_loadu_ps(p); });
            }
            if (u < W) {
                step(u, [tail_mask](const float* p) { return _mm256_maskload_ps(p, tail_mask); });
            }
        }
#pragma GCC unroll 4
        for (int kk = 0; kk < KB; ++kk) {
            for (int s = 0; s < 3; ++s) _mm256_store_ps(acc_mem + (kk * 3 + s) * 8, acc[kk][s]);
        }
    }

    // Sum of the 8 floats at v (32-byte aligned), in a fixed tree order.
    static float lanes_sum(const float* v) { return hsum(_mm256_load_ps(v)); }
};

}  // namespace avx2
}  // namespace detail
}  // namespace unetpp
