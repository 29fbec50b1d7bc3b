#pragma once
// The shared finite-difference gradient checker used by every kernel, layer and loss test.
//
// numeric_gradient perturbs each element of `x` by +-eps and differentiates a scalar function by
// central differences, in double precision. gradient_check compares an analytic gradient with it
// under both a relative and an absolute tolerance and reports the first bad index with both values.

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <unetpp/random.hpp>
#include <unetpp/tensor.hpp>

namespace unetpp_test {

using unetpp::Tensor;

// Central differences: d loss / d x[i] ~ (loss(x + eps e_i) - loss(x - eps e_i)) / (2 eps).
// `loss` reads x (which it may not modify) and returns a scalar. x is restored afterwards.
inline Tensor<double> numeric_gradient(const std::function<double()>& loss, Tensor<double>& x,
                                       double eps = 1e-6) {
    Tensor<double> grad(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        double saved = x[i];
        x[i] = saved + eps;
        double up = loss();
        x[i] = saved - eps;
        double down = loss();
        x[i] = saved;
        grad[i] = (up - down) / (2 * eps);
    }
    return grad;
}

// Tolerances for double-precision central differences with eps = 1e-6: truncation error is
// O(eps^2) and rounding error O(1e-16 / eps), so 1e-6 relative plus 1e-7 absolute is ample
// slack for smooth functions while still catching any wrong index or missing term.
constexpr double kGradRelTol = 1e-6;
constexpr double kGradAbsTol = 1e-7;

// Requires |analytic - numeric| <= atol + rtol * |numeric| everywhere; names `what` and the
// first failing index otherwise.
inline void gradient_check(const std::string& what, const Tensor<double>& analytic,
                           const Tensor<double>& numeric, double rtol = kGradRelTol,
                           double atol = kGradAbsTol) {
    REQUIRE(analytic.shape() == numeric.shape());
    for (int64_t i = 0; i < analytic.numel(); ++i) {
        double a = analytic[i], n = numeric[i];
        if (!(std::abs(a - n) <= atol + rtol * std::abs(n))) {
            FAIL(what << ": gradient mismatch at flat index " << i << " of shape "
                      << analytic.shape().str() << ": analytic " << a << ", numeric " << n);
        }
    }
    SUCCEED(what << ": " << analytic.numel() << " gradient entries agree");
}

// sum_i g[i] * y[i]: the scalar whose gradient with respect to y is g. Tests pick g at random so
// that every output element contributes to the checked loss with its own weight.
inline double weighted_sum(const Tensor<double>& g, const Tensor<double>& y) {
    REQUIRE(g.shape() == y.shape());
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += g[i] * y[i];
    return s;
}

// A tensor of the given shape filled uniformly in [-1, 1) from `rng`.
template <class T>
Tensor<T> random_tensor(const unetpp::Shape& shape, unetpp::Rng& rng) {
    Tensor<T> t(shape);
    unetpp::init_uniform(t, rng, -1.0, 1.0);
    return t;
}

// Fills with NaN, to check that a backward that must assign an output wrote every element.
template <class T>
void fill_nan(Tensor<T>& t) {
    t.fill(std::numeric_limits<T>::quiet_NaN());
}

// Requires that no element is NaN.
template <class T>
void require_no_nan(const std::string& what, const Tensor<T>& t) {
    for (int64_t i = 0; i < t.numel(); ++i) {
        if (std::isnan(t[i])) FAIL(what << ": NaN left at flat index " << i << " (not assigned)");
    }
}

}  // namespace unetpp_test
