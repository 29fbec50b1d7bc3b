#pragma once
// Learning-rate schedules: constant, step decay or cosine, each optionally after a linear warm-up.
//
// With W = warmup_steps and steps counted from 0:
//   step < W:   lr = base_lr * (step + 1) / W                      (reaches base_lr at step W - 1)
//   otherwise, with s = step - W:
//     constant  lr = base_lr
//     step      lr = base_lr * gamma^floor(s / step_size)
//     cosine    lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(s, D) / D)) / 2,
//               D = total_steps - W, so lr reaches min_lr at step total_steps and stays there
//               (Loshchilov & Hutter, SGDR, arXiv:1608.03983, without restarts).

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "unetpp/error.hpp"

namespace unetpp {

enum class LrDecay { constant, step, cosine };

struct LrScheduleSpec {
    double base_lr = 1e-3;
    LrDecay decay = LrDecay::constant;
    int64_t warmup_steps = 0;  // 0: no warm-up
    int64_t step_size = 1000;  // step decay: steps between multiplications by gamma
    double gamma = 0.1;        // step decay factor
    int64_t total_steps = 0;   // cosine: the step at which lr reaches min_lr
    double min_lr = 0;         // cosine floor
};

// The learning rate at `step` (0-based).
// Requires: step >= 0, base_lr >= 0, warmup_steps >= 0; step decay: step_size > 0, gamma >= 0;
//           cosine: total_steps > warmup_steps, 0 <= min_lr. Throws Error naming the field.
inline double lr_schedule_at(const LrScheduleSpec& spec, int64_t step) {
    // 1. validate
    if (step < 0 || !(spec.base_lr >= 0) || spec.warmup_steps < 0) {
        throw Error(detail::concat("lr_schedule_at: step ", step, ", base_lr ", spec.base_lr,
                                   ", warmup_steps ", spec.warmup_steps,
                                   " (all must be >= 0)"));
    }
    if (spec.decay == LrDecay::step && (spec.step_size <= 0 || !(spec.gamma >= 0))) {
        throw Error(detail::concat("lr_schedule_at: step decay needs step_size > 0 and gamma >= 0",
                                   ", got step_size ", spec.step_size, ", gamma ", spec.gamma));
    }
    if (spec.decay == LrDecay::cosine &&
        (spec.total_steps <= spec.warmup_steps || !(spec.min_lr >= 0))) {
        throw Error(detail::concat("lr_schedule_at: cosine decay needs total_steps (",
                                   spec.total_steps, ") > warmup_steps (", spec.warmup_steps,
                                   ") and min_lr >= 0 (", spec.min_lr, ")"));
    }

    // 2. warm-up
    const int64_t W = spec.warmup_steps;
    if (step < W) return spec.base_lr * double(step + 1) / double(W);

    // 3. decay
    const int64_t s = step - W;
    switch (spec.decay) {
        case LrDecay::constant:
            return spec.base_lr;
        case LrDecay::step:
            return spec.base_lr * std::pow(spec.gamma, double(s / spec.step_size));
        case LrDecay::cosine: {
            const double D = double(spec.total_steps - W);
            const double x = std::min(double(s), D) / D;
            const double pi = std::acos(-1.0);
            return spec.min_lr + (spec.base_lr - spec.min_lr) * (1 + std::cos(pi * x)) / 2;
        }
    }
    throw Error("lr_schedule_at: unknown LrDecay value");
}

}  // namespace unetpp
