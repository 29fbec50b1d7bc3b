#pragma once
// Binary cross-entropy on logits, with optional per-pixel and per-channel weights.
//
//   l(z, t)  = max(z, 0) - z t + log1p(exp(-|z|))          (= -t log s(z) - (1-t) log(1-s(z)))
//   loss     = 1/(N C H W) * sum_{n,c,h,w} wc[c] * wp[n,c',h,w] * l(z[n,c,h,w], t[n,c,h,w])
//   dloss/dz = wc[c] * wp[n,c',h,w] * (s(z) - t) / (N C H W)
//
// s is the logistic sigmoid, wc the per-channel weights (all 1 when none are given), wp the
// optional weight map with c' = c for an N C H W map and c' = 0 for an N 1 H W map (broadcast over
// channels). The mean divides by the element count, not by the sum of weights (as PyTorch's
// BCEWithLogitsLoss does), so a weight map scales the loss instead of renormalising it.
// The formula never exponentiates a positive number: logits of +-100 or more stay finite.

#include <cmath>
#include <vector>

#include "unetpp/losses/loss_checks.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct BceSpec {
    std::vector<double> channel_weights;  // one per output channel; empty means all 1
};

namespace detail {

// The BCE kernel behind every public entry point. Returns the unscaled loss. When dlogits is
// present it becomes `scale * dloss/dz`, assigned (accumulate false) or added (accumulate true).
// Parallel over (n, c) planes; each plane owns its gradient slice and its partial sum, and the
// partial sums are added in plane order.
template <class T>
double bce_apply(const BceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
                 ConstTensorView<T> weight, double scale, TensorView<T> dlogits,
                 bool accumulate) {
    // 1. validate shapes and weights
    const char* name = "bce_loss";
    loss_check_shapes(name, logits, target, dlogits);
    int64_t weight_channels = loss_check_weight_map(name, weight, logits);
    loss_check_channel_weights(name, spec.channel_weights, logits.c());
    const int64_t N = logits.n(), C = logits.c(), HW = logits.h() * logits.w();
    const int64_t count = N * C * HW;
    if (count == 0) {
        throw ShapeError(concat(name, ": logits of shape ", logits.shape().str(),
                                " hold no elements; the mean is undefined"));
    }

    // 2. per-plane weighted sums of l(z, t), and the gradient of each plane
    std::vector<double> plane_sum(static_cast<std::size_t>(N * C), 0.0);
    const double inv_count = 1.0 / double(count);
    parallel_for(0, N * C, [&](int64_t plane) {
        const int64_t n = plane / C, c = plane % C;
        const T* z = logits.data() + plane * HW;
        const T* t = target.data() + plane * HW;
        const T* wp = nullptr;
        if (weight_channels > 0) {
            wp = weight.data() + (n * weight_channels + (weight_channels == 1 ? 0 : c)) * HW;
        }
        const double wc = channel_weight(spec.channel_weights, c);
        T* dz = dlogits.data() ? dlogits.data() + plane * HW : nullptr;
        double sum = 0;
        for (int64_t i = 0; i < HW; ++i) {
            loss_check_target_value(name, t[i], plane * HW + i);
            const double zi = double(z[i]), ti = double(t[i]);
            const double w = wp ? wc * double(wp[i]) : wc;
            const double l = std::max(zi, 0.0) - zi * ti + std::log1p(std::exp(-std::abs(zi)));
            sum += w * l;
            if (dz) {
                T g = T(scale * w * (stable_sigmoid(zi) - ti) * inv_count);
                dz[i] = accumulate ? dz[i] + g : g;
            }
        }
        plane_sum[static_cast<std::size_t>(plane)] = sum;
    });

    // 3. fixed-order total
    return ordered_sum(plane_sum) * inv_count;
}

}  // namespace detail

// Mean weighted binary cross-entropy of `logits` against `target` (both N C H W, targets in
// [0, 1]); `weight` is a per-pixel weight map (N 1 H W or N C H W).
// Requires: contiguous tensors of matching shapes, spec.channel_weights empty or one per channel,
//           every target value in [0, 1]. Throws ShapeError / Error naming the mismatch.
// Guarantees: returns the loss and ASSIGNS dloss/dlogits to `dlogits` (same shape as logits);
//           dlogits must not alias logits, target or weight. Loss and gradient are identical for
//           any thread count. On a throw, dlogits is unspecified.
template <class T>
T bce_loss(const BceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
           ConstTensorView<T> weight, TensorView<T> dlogits) {
    if (dlogits.data() == nullptr) {
        throw ShapeError("bce_loss: dlogits is empty; use bce_loss_value for the loss alone");
    }
    return T(detail::bce_apply(spec, logits, target, weight, 1.0, dlogits, false));
}

// bce_loss without a weight map.
template <class T>
T bce_loss(const BceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
           TensorView<T> dlogits) {
    return bce_loss(spec, logits, target, ConstTensorView<T>(), dlogits);
}

// The loss of bce_loss alone, with no gradient (for validation). `weight` may be an empty view.
template <class T>
T bce_loss_value(const BceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
                 ConstTensorView<T> weight = ConstTensorView<T>()) {
    return T(detail::bce_apply(spec, logits, target, weight, 1.0, TensorView<T>(), false));
}

}  // namespace unetpp
