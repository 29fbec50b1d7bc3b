#pragma once
// Shape checks and fixed-order reductions shared by the losses in include/unetpp/losses/.
//
// Every loss takes logits and targets of shape N C H W and a gradient of the same shape; an
// optional per-pixel weight map is N 1 H W (broadcast over channels) or N C H W. Reductions run
// per (n, c) plane in double, then over planes in index order, so a loss value never depends on
// the thread count.

#include <cmath>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {
namespace detail {

// Throws ShapeError naming `loss` unless logits, target and dlogits are contiguous N C H W
// tensors of one shape. dlogits may be an empty view (data() == nullptr): no gradient wanted.
template <class T>
void loss_check_shapes(const char* loss, ConstTensorView<T> logits, ConstTensorView<T> target,
                       TensorView<T> dlogits) {
    if (logits.rank() != 4) {
        throw ShapeError(concat(loss, ": logits must be N C H W (rank 4), got shape ",
                                logits.shape().str()));
    }
    if (target.shape() != logits.shape()) {
        throw ShapeError(concat(loss, ": target shape ", target.shape().str(),
                                " differs from logits shape ", logits.shape().str(),
                                " (one target channel per output channel)"));
    }
    contiguous_check(loss, logits);
    contiguous_check(loss, target);
    if (dlogits.data() != nullptr) {
        if (dlogits.shape() != logits.shape()) {
            throw ShapeError(concat(loss, ": dlogits shape ", dlogits.shape().str(),
                                    " differs from logits shape ", logits.shape().str()));
        }
        contiguous_check(loss, dlogits);
    }
}

// Throws ShapeError unless `weight` is absent (data() == nullptr), N 1 H W or N C H W and
// contiguous. Returns the weight's channel count (0 when absent).
template <class T>
int64_t loss_check_weight_map(const char* loss, ConstTensorView<T> weight,
                              ConstTensorView<T> logits) {
    if (weight.data() == nullptr) return 0;
    const Shape& s = logits.shape();
    bool ok = weight.rank() == 4 && weight.dim(0) == s[0] && weight.dim(2) == s[2] &&
              weight.dim(3) == s[3] && (weight.dim(1) == 1 || weight.dim(1) == s[1]);
    if (!ok) {
        throw ShapeError(concat(loss, ": weight map shape ", weight.shape().str(),
                                " fits neither [", s[0], ", 1, ", s[2], ", ", s[3], "] nor ",
                                s.str()));
    }
    contiguous_check(loss, weight);
    return weight.dim(1);
}

// Throws ShapeError unless `channel_weights` is empty (all ones) or has one entry per channel.
inline void loss_check_channel_weights(const char* loss, const std::vector<double>& weights,
                                       int64_t channels) {
    if (!weights.empty() && static_cast<int64_t>(weights.size()) != channels) {
        throw ShapeError(concat(loss, ": ", weights.size(), " channel weights given for ",
                                channels, " output channels (give one per channel, or none)"));
    }
}

inline double channel_weight(const std::vector<double>& weights, int64_t c) {
    return weights.empty() ? 1.0 : weights[static_cast<std::size_t>(c)];
}

// Throws Error unless 0 <= t <= 1 (catches 0/255 masks and label ids passed as targets).
template <class T>
void loss_check_target_value(const char* loss, T t, int64_t flat_index) {
    if (!(t >= T(0) && t <= T(1))) {
        throw Error(concat(loss, ": target value ", t, " at flat index ", flat_index,
                           " is outside [0, 1] (scale 0/255 masks to 0/1)"));
    }
}

// Numerically stable logistic function: never evaluates exp of a large positive number.
template <class T>
T stable_sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    T e = std::exp(z);
    return e / (T(1) + e);
}

// Sum of `values` in index order.
inline double ordered_sum(const std::vector<double>& values) {
    double s = 0;
    for (double v : values) s += v;
    return s;
}

}  // namespace detail
}  // namespace unetpp
