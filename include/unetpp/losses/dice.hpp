#pragma once
// Soft Dice loss on sigmoid(logits), per channel.
//
//   p = s(z)  (logistic sigmoid),  for each group g:
//   I_g = sum p t,  P_g = sum p,  T_g = sum t,  S_g = P_g + T_g + eps,  D_g = (2 I_g + eps) / S_g
//   loss      = 1/G * sum_g wc[c(g)] * (1 - D_g)
//   dloss/dz  = wc[c]/G * (D_g / S_g - 2 t / S_g) * p (1 - p)
//
// Groups: by default one group per channel, summed over the whole batch (n, h, w), so G = C and an
// image with an empty mask does not dominate; with DiceSpec::per_image each (n, c) plane is its own
// group (sums over h, w) and G = N C. wc are per-channel weights (all 1 when none are given).
// eps (default 1, the usual "smooth" term) makes an empty target with an empty prediction score
// 0 loss and keeps the gradient bounded. Departure from V-Net's Dice (Milletari et al.,
// arXiv:1606.04797): the denominator sums p and t, not their squares.

#include <cmath>
#include <vector>

#include "unetpp/losses/loss_checks.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct DiceSpec {
    std::vector<double> channel_weights;  // one per output channel; empty means all 1
    double eps = 1.0;                     // smoothing added to numerator and denominator; > 0
    bool per_image = false;               // false: sums over the batch; true: per (n, c) plane
};

namespace detail {

// The Dice kernel behind every public entry point; conventions as detail::bce_apply.
template <class T>
double dice_apply(const DiceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
                  double scale, TensorView<T> dlogits, bool accumulate) {
    // 1. validate
    const char* name = "dice_loss";
    loss_check_shapes(name, logits, target, dlogits);
    loss_check_channel_weights(name, spec.channel_weights, logits.c());
    if (!(spec.eps > 0)) {
        throw Error(concat(name, ": DiceSpec::eps is ", spec.eps, "; it must be positive"));
    }
    const int64_t N = logits.n(), C = logits.c(), HW = logits.h() * logits.w();
    if (N * C == 0) {
        throw ShapeError(concat(name, ": logits of shape ", logits.shape().str(),
                                " have no channel to score"));
    }

    // 2. per-plane sums I = sum p t, P = sum p, T = sum t
    const std::size_t planes = static_cast<std::size_t>(N * C);
    std::vector<double> inter(planes), psum(planes), tsum(planes);
    parallel_for(0, N * C, [&](int64_t plane) {
        const T* z = logits.data() + plane * HW;
        const T* t = target.data() + plane * HW;
        double i_sum = 0, p_sum = 0, t_sum = 0;
        for (int64_t i = 0; i < HW; ++i) {
            loss_check_target_value(name, t[i], plane * HW + i);
            const double p = stable_sigmoid(double(z[i]));
            i_sum += p * double(t[i]);
            p_sum += p;
            t_sum += double(t[i]);
        }
        inter[plane] = i_sum;
        psum[plane] = p_sum;
        tsum[plane] = t_sum;
    });

    // 3. group sums in index order: per plane, or per channel over n = 0..N-1
    const int64_t G = spec.per_image ? N * C : C;
    std::vector<double> g_inter(G, 0.0), g_denominator(G, 0.0);
    for (int64_t plane = 0; plane < N * C; ++plane) {
        const int64_t g = spec.per_image ? plane : plane % C;
        g_inter[g] += inter[plane];
        g_denominator[g] += psum[plane] + tsum[plane];
    }
    double loss = 0;
    std::vector<double> g_dice(G);
    for (int64_t g = 0; g < G; ++g) {
        g_denominator[g] += spec.eps;
        g_dice[g] = (2 * g_inter[g] + spec.eps) / g_denominator[g];
        loss += channel_weight(spec.channel_weights, g % C) * (1 - g_dice[g]);
    }
    loss /= double(G);
    if (dlogits.data() == nullptr) return loss;

    // 4. gradient, plane by plane
    parallel_for(0, N * C, [&](int64_t plane) {
        const int64_t g = spec.per_image ? plane : plane % C;
        const double coef = scale * channel_weight(spec.channel_weights, plane % C) / double(G);
        const double S = g_denominator[g], D = g_dice[g];
        const T* z = logits.data() + plane * HW;
        const T* t = target.data() + plane * HW;
        T* dz = dlogits.data() + plane * HW;
        for (int64_t i = 0; i < HW; ++i) {
            const double p = stable_sigmoid(double(z[i]));
            const T v = T(coef * (D - 2 * double(t[i])) / S * p * (1 - p));
            dz[i] = accumulate ? dz[i] + v : v;
        }
    });
    return loss;
}

}  // namespace detail

// Soft Dice loss of sigmoid(logits) against `target` (both N C H W, targets in [0, 1]).
// Requires: contiguous tensors of one shape, channel_weights empty or one per channel, eps > 0.
// Guarantees: returns the loss and ASSIGNS dloss/dlogits to `dlogits`, which must not alias the
//           inputs. Identical for any thread count. On a throw, dlogits is unspecified.
template <class T>
T dice_loss(const DiceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target,
            TensorView<T> dlogits) {
    if (dlogits.data() == nullptr) {
        throw ShapeError("dice_loss: dlogits is empty; use dice_loss_value for the loss alone");
    }
    return T(detail::dice_apply(spec, logits, target, 1.0, dlogits, false));
}

// The loss of dice_loss alone, with no gradient (for validation).
template <class T>
T dice_loss_value(const DiceSpec& spec, ConstTensorView<T> logits, ConstTensorView<T> target) {
    return T(detail::dice_apply(spec, logits, target, 1.0, TensorView<T>(), false));
}

}  // namespace unetpp
