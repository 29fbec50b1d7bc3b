#pragma once
// Gradient norms and clipping by global norm (Pascanu et al., arXiv:1211.5063).
//
//   norm = sqrt(sum over trainable, non-frozen parameters of sum_i grad[i]^2)
//   if norm > max_norm:  grad <- grad * (max_norm / norm)
// Squares are summed in double over fixed blocks of each parameter, block sums in block order and
// parameters in list order, so the norm is identical for any thread count.

#include <cmath>
#include <vector>

#include "unetpp/optim/state.hpp"
#include "unetpp/parameter.hpp"

namespace unetpp {

// The global L2 norm of the gradients of the trainable, non-frozen parameters of `params`.
template <class T>
double grad_global_norm(const ParameterList<T>& params) {
    constexpr int64_t kBlock = 16384;
    double total = 0;
    for (const Parameter<T>* p : params) {
        if (!p->trainable || p->frozen) continue;
        const int64_t count = p->grad.numel();
        const T* g = p->grad.data();
        std::vector<double> block_sum(static_cast<std::size_t>((count + kBlock - 1) / kBlock));
        parallel_for(0, int64_t(block_sum.size()), [&](int64_t b) {
            double s = 0;
            for (int64_t i = b * kBlock; i < std::min(count, (b + 1) * kBlock); ++i) {
                s += double(g[i]) * double(g[i]);
            }
            block_sum[static_cast<std::size_t>(b)] = s;
        });
        for (double s : block_sum) total += s;
    }
    return std::sqrt(total);
}

// Scales the gradients of the trainable, non-frozen parameters so that their global norm is at
// most `max_norm`, and returns the norm before clipping.
// Requires: max_norm > 0 (throws Error otherwise).
// Guarantees: gradients are untouched when the norm is <= max_norm, and also when it is not
//           finite (NaN or inf), so the caller can see the returned value and skip the step.
template <class T>
double grad_clip_global_norm(const ParameterList<T>& params, double max_norm) {
    if (!(max_norm > 0)) {
        throw Error(detail::concat("grad_clip_global_norm: max_norm is ", max_norm,
                                   "; it must be positive"));
    }
    const double norm = grad_global_norm(params);
    if (!std::isfinite(norm) || norm <= max_norm) return norm;
    const T scale = T(max_norm / norm);
    for (Parameter<T>* p : params) {
        if (!p->trainable || p->frozen) continue;
        T* g = p->grad.data();
        detail::optim_for_blocks(p->grad.numel(), [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) g[i] *= scale;
        });
    }
    return norm;
}

}  // namespace unetpp
