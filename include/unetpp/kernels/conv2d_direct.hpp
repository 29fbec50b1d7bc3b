#pragma once
// Direct 3x3 convolution, stride 1, pad 1, vectorised over output pixels (no im2col, no GEMM):
//
//   y[n,k,i,j] = [b[k] or y[n,k,i,j] or 0] + sum_{c,r,s} w[k,c,r,s] * x[n,c,i+r-1,j+s-1]
//   then, with a fused ReLU, y = max(y, 0) as each vector is stored
//
// Layouts: x N C H W, w K C 3 3, y N K H W (H, W unchanged by pad 1).
// Why: lowered onto the GEMM, a layer with few channels on a large image (16 channels at
// 128x128) spends as much time copying its 9-times-larger column matrix as multiplying, and a
// 16-row GEMM fills the microkernel poorly. Here every input vector loaded serves 8 output
// channels and every broadcast weight 3 vectors of 16 pixels (AVX-512; 4 channels and 3 vectors
// of 8 pixels on AVX2), straight from a zero-padded band of the input that stays in L1/L2
// (simd/conv3x3_avx512.hpp, simd/conv3x3_avx2.hpp).
//
// Method, per work unit (an image and a band of output rows, split over threads):
//   1. copy the band's input rows, with one zero row above and below and one zero column left
//      and right, into this thread's scratch (row length a multiple of kLanes, plus slack);
//   2. cut the band's output rows into vectors of kLanes pixels (16 on AVX-512, 8 on AVX2; the
//      last of a row masked) and take them kMaxJV at a time (more when K <= 3); for each group,
//      for each block of kMaxKB output channels (8 on AVX-512, 4 on AVX2; the last block
//      smaller), run the microkernel over all C*9 taps.
// On AVX-512, images exactly 8 pixels wide (a U-Net's bottom level) take a variant with two
// output rows in each vector (conv2d_direct_forward_pairs), where one row per vector would leave
// 8 of the 16 lanes idle; on AVX2 such a row fills one vector.
// Weights are repacked once per call into blocks of kMaxKB output channels, tap-major. Each
// output element is one microkernel's sum in (c, r, s) order, so results do not depend on the
// thread count. Float on AVX-512 and AVX2 builds takes this path (conv2d_direct_available);
// elsewhere conv2d.hpp keeps the GEMM lowering. The lanes weight gradient (output channels in
// the lanes) exists on AVX-512 only; AVX2 takes conv2d_direct_backward_weight for every shape.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/kernels/conv2d_reference.hpp"
#include "unetpp/kernels/gemm.hpp"
#include "unetpp/kernels/scratch.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"

#if defined(UNETPP_SIMD_AVX512)
#include "unetpp/simd/conv3x3_avx512.hpp"
#define UNETPP_CONV_DIRECT 1
#elif defined(UNETPP_SIMD_AVX2)
#include "unetpp/simd/conv3x3_avx2.hpp"
#define UNETPP_CONV_DIRECT 1
#endif

namespace unetpp {

// True when this build has a direct 3x3 kernel for element type T.
template <class T>
constexpr bool conv2d_direct_available() {
#if defined(UNETPP_CONV_DIRECT)
    return std::is_same<T, float>::value;
#else
    return false;
#endif
}

// True when the direct kernel computes this convolution: 3x3, stride 1, pad 1, on a build and
// type that have it.
template <class T>
bool conv2d_direct_applies(const Conv2dSpec& s) {
    return conv2d_direct_available<T>() && s.R == 3 && s.S == 3 && s.stride == 1 && s.pad == 1;
}

// On AVX-512, images exactly this wide take the paired-rows layout
// (conv2d_direct_forward_pairs): two output rows per vector of 16 lanes.
constexpr int64_t kDirectPairWidth = 8;

#if defined(UNETPP_CONV_DIRECT)
namespace detail {

#if defined(UNETPP_SIMD_AVX512)
using DirectKernel = avx512::Conv3x3Kernel;
#else
using DirectKernel = avx2::Conv3x3Kernel;
#endif
using DirectMask = DirectKernel::Mask;

// Floats of padded input one work unit copies, at most: half of L2, which leaves room for the
// weights and the output rows. Each band copies two halo rows beyond its own, so a small band
// costs copies: at 32 Ki floats a 16-channel 704-pixel-wide layer got bands of one row, and the
// copy read every input row three times.
constexpr int64_t kDirectBandFloats = 128 * 1024;

// How a zero-padded input row of width W is laid out for the microkernels: `vectors` of kLanes
// pixels cover the row (the last masked by `tail`), and each padded row holds ld floats (one
// zero column left, the row, zeros to the end; a multiple of kLanes with slack for shifted
// loads).
struct DirectRows {
    int64_t vectors = 0, ld = 0;
    DirectMask tail = DirectKernel::kFullMask;

