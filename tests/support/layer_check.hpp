#pragma once
// The shared layer gradient checker: every layer test runs its layer through check_layer.
//
// For a layer with output_shape(x), forward(x, y, Mode) and backward(dy, dx) it checks, in double:
//   1. the input gradient against central differences of L = sum_i g[i] y[i] (g random);
//   2. every trainable parameter's gradient against central differences of the same L;
//   3. the gradient contract: backward ADDS into dx (dx is prefilled with noise, which must still
//      be there underneath), and ASSIGNS every parameter gradient (prefilled with NaN, none may
//      be left).
// Layers whose forward is random (dropout) or stateful pass a `before_forward` hook that puts
// them back in the same state before every evaluation.

#include <functional>
#include <string>

#include <unetpp/parameter.hpp>
#include <unetpp/random.hpp>
#include <unetpp/tensor.hpp>

#include "support/gradcheck.hpp"

namespace unetpp_test {

struct LayerCheckOptions {
    uint64_t seed = 7;
    double rtol = kGradRelTol;
    double atol = kGradAbsTol;
    double input_lo = -1.0, input_hi = 1.0;  // range of the random input
    std::function<void()> before_forward;    // called before every forward (may be empty)
    const unetpp::Tensor<double>* input = nullptr;  // a fixed input instead of a random one
};

// Runs the checks above on `layer` for input shape x_shape; `what` names it in failures.
template <class Layer>
void check_layer(const std::string& what, Layer& layer, const unetpp::Shape& x_shape,
                 const LayerCheckOptions& opt = {}) {
    using unetpp::Mode;
    unetpp::Rng rng(opt.seed);
    Tensor<double> x(x_shape);
    if (opt.input) {
        x = *opt.input;
    } else {
        unetpp::init_uniform(x, rng, opt.input_lo, opt.input_hi);
    }
    const unetpp::Shape y_shape = layer.output_shape(x.shape());
    const Tensor<double> g = random_tensor<double>(y_shape, rng);
    Tensor<double> y(y_shape);
    auto run_forward = [&]() {
        if (opt.before_forward) opt.before_forward();
        layer.forward(std::as_const(x).view(), y.view(), Mode::train);
    };
    auto loss = [&]() {
        run_forward();
        return weighted_sum(g, y);
    };

    // 1. analytic gradients, with dx prefilled with noise and parameter grads with NaN
    const Tensor<double> noise = random_tensor<double>(x_shape, rng);
    Tensor<double> dx = noise;
    unetpp::ParameterList<double> params = layer.parameters();
    for (auto* p : params) {
        if (p->trainable) fill_nan(p->grad);
    }
    run_forward();
    layer.backward(g.view(), dx.view());

    // 2. contract: dx was added to, every trainable parameter gradient assigned
    Tensor<double> dx_added = dx;
    unetpp::tensor_axpy(-1.0, noise, dx_added);
    for (auto* p : params) {
        if (p->trainable) require_no_nan(what + " " + p->name + " grad", p->grad);
    }

    // 3. central differences on the input and every trainable parameter
    gradient_check(what + " dx", dx_added, numeric_gradient(loss, x), opt.rtol, opt.atol);
    for (auto* p : params) {
        if (!p->trainable) continue;
        Tensor<double> analytic = p->grad;
        gradient_check(what + " " + p->name, analytic, numeric_gradient(loss, p->value), opt.rtol,
                       opt.atol);
    }
}

}  // namespace unetpp_test
