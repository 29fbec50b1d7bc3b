#pragma once
// Stochastic gradient descent with momentum, optional Nesterov momentum and L2 weight decay.
//
// For each trainable, non-frozen parameter p with gradient g (PyTorch's formulation, no
// dampening; Sutskever et al. 2013 for the Nesterov form):
//   g <- g + wd p
//   b <- mu b + g                        (b starts at 0, so the first step has b = g)
//   p <- p - lr * (g + mu b)             with Nesterov
//   p <- p - lr * b                      without
// Elements update independently, so results are identical for any thread count.

#include <string>
#include <vector>

#include "unetpp/optim/state.hpp"
#include "unetpp/parameter.hpp"

namespace unetpp {

struct SgdSpec {
    double lr = 1e-2;
    double momentum = 0.9;  // mu; 0 is plain SGD
    double weight_decay = 0;
    bool nesterov = false;
};

template <class T>
class Sgd {
public:
    // Throws Error unless lr >= 0, 0 <= momentum < 1 and weight_decay >= 0.
    explicit Sgd(const SgdSpec& spec = SgdSpec()) : spec_(spec) { check_spec(spec); }

    const SgdSpec& spec() const { return spec_; }
    void set_lr(double lr) {
        SgdSpec s = spec_;
        s.lr = lr;
        check_spec(s);
        spec_ = s;
    }
    int64_t step_count() const { return step_; }

    // One step at spec().lr; contract as Adam::step.
    void step(const ParameterList<T>& params) { step(params, spec_.lr); }

    // One step with learning rate `lr` for this step only.
    void step(const ParameterList<T>& params, double lr) {
        if (!(lr >= 0)) throw Error(detail::concat("Sgd::step: learning rate ", lr, " < 0"));
        if (slots_.empty() && step_ == 0) slots_ = detail::optim_make_slots(params, 1);
        detail::optim_check_same_params("Sgd::step", slots_, params);
        ++step_;

        const T mu = T(spec_.momentum), wd = T(spec_.weight_decay), rate = T(lr);
        const bool nesterov = spec_.nesterov;
        std::size_t k = 0;
        for (Parameter<T>* p : params) {
            if (!p->trainable) continue;
            detail::OptimSlot<T>& s = slots_[k++];
            if (p->frozen) continue;
            T* w = p->value.data();
            const T* g = p->grad.data();
            T* b = s.buffers[0].data();
            detail::optim_for_blocks(p->value.numel(), [&](int64_t lo, int64_t hi) {
                for (int64_t i = lo; i < hi; ++i) {
                    const T gi = g[i] + wd * w[i];
                    b[i] = mu * b[i] + gi;
                    w[i] -= rate * (nesterov ? gi + mu * b[i] : b[i]);
                }
            });
        }
    }

    // Momentum buffers as "optim.sgd.momentum.<name>"; metadata "optim.kind" = "sgd" and
    // "optim.sgd.step".
    OptimizerState<T> state_save() const {
        OptimizerState<T> state;
        detail::optim_export<T>("optim.sgd.", {"momentum"}, slots_, state);
        state.metadata["optim.kind"] = "sgd";
        state.metadata["optim.sgd.step"] = std::to_string(step_);
        return state;
    }

    // Restores what state_save wrote for the same trainable parameters; contract as
    // Adam::state_load.
    void state_load(const OptimizerState<T>& state, const ParameterList<T>& params) {
        auto kind_it = state.metadata.find("optim.kind");
        if (kind_it == state.metadata.end() || kind_it->second != "sgd") {
            throw Error(detail::concat(
                "Sgd::state_load: the state was saved by optimizer kind \"",
                kind_it == state.metadata.end() ? std::string("(none)") : kind_it->second,
                "\", this optimizer is \"sgd\""));
        }
        int64_t step = detail::optim_read_step("Sgd::state_load", state, "optim.sgd.step");
        if (step == 0 && state.tensors.empty()) {  // saved before the first step
            slots_.clear();
            step_ = 0;
            return;
        }
        auto slots = detail::optim_import<T>("Sgd::state_load", "optim.sgd.", {"momentum"},
                                             state, params);
        slots_ = std::move(slots);
        step_ = step;
    }

private:
    static void check_spec(const SgdSpec& s) {
        if (!(s.lr >= 0 && s.momentum >= 0 && s.momentum < 1 && s.weight_decay >= 0)) {
            throw Error(detail::concat("SgdSpec: lr ", s.lr, ", momentum ", s.momentum,
                                       ", weight_decay ", s.weight_decay,
                                       " (need lr >= 0, momentum in [0, 1), weight_decay >= 0)"));
        }
    }

    SgdSpec spec_;
    std::vector<detail::OptimSlot<T>> slots_;
    int64_t step_ = 0;
};

}  // namespace unetpp