    explicit DirectRows(int64_t W) {
        constexpr int64_t L = DirectKernel::kLanes;
        vectors = (W + L - 1) / L;
        ld = vectors * L + L;
        tail = W % L == 0 ? DirectKernel::kFullMask : DirectKernel::mask_first(W % L);
    }
};

// wp[k0*C*9 + ((c*3 + r)*3 + s)*kb + kk] = w[k0 + kk, c, r, s] for blocks of kb <= kMaxKB
// channels.
inline void conv2d_direct_pack_weights(const Conv2dSpec& s, const float* w, float* wp) {
    const int64_t taps = s.C * 9;
    for (int64_t k0 = 0; k0 < s.K; k0 += DirectKernel::kMaxKB) {
        const int64_t kb = std::min<int64_t>(DirectKernel::kMaxKB, s.K - k0);
        for (int64_t kk = 0; kk < kb; ++kk) {
            for (int64_t t = 0; t < taps; ++t) {
                wp[k0 * taps + t * kb + kk] = w[(k0 + kk) * taps + t];
            }
        }
    }
}

// Calls DirectKernel::run<KB, jv, Pairs> for a runtime jv in [1, JV].
template <bool Pairs, int KB, int JV, class... Args>
void conv2d_direct_dispatch_jv(int jv, Args... args) {
    if constexpr (JV >= 1) {
        if (jv == JV) {
            DirectKernel::run<KB, JV, Pairs>(args...);
        } else {
            conv2d_direct_dispatch_jv<Pairs, KB, JV - 1>(jv, args...);
        }
    }
}

// Calls DirectKernel::run<kb, jv, Pairs> for runtime kb in [1, kMaxKB] and jv in
// [1, DirectKernel::max_jv(kb)].
template <bool Pairs = false, int KB = DirectKernel::kMaxKB, class... Args>
void conv2d_direct_dispatch(int kb, int jv, Args... args) {
    if constexpr (KB >= 1) {
        if (kb != KB) {
            conv2d_direct_dispatch<Pairs, KB - 1>(kb, jv, args...);
        } else {
            conv2d_direct_dispatch_jv<Pairs, KB, DirectKernel::max_jv(KB)>(jv, args...);
        }
    }
}

// Output vectors per microkernel call of a forward with K output channels: more when every
// block of channels is small (K <= 3), see simd/conv3x3_avx512.hpp and conv3x3_avx2.hpp.
inline int64_t conv2d_direct_group_vectors(int64_t K) {
    return K <= 3 ? DirectKernel::max_jv(int(K)) : DirectKernel::kMaxJV;
}

// Step 1: rows [i0 - 1, i1 + 1) of every channel of image x_n, zero-padded, into xp
// (C planes of (i1 - i0 + 2) rows of ld floats; column 0 and columns > W are zero).
inline void conv2d_direct_pad_band(const Conv2dSpec& s, int64_t H, int64_t W, const float* x_n,
                                   int64_t i0, int64_t i1, int64_t ld, float* xp) {
    const int64_t rows = i1 - i0 + 2;
    for (int64_t c = 0; c < s.C; ++c) {
        for (int64_t t = 0; t < rows; ++t) {
            float* dst = xp + (c * rows + t) * ld;
            const int64_t h = i0 - 1 + t;
            if (h < 0 || h >= H) {
                std::fill(dst, dst + ld, 0.0f);
                continue;
            }
            dst[0] = 0.0f;
            std::memcpy(dst + 1, x_n + (c * H + h) * W, size_t(W) * sizeof(float));
            std::fill(dst + 1 + W, dst + ld, 0.0f);
        }
    }
}

#if defined(UNETPP_SIMD_AVX512)
// The forward of a batch of images kDirectPairWidth pixels wide (same contract as
// conv2d_direct_forward_batch below). Each vector of 16 lanes holds two output rows, so no lane
// idles, as 8 of 16 would with one row per vector. Work units are runs of whole images: each
// copies its images' input rows with one zero row above and two below (no padding columns:
// DirectKernel::run<..., true> masks the missing neighbours), then runs the microkernel on
// groups of 3 vectors (8 when K <= 3), which may span images, times blocks of 8 output channels.
inline void conv2d_direct_forward_pairs(const Conv2dSpec& s, int64_t N, int64_t H, const float* x,
                                        const float* w, const float* bias, float* y,
                                        bool accumulate, bool relu, const float* gate) {
    constexpr int64_t W = kDirectPairWidth, kMaxJV = DirectKernel::kMaxJVFew, slack = 16;
    const int64_t JV = conv2d_direct_group_vectors(s.K);
    const int64_t pixels = H * W, plane = (H + 3) * W, image_floats = s.C * plane;
    const int64_t vectors = (H + 1) / 2;  // per image; the last one of an odd H half masked
    // runs of images: as many as fit the band scratch, but at least two units per thread
    const int64_t fit = std::max<int64_t>(1, kDirectBandFloats / image_floats);
    const int64_t spread = std::max<int64_t>(1, N / (2 * num_threads()));
    const int64_t run = std::min(fit, spread), units = (N + run - 1) / run;

    float* wp = scratch<float>(ScratchSlot::kConvPackedWeights, s.K * s.C * 9);
    conv2d_direct_pack_weights(s, w, wp);
    const float* b = accumulate ? nullptr : bias;

    parallel_for(0, units, [&](int64_t unit) {
        const int64_t n0 = unit * run, images = std::min(run, N - n0);
        float* buf = scratch<float>(ScratchSlot::kConvColumns, images * image_floats + 2 * slack);
        float* xp = buf + slack;
        std::fill(buf, buf + slack, 0.0f);
        std::fill(xp + images * image_floats, xp + images * image_floats + slack, 0.0f);
        for (int64_t c = 0; c < images * s.C; ++c) {  // (image, channel) planes in order
            float* dst = xp + c * plane;
            std::fill(dst, dst + W, 0.0f);
            std::memcpy(dst + W, x + (n0 * s.C + c) * pixels, size_t(pixels) * sizeof(float));
            std::fill(dst + W + pixels, dst + plane, 0.0f);
        }
        float* y_unit = y + n0 * s.K * pixels;
        const float* gate_unit = gate != nullptr ? gate + n0 * s.K * pixels : nullptr;
        const int64_t count = images * vectors;
        for (int64_t g0 = 0; g0 < count; g0 += JV) {
            const int jv = int(std::min(JV, count - g0));
            int64_t x_off[kMaxJV], y_off[kMaxJV];
            __mmask16 mask[kMaxJV];
            for (int v = 0; v < jv; ++v) {
                const int64_t n = (g0 + v) / vectors, pair = (g0 + v) % vectors;
                x_off[v] = n * image_floats + 2 * pair * W - 1;
                y_off[v] = n * s.K * pixels + 2 * pair * W;
                mask[v] = 2 * pair + 1 < H ? __mmask16(0xffff) : __mmask16(0x00ff);
            }
            for (int64_t k0 = 0; k0 < s.K; k0 += DirectKernel::kMaxKB) {
                const int kb = int(std::min<int64_t>(DirectKernel::kMaxKB, s.K - k0));
                conv2d_direct_dispatch<true>(kb, jv, s.C, xp, plane, W, x_off,
                                             wp + k0 * s.C * 9, y_unit + k0 * pixels, pixels,
                                             y_off, mask, accumulate,
                                             b != nullptr ? b + k0 : nullptr, relu,
                                             gate_unit != nullptr ? gate_unit + k0 * pixels
                                                                  : nullptr);
            }
        }
    });
}
#endif

// The whole batch: see the header comment. `accumulate` adds into y instead of assigning;
// `bias` (K values or nullptr) is used only when not accumulating; `relu` clamps the finished
// outputs at 0; a `gate` (nullptr, or laid out like y) zeroes each sum where gate <= 0 before
// it is stored or added (simd/conv3x3_avx512.hpp).
inline void conv2d_direct_forward_batch(const Conv2dSpec& s, int64_t N, int64_t H, int64_t W,
                                        const float* x, const float* w, const float* bias,
                                        float* y, bool accumulate, bool relu = false,
                                        const float* gate = nullptr) {
#if defined(UNETPP_SIMD_AVX512)
    if (W == kDirectPairWidth) {
        conv2d_direct_forward_pairs(s, N, H, x, w, bias, y, accumulate, relu, gate);
        return;
    }
#endif
    constexpr int64_t L = DirectKernel::kLanes, kMaxJV = DirectKernel::kMaxJVFew;
    const int64_t JV = conv2d_direct_group_vectors(s.K);
    const DirectRows layout(W);
    const int64_t vectors = layout.vectors, ld = layout.ld, pixels = H * W;
    // bands as large as the scratch allows, but at least two per thread over the batch, and
    // as many units (images x bands) as a multiple of the thread count where the rows allow:
    // band b holds rows [H b / bands, H (b + 1) / bands), so each thread's run of units covers
    // the same number of rows, give or take one (any split gives the same results: each output
    // is one microkernel's sum)
    const int64_t threads = num_threads();
    const int64_t band_max = std::clamp<int64_t>(kDirectBandFloats / (s.C * ld) - 2, 1, H);
    const int64_t min_bands = std::min<int64_t>(H, (2 * threads + N - 1) / N);
    int64_t bands = std::max((H + band_max - 1) / band_max, min_bands);
    while ((N * bands) % threads != 0 && bands < H) ++bands;

    float* wp = scratch<float>(ScratchSlot::kConvPackedWeights, s.K * s.C * 9);
    conv2d_direct_pack_weights(s, w, wp);

    parallel_for(0, N * bands, [&](int64_t unit) {
        const int64_t n = unit / bands, band = unit % bands;
        const int64_t i0 = H * band / bands, i1 = H * (band + 1) / bands;
        const int64_t rows = i1 - i0 + 2, plane = rows * ld;
        float* y_n = y + n * s.K * pixels;
        const float* gate_n = gate != nullptr ? gate + n * s.K * pixels : nullptr;
        float* xp = scratch<float>(ScratchSlot::kConvColumns, s.C * plane);
        conv2d_direct_pad_band(s, H, W, x + n * s.C * pixels, i0, i1, ld, xp);
        // the bias goes in at the store, from a register: no extra pass over y
        const float* b = accumulate ? nullptr : bias;

        // 2. groups of up to kMaxJV output vectors (more when K <= 3), in raster order, times
        // blocks of kMaxKB channels
        const int64_t count = (i1 - i0) * vectors;
        for (int64_t g0 = 0; g0 < count; g0 += JV) {
            const int jv = int(std::min(JV, count - g0));
            int64_t x_off[kMaxJV], y_off[kMaxJV];
            DirectMask mask[kMaxJV];
            for (int v = 0; v < jv; ++v) {
                const int64_t row = (g0 + v) / vectors, col = (g0 + v) % vectors * L;
                x_off[v] = row * ld + col;
                y_off[v] = (i0 + row) * W + col;
                mask[v] = col + L <= W ? DirectKernel::kFullMask : layout.tail;
            }
            for (int64_t k0 = 0; k0 < s.K; k0 += DirectKernel::kMaxKB) {
                const int kb = int(std::min<int64_t>(DirectKernel::kMaxKB, s.K - k0));
                conv2d_direct_dispatch(kb, jv, s.C, xp, plane, ld, x_off, wp + k0 * s.C * 9,
                                       y_n + k0 * pixels, pixels, y_off, mask, accumulate,
                                       b != nullptr ? b + k0 : nullptr, relu,
                                       gate_n != nullptr ? gate_n + k0 * pixels : nullptr);
            }
        }
    });
}

// Calls DirectKernel::run_weight<kb> for a runtime kb in [1, kMaxKB].
template <int KB = DirectKernel::kMaxKB, class... Args>
void conv2d_direct_weight_dispatch(int kb, Args... args) {
    if constexpr (KB >= 1) {
        if (kb != KB) {
            conv2d_direct_weight_dispatch<KB - 1>(kb, args...);
        } else {
            DirectKernel::run_weight<KB>(args...);
        }
    }
}

// Input channels per weight-gradient work unit: with the blocks of kMaxKB output channels,
// enough units for the threads while each unit's accumulators (C_unit * 3 * 3 * kMaxKB
// vectors) stay in L1.
constexpr int64_t kDirectWeightChannels = 4;
// Output rows per weight-gradient tile: about 32 vectors of kLanes pixels.
constexpr int64_t kDirectWeightTileVectors = 32;

// Weight gradient of the whole batch:
//   dw[k,c,r,s] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+r-1,j+s-1]
// ASSIGNS dw. Method: the batch is zero-padded once into the calling thread's scratch (N C
// planes of (H+2) rows of ld floats). Work units are (block of kMaxKB output channels, block of
// kDirectWeightChannels input channels); each sums over images, then tiles of rows, then its
// (c, r) pairs, with its lane-wise accumulators kept in an L1 buffer between tiles, and reduces
// the lanes at the end. The order of the sums is fixed, so results do not depend on the thread
// count.
inline void conv2d_direct_backward_weight(const Conv2dSpec& s, int64_t N, int64_t H, int64_t W,
                                          const float* x, const float* dy, float* dw) {
    constexpr int64_t L = DirectKernel::kLanes, KB = DirectKernel::kMaxKB;
    const DirectRows layout(W);
    const int64_t ld = layout.ld, pixels = H * W, plane = (H + 2) * ld;
    const int64_t tile = std::clamp<int64_t>(kDirectWeightTileVectors / layout.vectors, 1, H);

    // 1. the padded batch, images and channels in parallel
    float* xp = scratch<float>(ScratchSlot::kConvColumns, N * s.C * plane);
    parallel_for(0, N, [&](int64_t n) {
        conv2d_direct_pad_band(s, H, W, x + n * s.C * pixels, 0, H, ld, xp + n * s.C * plane);
    });

    // 2. units of (output block, input block): images, tiles, then (c, r) pairs
    const int64_t k_blocks = (s.K + KB - 1) / KB;
    const int64_t c_blocks = (s.C + kDirectWeightChannels - 1) / kDirectWeightChannels;
    parallel_for(0, k_blocks * c_blocks, [&](int64_t unit) {
        const int64_t k0 = unit / c_blocks * KB, c0 = unit % c_blocks * kDirectWeightChannels;
        const int kb = int(std::min<int64_t>(KB, s.K - k0));
        const int64_t cb = std::min<int64_t>(kDirectWeightChannels, s.C - c0);
        const int64_t acc_floats = 3 * KB * L;  // one (c, r) pair's vectors
        float* acc = scratch<float>(ScratchSlot::kConvPartial, cb * 3 * acc_floats);
        std::fill(acc, acc + cb * 3 * acc_floats, 0.0f);
        for (int64_t n = 0; n < N; ++n) {
            const float* dy_n = dy + (n * s.K + k0) * pixels;
            for (int64_t i0 = 0; i0 < H; i0 += tile) {
                const int64_t rows = std::min(tile, H - i0);
                for (int64_t c = 0; c < cb; ++c) {
                    const float* xc = xp + (n * s.C + c0 + c) * plane + i0 * ld;
                    for (int r = 0; r < 3; ++r) {
                        conv2d_direct_weight_dispatch(kb, rows, W, xc + r * ld, ld,
                                                      dy_n + i0 * W, pixels, layout.tail,
                                                      acc + (c * 3 + r) * acc_floats);
                    }
                }
            }
        }

        // 3. lanes to weights: acc of (c, r) holds (kk, s) vectors
        for (int64_t c = 0; c < cb; ++c) {
            for (int r = 0; r < 3; ++r) {
                const float* a = acc + (c * 3 + r) * acc_floats;
                for (int kk = 0; kk < kb; ++kk) {
                    for (int t = 0; t < 3; ++t) {
                        dw[((k0 + kk) * s.C + c0 + c) * 9 + r * 3 + t] =
                            DirectKernel::lanes_sum(a + (kk * 3 + t) * L);
                    }
                }
            }
        }
    });
}

#if defined(UNETPP_SIMD_AVX512)
// Channel blocks of the lanes weight gradient per work unit, at most: a unit's accumulators
// (27 vectors of 16 floats a block, 7 KiB for 4 blocks) stay in L1 beside a tile of dy.
constexpr int64_t kDirectLanesMaxBlocks = 4;
// Pixels per tile of the lanes weight gradient: 64 bytes of dy each, 8 KiB a tile.
constexpr int64_t kDirectLanesTilePixels = 128;

// How the lanes weight gradient cuts its input channels: c_blocks blocks of 2 or 3 channels
// (block b holds [b*C/c_blocks, (b+1)*C/c_blocks)), in `groups` runs of consecutive blocks.
struct LanesSplit {
    int64_t c_blocks = 0, groups = 0;
};

// The split for C input channels, k_blocks blocks of 16 output channels and `threads` threads.
// A unit is (output block, group) and costs in proportion to its group's channels; units are
// handed out in contiguous runs, group-major. One thread: the fewest blocks of at most 3
// channels, and the fewest groups of at most kDirectLanesMaxBlocks blocks. Several: the fewest
// groups whose units give every thread the same channel count to within 2%, with those blocks
// if they allow it, else with c_blocks a multiple of groups so that each group holds C / groups
// channels, give or take one (blocks given out unevenly left one thread 12% more work than the
// other on 32 channels).
// Only the split of the work depends on the thread count; each dw element's order of
// summation does not.
inline LanesSplit conv2d_direct_lanes_split(int64_t C, int64_t k_blocks, int64_t threads) {
    const int64_t min_blocks = (C + 2) / 3;
    const int64_t g_min = (min_blocks + kDirectLanesMaxBlocks - 1) / kDirectLanesMaxBlocks;
    if (threads <= 1) return {min_blocks, g_min};
    // the largest thread's share of the channel work, over the mean
    auto imbalance = [&](const LanesSplit& sp) {
        const int64_t units = k_blocks * sp.groups;
        auto group_channels = [&](int64_t g) {
            const int64_t b0 = g * sp.c_blocks / sp.groups, b1 = (g + 1) * sp.c_blocks / sp.groups;
            return b1 * C / sp.c_blocks - b0 * C / sp.c_blocks;
        };
        int64_t worst = 0;
        for (int64_t t = 0; t < threads; ++t) {
            int64_t load = 0;
            for (int64_t u = even_split(units, threads, t); u < even_split(units, threads, t + 1);
                 ++u) {
                load += group_channels(u / k_blocks);
            }
            worst = std::max(worst, load);
        }
        return double(worst) * double(threads) / double(k_blocks * C);
    };
    // candidates in order of preference: fewest groups first (each group reads all of dy);
    // for each count the one-thread blocks, then blocks evened out over the groups (c_blocks a
    // multiple of groups), which may take more 2-channel blocks. The first within 2% of even
    // wins, else the first within 1% of the best candidate.
    std::vector<std::pair<LanesSplit, double>> candidates;
    for (int64_t g = g_min; g <= 4 * g_min + threads; ++g) {
        if (k_blocks * g < threads) continue;
        for (const LanesSplit sp : {LanesSplit{min_blocks, g},
                                    LanesSplit{g * ((min_blocks + g - 1) / g), g}}) {
            if (sp.c_blocks > C / 2 || g > sp.c_blocks) continue;  // blocks of >= 2 channels
            const double r = imbalance(sp);
            if (r <= 1.02) return sp;
            candidates.push_back({sp, r});
        }
    }
    if (candidates.empty()) {  // too few channels for the threads: one group a block
        return {min_blocks, min_blocks};
    }
    double best = candidates[0].second;
    for (const auto& c : candidates) best = std::min(best, c.second);
    for (const auto& c : candidates) {
        if (c.second <= best + 0.01) return c.first;
    }
    return candidates[0].first;
}

// Bytes of padded input and transposed dy per chunk of images of the lanes weight gradient:
// one chunk is prepared and then consumed while it is still in the last-level cache.
constexpr int64_t kDirectLanesChunkBytes = int64_t(4) << 20;

// Images per chunk for the lanes weight gradient: as many as fit in chunk_bytes, rounded down
// to a multiple of the thread count (so that the preparing pass keeps every thread busy), but
// at least one per thread and at most N.
inline int64_t conv2d_direct_lanes_chunk(int64_t N, int64_t image_bytes, int64_t threads,
                                         int64_t chunk_bytes) {
    int64_t chunk = std::max<int64_t>(1, chunk_bytes / std::max<int64_t>(1, image_bytes));
    chunk = std::max(chunk / threads * threads, threads);
    return std::min(chunk, N);
}

// Weight gradient when K is a multiple of 16, with the output channels in the lanes. The batch
// is taken in chunks of images (conv2d_direct_lanes_chunk). For each chunk, the images are
// zero-padded as in conv2d_direct_backward_weight and dy is transposed to pixel-major (planes
// of H*W pixels of K floats), in the calling thread's scratch; then the work units read them.
// The input channels are cut into blocks of 2 or 3 (run_weight_lanes keeps 9 accumulators a
// channel in registers) and the blocks into groups (conv2d_direct_lanes_split). A work unit
// is (16 output channels, one group); it walks the chunk's images and tiles of
// kDirectLanesTilePixels pixels, and runs every block of its group on a tile while that tile
// of dy is in L1. Its accumulators (one dw's worth for all units, in the calling thread's
// scratch) carry over from chunk to chunk. Each dw element is thus one unit's sum in raster
// order of (image, pixel): results depend neither on the thread count nor on the chunk size.
// ASSIGNS dw. With image_sums (N*K floats, or nullptr) it also ASSIGNS image_sums[n*K + k] =
// simd::sum of dy's plane (n, k), read while the transpose has it in cache: the bias
// gradient's terms.
inline void conv2d_direct_backward_weight_lanes(const Conv2dSpec& s, int64_t N, int64_t H,
                                                int64_t W, const float* x, const float* dy,
                                                float* dw, float* image_sums = nullptr,
                                                int64_t chunk_bytes = kDirectLanesChunkBytes) {
    constexpr int64_t L = DirectKernel::kLanes, CB = 3, block_floats = CB * 9 * L;
    UNETPP_ASSERT(s.C >= 4, "conv2d_direct_backward_weight_lanes: needs C >= 4, got " << s.C);
    const int64_t ld = DirectRows(W).ld, pixels = H * W, plane = (H + 2) * ld;
    const int64_t threads = num_threads();
    const int64_t image_floats = s.C * plane + pixels * s.K;
    const int64_t chunk = conv2d_direct_lanes_chunk(N, image_floats * int64_t(sizeof(float)),
                                                    threads, chunk_bytes);
    float* xp = scratch<float>(ScratchSlot::kConvColumns, chunk * s.C * plane);
    float* dyt = scratch<float>(ScratchSlot::kConvWeights, chunk * pixels * s.K);

    // units of (16 output channels, group of channel blocks); block b holds input channels
    // [b*C/c_blocks, (b+1)*C/c_blocks): 2 or 3 of them, as C >= 4
    const int64_t k_blocks = s.K / L;
    const LanesSplit split = conv2d_direct_lanes_split(s.C, k_blocks, threads);
    const int64_t c_blocks = split.c_blocks, groups = split.groups;
    const int64_t tile = std::clamp<int64_t>(kDirectLanesTilePixels / W, 1, H);
    auto block_channel = [&](int64_t b) { return b * s.C / c_blocks; };
    // block b of output block kb accumulates at acc + (kb * c_blocks + b) * block_floats
    float* acc = scratch<float>(ScratchSlot::kConvPartial, k_blocks * c_blocks * block_floats);

    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t images = std::min(chunk, N - n0);
        // 1. the chunk's padded input and transposed output gradient, images in parallel
        parallel_for(0, images, [&](int64_t i) {
            const int64_t n = n0 + i;
            conv2d_direct_pad_band(s, H, W, x + n * s.C * pixels, 0, H, ld, xp + i * s.C * plane);
            for (int64_t k0 = 0; k0 < s.K; k0 += L) {
                transpose_block(dy + (n * s.K + k0) * pixels, pixels, L, pixels,
                                dyt + i * pixels * s.K + k0, s.K, L);
                if (image_sums == nullptr) continue;
                for (int64_t k = k0; k < k0 + L; ++k) {
                    image_sums[n * s.K + k] = simd::sum(pixels, dy + (n * s.K + k) * pixels);
                }
            }
        });

        // 2. every unit over the chunk's images
        const bool first = n0 == 0, last = n0 + images == N;
        parallel_for(0, k_blocks * groups, [&](int64_t unit) {
            // units of one group are consecutive, so a thread's run of them reuses the group's
            // input from L2 across the output blocks
            const int64_t group = unit / k_blocks, kblock = unit % k_blocks, k0 = kblock * L;
            const int64_t b0 = group * c_blocks / groups, b1 = (group + 1) * c_blocks / groups;
            float* unit_acc = acc + (kblock * c_blocks + b0) * block_floats;
            if (first) std::fill(unit_acc, unit_acc + (b1 - b0) * block_floats, 0.0f);
            for (int64_t i = 0; i < images; ++i) {
                for (int64_t i0 = 0; i0 < H; i0 += tile) {
                    const int64_t rows = std::min(tile, H - i0);
                    const float* d_tile = dyt + (i * pixels + i0 * W) * s.K + k0;
                    for (int64_t b = b0; b < b1; ++b) {
                        const int64_t c0 = block_channel(b), cb = block_channel(b + 1) - c0;
                        const float* x_tile = xp + (i * s.C + c0) * plane + i0 * ld;
                        float* a = unit_acc + (b - b0) * block_floats;
                        if (cb == 3) {
                            DirectKernel::run_weight_lanes<3>(rows, W, x_tile, plane, ld, d_tile,
                                                              s.K, a);
                        } else {
                            DirectKernel::run_weight_lanes<2>(rows, W, x_tile, plane, ld, d_tile,
                                                              s.K, a);
                        }
                    }
                }
            }
            if (!last) return;
            // 3. accumulators to dw: block b's vector (c * 9 + tap) holds 16 output channels
            for (int64_t b = b0; b < b1; ++b) {
                const int64_t c0 = block_channel(b), cb = block_channel(b + 1) - c0;
                const float* a = unit_acc + (b - b0) * block_floats;
                for (int64_t c = 0; c < cb; ++c) {
                    for (int64_t tap = 0; tap < 9; ++tap) {
                        for (int64_t kk = 0; kk < L; ++kk) {
                            dw[((k0 + kk) * s.C + c0 + c) * 9 + tap] = a[(c * 9 + tap) * L + kk];
                        }
                    }
                }
            }
        });
    }
}
#endif  // UNETPP_SIMD_AVX512: the lanes weight gradient

}  // namespace detail
#endif  // UNETPP_CONV_DIRECT

