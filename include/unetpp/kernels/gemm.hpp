#pragma once
// General matrix multiply, row-major:
//   C[i,j] = (accumulate ? C[i,j] : 0) + sum_k op(A)[i,k] * op(B)[k,j],   i < M, j < N, k < K
// with op(A) = A^T when trans_a and op(B) = B^T when trans_b (GemmSpec in gemm_reference.hpp).
//
// Method (after Goto and van de Geijn, "Anatomy of high-performance matrix multiplication",
// ACM TOMS 2008, and the BLIS framework): A is packed once into column-interleaved row blocks of
// at most kMaxMR rows; for each K block of at most kKc and each NR-wide strip of columns (32 on
// AVX-512, 16 on AVX2), the strip of B is packed into a contiguous panel that stays in L1 while
// the register-blocked microkernel (simd/gemm_avx512.hpp, simd/gemm_avx2.hpp, or the portable
// one below) sweeps every row block of A over it. Adjacent strips are packed a group at a time
// (kGemmGroupFloats), so a wide row-major B is read in runs of several cache lines per row.
//
// Threads split the column strips, or the row blocks when M is the long side; every C element is
// summed in the same k order whatever the thread count, so results are bit-identical for 1 or
// many threads. Scratch for packing comes from
// kernels/scratch.hpp (no allocation in steady state).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "unetpp/kernels/gemm_reference.hpp"
#include "unetpp/kernels/scratch.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"

#if defined(UNETPP_SIMD_AVX512)
#include "unetpp/simd/gemm_avx512.hpp"
#elif defined(UNETPP_SIMD_AVX2)
#include "unetpp/simd/gemm_avx2.hpp"
#endif

namespace unetpp {
namespace detail {

// Portable microkernel with the same contract as the SIMD ones: an MR x 8 tile of C.
template <class T>
struct GemmKernelScalar {
    static constexpr int kNR = 8;
    static constexpr int kMaxMR = 4;

    template <int MR>
    static void run(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid,
                    bool accumulate) {
        T acc[MR][kNR] = {};
        for (int64_t k = 0; k < kc; ++k) {
            for (int i = 0; i < MR; ++i) {
                for (int j = 0; j < kNR; ++j) acc[i][j] += a[i] * b[j];
            }
            a += MR;
            b += kNR;
        }
        for (int i = 0; i < MR; ++i) {
            for (int64_t j = 0; j < n_valid; ++j) {
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
            }
        }
    }
};

// The microkernel for element type T on this build.
template <class T>
struct GemmKernelFor {
    using type = GemmKernelScalar<T>;
};
#if defined(UNETPP_SIMD_AVX512)
template <>
struct GemmKernelFor<float> {
    using type = avx512::GemmKernel;
};
#elif defined(UNETPP_SIMD_AVX2)
template <>
struct GemmKernelFor<float> {
    using type = avx2::GemmKernel;
};
#endif

// Calls Kernel::run<mr> for a runtime mr in [1, Kernel::kMaxMR].
template <class Kernel, int MR = Kernel::kMaxMR, class T>
void gemm_kernel_dispatch(int mr, int64_t kc, const T* a, const T* b, T* c, int64_t ldc,
                          int64_t n_valid, bool accumulate) {
    if constexpr (MR >= 1) {
        if (mr == MR) {
            Kernel::template run<MR>(kc, a, b, c, ldc, n_valid, accumulate);
            return;
        }
        gemm_kernel_dispatch<Kernel, MR - 1>(mr, kc, a, b, c, ldc, n_valid, accumulate);
    }
}

// K blocking: the packed B panel (kKc x NR) stays in L1, the packed A block in L2.
constexpr int64_t kGemmKc = 256;

// The B panels of one group of adjacent strips, packed in one call, take at most this many
// values (64 KiB of float; one panel when a panel alone is larger). Packing strip by strip read
// one cache line from each of kc rows of a wide row-major B, rows that lie N values apart, and
// the hardware prefetchers do not follow a hundred such streams: a GEMM with 16 rows of A over
// a 144 x 16384 B spent two thirds of its time waiting for B. A group reads each row in a run
// of several lines.
constexpr int64_t kGemmGroupFloats = 16384;

// How many strips of NR columns make a group for K blocks of at most kc_max rows.
inline int64_t gemm_group_strips(int64_t kc_max, int64_t nr) {
    return std::max<int64_t>(1, kGemmGroupFloats / (kc_max * nr));
}

// Splits [0, n) into `blocks` nearly equal parts; returns the start of part b.
inline int64_t even_split(int64_t n, int64_t blocks, int64_t b) {
    int64_t base = n / blocks, extra = n % blocks;
    return b * base + std::min(b, extra);
}

// How M rows and K columns are cut into microkernel row blocks and K blocks.
struct GemmBlocking {
    int64_t row_blocks = 0, k_blocks = 0;

