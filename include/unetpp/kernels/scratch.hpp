#pragma once
// Reusable scratch memory for kernels (packed GEMM panels, im2col buffers, partial sums).
//
// Each thread owns a few growable, 64-byte aligned buffers, one per ScratchSlot. A buffer grows
// to the largest size ever asked of it and is then reused, so a steady-state training loop does
// no allocation. Slots keep nested users apart: conv2d fills kConvColumns and then calls gemm,
// which packs into kGemmA and kGemmB on the same thread.
//
// Contract: the pointer stays valid until the same thread asks for the same slot again. Contents
// are unspecified on return (not zeroed).

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

enum class ScratchSlot : int {
    kGemmA = 0,        // packed A panels inside gemm
    kGemmB = 1,        // packed B panels inside gemm
    kConvColumns = 2,  // im2col / col2im buffer of a convolution
    kConvWeights = 3,  // rearranged (flipped, transposed) convolution weights
    kConvPartial = 4,  // per-group partial weight gradients
    kConvPackedWeights = 5,  // convolution weights packed for the GEMM microkernel
    kConvBias = 6,           // per-image sums of a convolution's bias gradient
    kConvGated = 7,          // an input gradient before a ReLU's derivative is applied to it
    kCount = 8
};

namespace detail {

class ScratchBuffer {
public:
    void* reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            std::size_t grown = std::max(bytes, capacity_ + capacity_ / 2);
            grown = (grown + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
            void* p = std::aligned_alloc(kTensorAlignment, grown);
            if (p == nullptr) {
                throw Error(concat("scratch buffer: allocation of ", grown,
                                   " bytes failed (out of memory)"));
            }
            data_.reset(p);
            capacity_ = grown;
        }
        return data_.get();
    }

private:
    std::unique_ptr<void, AlignedFree> data_;
    std::size_t capacity_ = 0;
};

inline ScratchBuffer& scratch_buffer(ScratchSlot slot) {
    thread_local ScratchBuffer buffers[static_cast<int>(ScratchSlot::kCount)];
    return buffers[static_cast<int>(slot)];
}

}  // namespace detail

// At least `count` elements of T in this thread's buffer for `slot`; see the contract above.
template <class T>
T* scratch(ScratchSlot slot, int64_t count) {
    UNETPP_ASSERT(count >= 0, "scratch: negative count " << count);
    std::size_t bytes = static_cast<std::size_t>(std::max<int64_t>(count, 1)) * sizeof(T);
    return static_cast<T*>(detail::scratch_buffer(slot).reserve(bytes));
}

}  // namespace unetpp