// Direct 3x3 forward convolution (stride 1, pad 1): the same contract as conv2d_forward
// (ASSIGNS y = bias + conv(x, weight); bias may be nullptr). Requires conv2d_direct_applies<T>
// (Error otherwise: use conv2d_forward, which picks this kernel where it applies) and the
// shapes conv2d_forward requires (ShapeError naming expected and actual otherwise).
template <class T>
void conv2d_forward_direct(const Conv2dSpec& spec, ConstTensorView<T> x,
                           ConstTensorView<T> weight, const T* bias, TensorView<T> y,
                           ConvActivation activation = ConvActivation::none) {
    detail::conv2d_check_input("conv2d_forward_direct", spec, "input", x, weight);
    detail::conv2d_check_output("conv2d_forward_direct", spec, x, "output", y);
    if (!conv2d_direct_applies<T>(spec)) {
        throw Error(detail::concat("conv2d_forward_direct: needs a 3x3, stride 1, pad 1 float "
                                   "convolution on an AVX-512 or AVX2 build; got ", spec.R, "x",
                                   spec.S,
                                   " stride ", spec.stride, " pad ", spec.pad, " (",
                                   UNETPP_SIMD_NAME, "): use conv2d_forward"));
    }
#if defined(UNETPP_CONV_DIRECT)
    if constexpr (std::is_same<T, float>::value) {
        detail::conv2d_direct_forward_batch(spec, x.n(), x.h(), x.w(), x.data(), weight.data(),
                                            bias, y.data(), false,
                                            activation == ConvActivation::relu);
    }
#else
    (void)bias;  // unreachable: conv2d_direct_applies is false on this build
    (void)activation;
#endif
}

}  // namespace unetpp