    GemmBlocking(int64_t M, int64_t K, int max_mr) {
        row_blocks = (M + max_mr - 1) / max_mr;
        k_blocks = std::max<int64_t>(1, (K + kGemmKc - 1) / kGemmKc);
    }
};

// dst[0..n) = src[0..n), without a library call for short runs.
template <class T>
void copy_span(int64_t n, const T* src, T* dst) {
#if defined(UNETPP_SIMD_AVX512)
    if constexpr (std::is_same<T, float>::value) {
        avx512::copy_floats(n, src, dst);
        return;
    }
#endif
    std::copy(src, src + n, dst);
}

// Writes rows x cols of src (row stride ld_src) transposed: dst[j*ld_dst + i] = src[i*ld_src + j]
// for i < lanes (rows <= lanes; rows i >= rows written as zero), j < cols. Vectorised for
// lanes <= 16 on AVX-512 and for lanes of 8 or 16 on AVX2.
template <class T>
void transpose_block(const T* src, int64_t ld_src, int64_t rows, int64_t cols, T* dst,
                     int64_t ld_dst, int64_t lanes) {
    int64_t j = 0;
#if defined(UNETPP_SIMD_AVX512)
    if constexpr (std::is_same<T, float>::value) {
        if (lanes <= 16) {
            for (; j + 16 <= cols; j += 16) {
                avx512::transpose_16(src + j, ld_src, int(rows), dst + j * ld_dst, ld_dst,
                                     int(lanes));
            }
        }
    }
#elif defined(UNETPP_SIMD_AVX2)
    if constexpr (std::is_same<T, float>::value) {
        if (lanes == 8 || lanes == 16) {
            for (; j + 8 <= cols; j += 8) {
                for (int64_t i0 = 0; i0 < lanes; i0 += 8) {
                    const int valid = int(std::clamp<int64_t>(rows - i0, 0, 8));
                    avx2::transpose_8(src + i0 * ld_src + j, ld_src, valid,
                                      dst + j * ld_dst + i0, ld_dst);
                }
            }
        }
    }
#endif
    for (; j < cols; ++j) {
        for (int64_t i = 0; i < lanes; ++i) {
            dst[j * ld_dst + i] = i < rows ? src[i * ld_src + j] : T(0);
        }
    }
}

// Packs op(A)[r0 + i, k0 + k] for i < mr, k < kc as dst[k*mr + i].
template <class T>
void gemm_pack_a(const GemmSpec& s, const T* a, int64_t r0, int64_t mr, int64_t k0, int64_t kc,
                 T* dst) {
    if (s.trans_a) {
        for (int64_t k = 0; k < kc; ++k) copy_span(mr, a + (k0 + k) * s.lda + r0, dst + k * mr);
        return;
    }
    transpose_block(a + r0 * s.lda + k0, s.lda, mr, kc, dst, mr, mr);
}

// Copies row kk of a group's panels from src[0..n_cols): panel p (at dst + p*kc*NR) gets
// src[p*NR .. p*NR + NR) in its row kk, zeros past n_cols.
template <class T, int NR>
void gemm_pack_row(const T* src, int64_t n_cols, int64_t kk, int64_t kc, T* dst) {
    for (int64_t j = 0; j < n_cols; j += NR) {
        T* out = dst + (j / NR) * kc * NR + kk * NR;
        const int64_t n = std::min<int64_t>(NR, n_cols - j);
        if (n == NR) {
            std::memcpy(out, src + j, NR * sizeof(T));
        } else {
            copy_span(n, src + j, out);
            std::fill(out + n, out + NR, T(0));
        }
    }
}

// Packs op(B)[k0 + k, j0 + j] for k < kc, j < n_cols into ceil(n_cols / NR) panels: panel p at
// dst + p*kc*NR holds columns j0 + p*NR .. + NR as [k*NR + j], zero past n_cols. This is the
// contract of every pack_b that gemm_prepacked takes.
template <class T, int NR>
void gemm_pack_b(const GemmSpec& s, const T* b, int64_t k0, int64_t kc, int64_t j0,
                 int64_t n_cols, T* dst) {
    if (!s.trans_b) {
        // the first line of the next group in each row: the group's own lines are read in a
        // run, which the hardware prefetcher follows, but the jump to the next group's is not
        const bool next = j0 + n_cols < s.N;
        for (int64_t k = 0; k < kc; ++k) {
            const T* row = b + (k0 + k) * s.ldb + j0;
            if (next) __builtin_prefetch(row + n_cols);
            gemm_pack_row<T, NR>(row, n_cols, k, kc, dst);
        }
        return;
    }
    // B^T is stored: column block j of a panel is a transposed block of rows of b
    constexpr int64_t kLanes = NR < 16 ? NR : 16;
    for (int64_t p = 0; p * NR < n_cols; ++p) {
        for (int64_t j = 0; j < NR; j += kLanes) {
            const int64_t col = p * NR + j;
            const int64_t rows = std::max<int64_t>(0, std::min<int64_t>(kLanes, n_cols - col));
            transpose_block(b + (j0 + col) * s.ldb + k0, s.ldb, rows, kc, dst + p * kc * NR + j,
                            NR, kLanes);
        }
    }
}

// Packs all of op(A): K block kb, row block rb at offset k0*M + r0*kc (rows split over threads).
template <class T>
void gemm_pack_a_all(const GemmSpec& s, const T* a, int max_mr, T* a_packed) {
    const GemmBlocking blk(s.M, s.K, max_mr);
    parallel_for(0, blk.row_blocks, [&](int64_t rb) {
        int64_t r0 = even_split(s.M, blk.row_blocks, rb);
        int64_t mr = even_split(s.M, blk.row_blocks, rb + 1) - r0;
        for (int64_t kb = 0; kb < blk.k_blocks; ++kb) {
            int64_t k0 = even_split(s.K, blk.k_blocks, kb);
            int64_t kc = even_split(s.K, blk.k_blocks, kb + 1) - k0;
            gemm_pack_a(s, a, r0, mr, k0, kc, a_packed + k0 * s.M + r0 * kc);
        }
    });
}

// The packed driver on an A packed by gemm_pack_a_all. pack_b(k0, kc, j0, n_cols, dst) fills
// the panels of one group of strips as gemm_pack_b does, so convolutions can pack straight from
// an image. Requires M, N, K > 0.
template <class T, class PackB>
void gemm_prepacked(const GemmSpec& s, const T* a_packed, PackB&& pack_b, T* c) {
    using Kernel = typename GemmKernelFor<T>::type;
    constexpr int NR = Kernel::kNR;
    const GemmBlocking blk(s.M, s.K, Kernel::kMaxMR);
    const int64_t kc_max = even_split(s.K, blk.k_blocks, 1);
    const int64_t group = gemm_group_strips(kc_max, NR);

    // Each work unit is a range of column strips times a range of row blocks. Every C element is
    // summed in K-block order whoever runs it, so the split is free to follow the shape: whole
    // strips per thread when N is the long side; row ranges when M is, each unit packing all of
    // B's panels itself; and both when there are fewer strips than threads.
    const int64_t strips = (s.N + NR - 1) / NR;
    const int64_t threads = num_threads();
    int64_t strip_groups = std::min(strips, threads), row_groups = 1;
    const bool split_rows = threads > 1 && s.M > s.N && blk.row_blocks >= threads;
    if (split_rows) {
        strip_groups = 1, row_groups = threads;
    } else if (strips < threads) {
        row_groups = std::min(blk.row_blocks, (threads + strips - 1) / strips);
    }
    // One K block of the strips [strip_lo, strip_hi) (at most `group` of them) against the row
    // blocks [rb_lo, rb_hi).
    auto block = [&](int64_t strip_lo, int64_t strip_hi, int64_t kb, int64_t rb_lo,
                     int64_t rb_hi, T* b_panels) {
        int64_t k0 = even_split(s.K, blk.k_blocks, kb);
        int64_t kc = even_split(s.K, blk.k_blocks, kb + 1) - k0;
        const int64_t j_lo = strip_lo * NR, j_hi = std::min<int64_t>(s.N, strip_hi * NR);
        pack_b(k0, kc, j_lo, j_hi - j_lo, b_panels);
        bool acc = s.accumulate || kb > 0;
        for (int64_t strip = strip_lo; strip < strip_hi; ++strip) {
            const T* panel = b_panels + (strip - strip_lo) * kc * NR;
            int64_t j0 = strip * NR;
            int64_t n_valid = std::min<int64_t>(NR, s.N - j0);
            for (int64_t rb = rb_lo; rb < rb_hi; ++rb) {
                int64_t r0 = even_split(s.M, blk.row_blocks, rb);
                int mr = int(even_split(s.M, blk.row_blocks, rb + 1) - r0);
                gemm_kernel_dispatch<Kernel>(mr, kc, a_packed + k0 * s.M + r0 * kc, panel,
                                             c + r0 * s.ldc + j0, s.ldc, n_valid, acc);
            }
        }
    };
    auto run = [&](int64_t strip_lo, int64_t strip_hi, int64_t rb_lo, int64_t rb_hi) {
        T* b_panels = scratch<T>(ScratchSlot::kGemmB, group * kc_max * NR + NR);
        if (split_rows) {
            // K block outermost: the unit's slice of packed A for one K block stays in L2 while
            // each group's panels sweep it
            for (int64_t kb = 0; kb < blk.k_blocks; ++kb) {
                for (int64_t g = strip_lo; g < strip_hi; g += group) {
                    block(g, std::min(strip_hi, g + group), kb, rb_lo, rb_hi, b_panels);
                }
            }
            return;
        }
        // group outermost: B is read one group of strips at a time, along k
        for (int64_t g = strip_lo; g < strip_hi; g += group) {
            for (int64_t kb = 0; kb < blk.k_blocks; ++kb) {
                block(g, std::min(strip_hi, g + group), kb, rb_lo, rb_hi, b_panels);
            }
        }
    };
    parallel_for(0, strip_groups * row_groups, [&](int64_t unit) {
        const int64_t sg = unit / row_groups, g = unit % row_groups;
        run(even_split(strips, strip_groups, sg), even_split(strips, strip_groups, sg + 1),
            even_split(blk.row_blocks, row_groups, g),
            even_split(blk.row_blocks, row_groups, g + 1));
    });
}

// Packs A into this thread's scratch, then runs gemm_prepacked.
template <class T, class PackB>
void gemm_packed(const GemmSpec& s, const T* a, PackB&& pack_b, T* c) {
    using Kernel = typename GemmKernelFor<T>::type;
    T* a_packed = scratch<T>(ScratchSlot::kGemmA, s.M * s.K);
    gemm_pack_a_all(s, a, Kernel::kMaxMR, a_packed);
    gemm_prepacked(s, a_packed, pack_b, c);
}

// Few outputs over a long K, with A's rows and B^T's rows contiguous in k: the dot-product
// kernel reads both straight from the caller's memory, where the packed path would spend more
// time transposing B^T (and A) into panels than multiplying. AVX-512, float only.
constexpr int64_t kGemmDotMaxOutputs = 1024;
constexpr int64_t kGemmDotMinK = 1024;

template <class T>
bool gemm_dot_suits(const GemmSpec& s) {
#if defined(UNETPP_SIMD_AVX512)
    return std::is_same<T, float>::value && !s.trans_a && s.trans_b &&
           s.M * s.N <= kGemmDotMaxOutputs && s.K >= kGemmDotMinK;
#else
    (void)s;
    return false;
#endif
}

#if defined(UNETPP_SIMD_AVX512)
// Calls GemmDotKernel::run<mr, nr> for runtime mr <= 4, nr <= 6.
template <int MR = avx512::GemmDotKernel::kMaxMR, int NR = avx512::GemmDotKernel::kMaxNR>
void gemm_dot_dispatch(int mr, int nr, int64_t K, const float* a, int64_t lda, const float* b,
                       int64_t ldb, float* c, int64_t ldc, bool accumulate) {
    if constexpr (MR >= 1 && NR >= 1) {
        if (mr == MR && nr == NR) {
            avx512::GemmDotKernel::run<MR, NR>(K, a, lda, b, ldb, c, ldc, accumulate);
        } else if (mr == MR) {
            gemm_dot_dispatch<MR, NR - 1>(mr, nr, K, a, lda, b, ldb, c, ldc, accumulate);
        } else {
            gemm_dot_dispatch<MR - 1, NR>(mr, nr, K, a, lda, b, ldb, c, ldc, accumulate);
        }
    }
}

// C = A * B^T by output tiles of up to 4 x 6, each over all of K. Threads split the tiles, row
// tiles innermost so that consecutive tiles share their rows of B^T in L2. An output's sum does
// not depend on who computes it, so neither do the bits on the thread count.
inline void gemm_dot(const GemmSpec& s, const float* a, const float* b, float* c) {
    using Kernel = avx512::GemmDotKernel;
    const int64_t row_tiles = (s.M + Kernel::kMaxMR - 1) / Kernel::kMaxMR;
    const int64_t col_tiles = (s.N + Kernel::kMaxNR - 1) / Kernel::kMaxNR;
    parallel_for(0, row_tiles * col_tiles, [&](int64_t t) {
        const int64_t rt = t % row_tiles, ct = t / row_tiles;
        const int64_t i0 = even_split(s.M, row_tiles, rt);
        const int mr = int(even_split(s.M, row_tiles, rt + 1) - i0);
        const int64_t j0 = even_split(s.N, col_tiles, ct);
        const int nr = int(even_split(s.N, col_tiles, ct + 1) - j0);
        gemm_dot_dispatch(mr, nr, s.K, a + i0 * s.lda, s.lda, b + j0 * s.ldb, s.ldb,
                          c + i0 * s.ldc + j0, s.ldc, s.accumulate);
    });
}
#endif

// C = accumulate ? C : 0 for an empty sum (K == 0).
template <class T>
void gemm_empty_sum(const GemmSpec& s, T* c) {
    if (s.accumulate) return;
    for (int64_t i = 0; i < s.M; ++i) std::fill(c + i * s.ldc, c + i * s.ldc + s.N, T(0));
}

}  // namespace detail

// C[M,N] = op(A)[M,K] * op(B)[K,N], plus the old C when spec.accumulate (see gemm_reference.hpp
// for the exact indexing). Row-major with row strides lda, ldb, ldc.
// Requires: lda, ldb, ldc at least the stored row lengths (ShapeError otherwise); C must not
// overlap A or B. Guarantees: results independent of the thread count; safe to call inside a
// parallel_for body (it then runs on the calling thread). Works for float (SIMD microkernel) and
// double (portable microkernel).
template <class T>
void gemm(const GemmSpec& spec, const T* a, const T* b, T* c) {
    detail::gemm_check("gemm", spec);
    if (spec.M == 0 || spec.N == 0) return;
    if (spec.K == 0) {
        detail::gemm_empty_sum(spec, c);
        return;
    }
#if defined(UNETPP_SIMD_AVX512)
    if constexpr (std::is_same<T, float>::value) {
        if (detail::gemm_dot_suits<T>(spec)) {
            detail::gemm_dot(spec, a, b, c);
            return;
        }
    }
#endif
    using Kernel = typename detail::GemmKernelFor<T>::type;
    auto pack_b = [&](int64_t k0, int64_t kc, int64_t j0, int64_t n_cols, T* dst) {
        detail::gemm_pack_b<T, Kernel::kNR>(spec, b, k0, kc, j0, n_cols, dst);
    };
    detail::gemm_packed(spec, a, pack_b, c);
}

}  // namespace unetpp
