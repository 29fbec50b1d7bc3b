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

// Values per parallel block: 256 KiB of floats, large enough to amortise a thread's start.
constexpr int64_t kFillBlock = 65536;

// Sets p[0, count) to value, in parallel blocks of kFillBlock.
template <class T>
void fill_parallel(T* p, int64_t count, T value) {
    const int64_t blocks = (count + kFillBlock - 1) / kFillBlock;
    if (blocks <= 1) {
        std::fill(p, p + count, value);
        return;
    }
    parallel_for(0, blocks, [&](int64_t b) {
        std::fill(p + b * kFillBlock, p + std::min(count, (b + 1) * kFillBlock), value);
    });
}

// Zeroes every element of t, in parallel.
template <class T>
void zero_parallel(Tensor<T>& t) {
    fill_parallel(t.data(), t.numel(), T(0));
}

}  // namespace unetpp
