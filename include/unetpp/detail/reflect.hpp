#pragma once
// The one reflection rule for indices that fall outside an axis, shared by the U-Net's input
// padding (model/unet.hpp) and the crops of data augmentation (data/augment.hpp).

#include <cstdint>

namespace unetpp {
namespace detail {

// Reflection about the edge pixels ("reflect-101", PyTorch's "reflect"), folded as often as
// needed: i = -1 -> 1, i = L -> L - 2. Requires L >= 1; L = 1 maps every i to 0.
inline int64_t reflect_index(int64_t i, int64_t L) {
    if (L == 1) return 0;
    const int64_t period = 2 * (L - 1);
    i %= period;
    if (i < 0) i += period;
    return i < L ? i : period - i;
}

}  // namespace detail
}  // namespace unetpp
