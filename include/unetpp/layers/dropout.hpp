#pragma once
// Dropout, inverted (Srivastava et al., JMLR 15, 2014): active in training only.
//
//   training:   y = x * mask,   mask = 1 / (1 - p) with probability 1 - p, else 0
//   inference:  y = x
//   backward:   dx += dy * mask
//
// Scaling at training time keeps the expected activation unchanged, so inference is a copy.
// The mask of forward number t for batch item n comes from its own Rng seeded by (seed, t, n), so
// it is the same for any thread count and a run is repeatable from its seed. set_step() rewinds
// the counter, which replays a mask (tests use it to hold the mask fixed).

#include <cstdint>
#include <string>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct DropoutSpec {
    double p = 0.5;      // probability of dropping an element, in [0, 1)
    uint64_t seed = 1;   // with the forward counter, fixes every mask
};

// What backward needs: the mask, already scaled by 1 / (1 - p).
template <class T>
struct DropoutCache {
    Tensor<T> mask;
    bool valid = false;
};

template <class T>
class Dropout {
public:
    Dropout() = default;
    Dropout(std::string name, const DropoutSpec& spec) : name_(std::move(name)), spec_(spec) {
        if (!(spec.p >= 0 && spec.p < 1)) {
            throw Error(detail::concat("dropout \"", name_, "\": p must lie in [0, 1), got ",
                                       spec.p));
        }
    }

    Shape output_shape(const Shape& x) const { return x; }

    // ASSIGNS y. Mode::train draws a new mask (advancing the step counter) and keeps it;
    // Mode::infer copies x.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), x.shape());
        contiguous_check(where("x").c_str(), x);
        contiguous_check(where("y").c_str(), y);
        cache_.valid = mode == Mode::train;
        if (mode == Mode::infer) {
            tensor_copy(x, y);
            return;
        }

        // 1. draw the mask, one Rng stream per batch item
        cache_.mask.resize(x.shape());
        const int64_t item = x.numel() / x.dim(0);
        const T keep_scale = T(1.0 / (1.0 - spec_.p));
        const uint64_t step = step_++;
        parallel_for(0, x.dim(0), [&](int64_t n) {
            Rng rng(stream_seed(step, uint64_t(n)));
            T* m = cache_.mask.data() + n * item;
            for (int64_t i = 0; i < item; ++i) m[i] = rng.uniform() < spec_.p ? T(0) : keep_scale;
        });

        // 2. apply it
        const T* xp = x.data();
        const T* m = cache_.mask.data();
        T* yp = y.data();
        parallel_for(0, x.dim(0), [&](int64_t n) {
            for (int64_t i = n * item; i < (n + 1) * item; ++i) yp[i] = xp[i] * m[i];
        });
    }

    // Gradient contract: ADDS dy * mask into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("dy").c_str(), dy.shape(), cache_.mask.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.mask.shape());
        contiguous_check(where("dy").c_str(), dy);
        contiguous_check(where("dx").c_str(), dx);
        const int64_t item = dy.numel() / dy.dim(0);
        const T* g = dy.data();
        const T* m = cache_.mask.data();
        T* d = dx.data();
        parallel_for(0, dy.dim(0), [&](int64_t n) {
            for (int64_t i = n * item; i < (n + 1) * item; ++i) d[i] += g[i] * m[i];
        });
    }

    // The number of training forwards so far; set_step(s) makes the next mask that of forward s.
    uint64_t step() const { return step_; }
    void set_step(uint64_t step) { step_ = step; }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }
    const DropoutSpec& spec() const { return spec_; }
    const Tensor<T>& mask() const { return cache_.mask; }

private:
    std::string where(const char* what) const {
        return detail::concat("dropout \"", name_, "\": ", what);
    }
    uint64_t stream_seed(uint64_t step, uint64_t n) const {
        return spec_.seed * 0x9e3779b97f4a7c15ULL ^ (step + 1) * 0xbf58476d1ce4e5b9ULL ^
               (n + 1) * 0x94d049bb133111ebULL;
    }

    std::string name_;
    DropoutSpec spec_;
    uint64_t step_ = 0;
    DropoutCache<T> cache_;
};

}  // namespace unetpp
