#pragma once
// The one door to OpenMP. Kernels call parallel_for and never omp_* directly.
//
// Scheduling is static: iteration i always runs whole on one thread, and each kernel makes every
// iteration own a disjoint set of outputs, so results never depend on the thread count. Without
// OpenMP (UNETPP_NO_OPENMP, or a compiler without it) everything runs on the calling thread.

#include <algorithm>
#include <cstdint>
#include <exception>

#if defined(_OPENMP) && !defined(UNETPP_NO_OPENMP)
#include <omp.h>
#define UNETPP_HAS_OPENMP 1
#else
#define UNETPP_HAS_OPENMP 0
#endif

#include "unetpp/error.hpp"

namespace unetpp {

namespace detail {
inline int& thread_setting() {
    static int threads = 0;  // 0: use the OpenMP default
    return threads;
}
}  // namespace detail

// Number of threads parallel_for will use.
inline int num_threads() {
#if UNETPP_HAS_OPENMP
    int t = detail::thread_setting();
    return t > 0 ? t : omp_get_max_threads();
#else
    return 1;
#endif
}

// Sets the thread count for later parallel_for calls; n <= 0 restores the default. Without
// OpenMP the setting is remembered but everything still runs on one thread.
inline void set_num_threads(int n) { detail::thread_setting() = n > 0 ? n : 0; }

// Index of the calling thread inside a parallel_for body, 0 outside one.
inline int thread_index() {
#if UNETPP_HAS_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Calls body(i) for every i in [begin, end), split statically over num_threads() threads.
// Requires: body(i) for distinct i write disjoint memory. Exceptions thrown by body are caught
// and the first one is rethrown on the calling thread after the loop.
template <class Body>
void parallel_for(int64_t begin, int64_t end, Body&& body) {
    if (end <= begin) {
        return;
    }
#if UNETPP_HAS_OPENMP
    int threads = static_cast<int>(std::min<int64_t>(num_threads(), end - begin));
    if (threads > 1 && !omp_in_parallel()) {
        std::exception_ptr error;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = begin; i < end; ++i) {
            try {
                body(i);
            } catch (...) {
#pragma omp critical(unetpp_parallel_error)
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    for (int64_t i = begin; i < end; ++i) {
        body(i);
    }
}

// Splits [0, count) into at most num_threads() contiguous chunks and calls body(lo, hi) on each.
// Chunk boundaries depend on the thread count, so use it only where each index's result does not
// depend on which chunk it falls in.
template <class Body>
void parallel_chunks(int64_t count, Body&& body) {
    if (count <= 0) {
        return;
    }
    int64_t chunks = std::min<int64_t>(num_threads(), count);
    parallel_for(0, chunks, [&](int64_t t) {
        int64_t lo = count * t / chunks;
        int64_t hi = count * (t + 1) / chunks;
        body(lo, hi);
    });
}

namespace detail {

// Elements per parallel block of an elementwise kernel: large enough to amortise a thread's
// start, small enough to share a 1 MiB activation between two threads.
constexpr int64_t kElementwiseBlock = 16384;

// Calls fn(lo, hi) over [0, count) in fixed blocks, in parallel. Elementwise, so deterministic.
template <class Fn>
void elementwise_blocks(int64_t count, Fn&& fn) {
    const int64_t blocks = (count + kElementwiseBlock - 1) / kElementwiseBlock;
    parallel_for(0, blocks, [&](int64_t b) {
        fn(b * kElementwiseBlock, std::min(count, (b + 1) * kElementwiseBlock));
    });
}

}  // namespace detail

}  // namespace unetpp
