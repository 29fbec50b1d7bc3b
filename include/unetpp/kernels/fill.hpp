#pragma once
// Filling a contiguous buffer with one value, split over the threads.
//
// The backward passes ADD into zeroed gradient buffers, and at batch 16 of 128x128 a decoder
// gradient is tens of megabytes: filled by one thread while the others wait, that memset was a
// serial few percent of a 2-thread training step. Every element gets the same value whatever
// the thread count.

#include <algorithm>
#include <cstdint>

#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// Sets p[0, count) to value, in the parallel blocks of the elementwise kernels
// (detail::elementwise_blocks: one thread for a buffer of a single block).
template <class T>
void fill_parallel(T* p, int64_t count, T value) {
    detail::elementwise_blocks(count, [&](int64_t lo, int64_t hi) {
        std::fill(p + lo, p + hi, value);
    });
}

// Zeroes every element of t, in parallel.
template <class T>
void zero_parallel(Tensor<T>& t) {
    fill_parallel(t.data(), t.numel(), T(0));
}

}  // namespace unetpp
