#pragma once
// Adam (Kingma & Ba, arXiv:1412.6980) and AdamW (Loshchilov & Hutter, arXiv:1711.05101).
//
// For each trainable, non-frozen parameter p with gradient g, at step t = 1, 2, ...:
//   Adam:   g <- g + wd p                                    (L2 penalty through the gradient)
//   AdamW:  p <- p (1 - lr wd)                               (decoupled weight decay)
//   m <- b1 m + (1 - b1) g,    v <- b2 v + (1 - b2) g^2
//   p <- p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
// eps sits outside the square root and is added to the bias-corrected sqrt(v_hat), as in the
// paper's Algorithm 1 and PyTorch. Departure from the AdamW paper: its decay is eta_t * lambda
// with a schedule multiplier eta_t; here (as in PyTorch) it is lr * wd, so the decay follows the
// learning-rate schedule.
// Scalars are formed in double; per-element arithmetic runs in T. Elements update independently,
// so results are identical for any thread count.

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "unetpp/optim/state.hpp"
#include "unetpp/parameter.hpp"

namespace unetpp {

struct AdamSpec {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;       // 0: none
    bool decoupled_decay = false;  // true: AdamW's decoupled decay; false: Adam's L2 penalty
};

// AdamW with PyTorch's defaults for the betas and eps.
inline AdamSpec adamw_spec(double lr, double weight_decay) {
    AdamSpec spec;
    spec.lr = lr;
    spec.weight_decay = weight_decay;
    spec.decoupled_decay = true;
    return spec;
}

template <class T>
class Adam {
public:
    // Throws Error unless lr >= 0, 0 <= beta1, beta2 < 1, eps > 0 and weight_decay >= 0.
    explicit Adam(const AdamSpec& spec = AdamSpec()) : spec_(spec) { check_spec(spec); }

    const AdamSpec& spec() const { return spec_; }
    // The learning rate used by step(params) from now on.
    void set_lr(double lr) {
        AdamSpec s = spec_;
        s.lr = lr;
        check_spec(s);
        spec_ = s;
    }
    // Steps taken so far (the t of the last step).
    int64_t step_count() const { return step_; }

    // One Adam step at spec().lr over the trainable, non-frozen parameters of `params`; reads
    // each grad, updates each value and the moments. Frozen parameters keep value and moments.
    // Requires: the same trainable parameters (names, shapes, order) at every call; the first
    //           call fixes them. Throws Error naming the first difference.
    void step(const ParameterList<T>& params) { step(params, spec_.lr); }

    // The same with learning rate `lr` for this step only (e.g. from lr_schedule_at).
    void step(const ParameterList<T>& params, double lr) {
        if (!(lr >= 0)) throw Error(detail::concat("Adam::step: learning rate ", lr, " < 0"));
        if (slots_.empty() && step_ == 0) slots_ = detail::optim_make_slots(params, 2);
        detail::optim_check_same_params("Adam::step", slots_, params);
        ++step_;

        // 1. scalars of this step
        const double bc1 = 1 - std::pow(spec_.beta1, double(step_));
        const double bc2 = 1 - std::pow(spec_.beta2, double(step_));
        const T b1 = T(spec_.beta1), b2 = T(spec_.beta2), eps = T(spec_.eps);
        const T step_size = T(lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
        const T decay = T(1 - lr * spec_.weight_decay), l2 = T(spec_.weight_decay);
        const bool decoupled = spec_.decoupled_decay && spec_.weight_decay != 0;
        const bool coupled = !spec_.decoupled_decay && spec_.weight_decay != 0;

        // 2. elementwise update of each trainable, non-frozen parameter
        std::size_t k = 0;
        for (Parameter<T>* p : params) {
            if (!p->trainable) continue;
            detail::OptimSlot<T>& s = slots_[k++];
            if (p->frozen) continue;
            T* w = p->value.data();
            const T* g = p->grad.data();
            T* m = s.buffers[0].data();
            T* v = s.buffers[1].data();
            detail::optim_for_blocks(p->value.numel(), [&](int64_t lo, int64_t hi) {
                for (int64_t i = lo; i < hi; ++i) {
                    const T gi = coupled ? g[i] + l2 * w[i] : g[i];
                    if (decoupled) w[i] *= decay;
                    m[i] = b1 * m[i] + (T(1) - b1) * gi;
                    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
                    w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
                }
            });
        }
    }

    // The moments as "optim.adam.m.<name>" and "optim.adam.v.<name>" tensors, and metadata
    // "optim.kind" ("adam" or "adamw"), "optim.adam.step" and the hyperparameters (for reading).
    OptimizerState<T> state_save() const {
        OptimizerState<T> state;
        detail::optim_export<T>("optim.adam.", {"m", "v"}, slots_, state);
        state.metadata["optim.kind"] = kind();
        state.metadata["optim.adam.step"] = std::to_string(step_);
        state.metadata["optim.adam.lr"] = format_double(spec_.lr);
        state.metadata["optim.adam.beta1"] = format_double(spec_.beta1);
        state.metadata["optim.adam.beta2"] = format_double(spec_.beta2);
        state.metadata["optim.adam.eps"] = format_double(spec_.eps);
        state.metadata["optim.adam.weight_decay"] = format_double(spec_.weight_decay);
        return state;
    }

    // Restores moments and step count saved by state_save for the same trainable parameters.
    // The hyperparameters stay those of this optimizer's spec.
    // Requires: state from an optimizer of the same kind; one m and one v of the right shape for
    //           every trainable parameter and no other tensor. Throws Error naming the first
    //           problem, and then leaves this optimizer unchanged.
    void state_load(const OptimizerState<T>& state, const ParameterList<T>& params) {
        auto kind_it = state.metadata.find("optim.kind");
        if (kind_it == state.metadata.end() || kind_it->second != kind()) {
            throw Error(detail::concat(
                "Adam::state_load: the state was saved by optimizer kind \"",
                kind_it == state.metadata.end() ? std::string("(none)") : kind_it->second,
                "\", this optimizer is \"", kind(), "\""));
        }
        int64_t step = detail::optim_read_step("Adam::state_load", state, "optim.adam.step");
        if (step == 0 && state.tensors.empty()) {  // saved before the first step
            slots_.clear();
            step_ = 0;
            return;
        }
        auto slots = detail::optim_import<T>("Adam::state_load", "optim.adam.", {"m", "v"},
                                             state, params);
        slots_ = std::move(slots);
        step_ = step;
    }

private:
    const char* kind() const { return spec_.decoupled_decay ? "adamw" : "adam"; }
    static std::string format_double(double x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", x);
        return buf;
    }
    static void check_spec(const AdamSpec& s) {
        bool ok = s.lr >= 0 && s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1 &&
                  s.eps > 0 && s.weight_decay >= 0;
        if (!ok) {
            throw Error(detail::concat("AdamSpec: lr ", s.lr, ", beta1 ", s.beta1, ", beta2 ",
                                       s.beta2, ", eps ", s.eps, ", weight_decay ",
                                       s.weight_decay, " (need lr >= 0, betas in [0, 1), ",
                                       "eps > 0, weight_decay >= 0)"));
        }
    }

    AdamSpec spec_;
    std::vector<detail::OptimSlot<T>> slots_;
    int64_t step_ = 0;
};

}  // namespace unetpp
