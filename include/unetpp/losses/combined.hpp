#pragma once
// A weighted sum of binary cross-entropy and soft Dice, the usual nucleus segmentation loss.
//
//   loss = bce_weight * BCE(logits, target, weight map; bce.channel_weights)
//        + dice_weight * Dice(logits, target; dice.channel_weights)
//
// Per-channel control goes through the two specs' channel weights: for outputs "nucleus" and
// "boundary", dice.channel_weights = {1, 0} scores Dice on the nucleus channel only while BCE
// covers both. See losses/bce.hpp and losses/dice.hpp for each term's formula and reduction.

#include "unetpp/losses/bce.hpp"
#include "unetpp/losses/dice.hpp"

namespace unetpp {

struct CombinedLossSpec {
    BceSpec bce;
    DiceSpec dice;
    double bce_weight = 1.0;
    double dice_weight = 1.0;
};

// The two terms of a combined loss, for logging.
struct CombinedLossValue {
    double bce = 0;    // unweighted BCE term
    double dice = 0;   // unweighted Dice term
    double total = 0;  // bce_weight * bce + dice_weight * dice
};

// Combined loss of `logits` against `target`; `weight` is an optional BCE weight map (N 1 H W or
// N C H W, or an empty view).
// Requires: as bce_loss and dice_loss.
// Guarantees: returns both terms and the total, and ASSIGNS dtotal/dlogits to `dlogits`, which
//           must not alias the inputs. Identical for any thread count. A term whose weight is 0 is
//           still evaluated (its value is reported) but adds nothing to the gradient.
template <class T>
CombinedLossValue combined_loss(const CombinedLossSpec& spec, ConstTensorView<T> logits,
                                ConstTensorView<T> target, ConstTensorView<T> weight,
                                TensorView<T> dlogits) {
    if (dlogits.data() == nullptr) {
        throw ShapeError("combined_loss: dlogits is empty; use combined_loss_value instead");
    }
    CombinedLossValue value;
    value.bce = detail::bce_apply(spec.bce, logits, target, weight, spec.bce_weight, dlogits,
                                  false);
    value.dice = detail::dice_apply(spec.dice, logits, target, spec.dice_weight, dlogits, true);
    value.total = spec.bce_weight * value.bce + spec.dice_weight * value.dice;
    return value;
}

// The loss of combined_loss alone, with no gradient (for validation).
template <class T>
CombinedLossValue combined_loss_value(const CombinedLossSpec& spec, ConstTensorView<T> logits,
                                      ConstTensorView<T> target,
                                      ConstTensorView<T> weight = ConstTensorView<T>()) {
    CombinedLossValue value;
    value.bce = detail::bce_apply(spec.bce, logits, target, weight, 1.0, TensorView<T>(), false);
    value.dice = detail::dice_apply(spec.dice, logits, target, 1.0, TensorView<T>(), false);
    value.total = spec.bce_weight * value.bce + spec.dice_weight * value.dice;
    return value;
}

}  // namespace unetpp
