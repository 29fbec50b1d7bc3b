#pragma once
// Elementwise activations: ReLU, ELU and the logistic sigmoid.
//
//   relu:     y = max(x, 0)                          dx += dy * (y > 0)
//   elu:      y = x if x > 0 else alpha (e^x - 1)    dx += dy * (y > 0 ? 1 : y + alpha)
//   sigmoid:  y = 1 / (1 + e^-x)                     dx += dy * y (1 - y)
//
// x, y, dy, dx: any shape, all the same, contiguous. Each backward reads the forward OUTPUT y (not
// x), so a layer can drop x after forward; elu's derivative for x <= 0 is alpha e^x = y + alpha
// (Clevert et al., arXiv:1511.07289). ReLU's derivative at 0 is taken as 0, as PyTorch.
// Forward may run in place (y and x the same memory); backward ADDS into dx.
//
// Float uses detail::exp_poly, a polynomial exp written so the compiler vectorises it (std::exp
// does not vectorise without -ffast-math); double uses std::exp and serves the gradient checks.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "unetpp/error.hpp"
#include "unetpp/kernels/grad_write.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/simd/simd.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

// e^x for float within about 2 ulp on [-87, 88]; inputs outside are clamped there (e^-87 is near
// the smallest normal float, e^88 near the largest). Cody-Waite reduction x = m ln2 + r, |r| <=
// ln2/2, then a degree-7 Taylor polynomial (remainder below 1e-8 relative) and a 2^m scale built
// in the exponent bits. m is rounded by adding and subtracting 1.5 * 2^23 rather than by
// std::floor, which GCC does not vectorise here.
inline float exp_poly(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: float addition rounds to an integer
    const float m = (x * 1.44269504088896341f + kRound) - kRound;
    float r = x - m * 0.693145751953125f;  // ln2 split in a high part exact in float ...
    r = r - m * 1.42860682030941723e-6f;   // ... and the low remainder
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(m) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
inline double exp_poly(double x) { return std::exp(x); }

// Checks that the given views share x's shape and are contiguous.
template <class T>
void activation_check(const char* fn, const ConstTensorView<T>& x, const ConstTensorView<T>& y,
                      const char* xn, const char* yn) {
    shape_check(concat(fn, ": ", yn, " (same shape as ", xn, ")").c_str(), y.shape(), x.shape());
    contiguous_check(concat(fn, ": ", xn).c_str(), x);
    contiguous_check(concat(fn, ": ", yn).c_str(), y);
}

template <class T>
void activation_check(const char* fn, const ConstTensorView<T>& y, const ConstTensorView<T>& dy,
                      const ConstTensorView<T>& dx) {
    activation_check(fn, y, dy, "y", "dy");
    activation_check(fn, y, dx, "y", "dx");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Scalar references: one element at a time with std::exp.

template <class T>
void relu_forward_reference(ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("relu_forward_reference", x, ConstTensorView<T>(y), "x", "y");
    for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = x.data()[i] > T(0) ? x.data()[i] : T(0);
}
template <class T>
void relu_backward_reference(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
    detail::activation_check<T>("relu_backward_reference", y, dy, ConstTensorView<T>(dx));
    for (int64_t i = 0; i < y.numel(); ++i) {
        if (y.data()[i] > T(0)) dx.data()[i] += dy.data()[i];
    }
}
template <class T>
void elu_forward_reference(double alpha, ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("elu_forward_reference", x, ConstTensorView<T>(y), "x", "y");
    for (int64_t i = 0; i < x.numel(); ++i) {
        T v = x.data()[i];
        y.data()[i] = v > T(0) ? v : T(alpha) * (std::exp(v) - T(1));
    }
}
template <class T>
void elu_backward_reference(double alpha, ConstTensorView<T> y, ConstTensorView<T> dy,
                            TensorView<T> dx) {
    detail::activation_check<T>("elu_backward_reference", y, dy, ConstTensorView<T>(dx));
    for (int64_t i = 0; i < y.numel(); ++i) {
        T v = y.data()[i];
        dx.data()[i] += dy.data()[i] * (v > T(0) ? T(1) : v + T(alpha));
    }
}
template <class T>
void sigmoid_forward_reference(ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("sigmoid_forward_reference", x, ConstTensorView<T>(y), "x", "y");
    for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = T(1) / (T(1) + std::exp(-x.data()[i]));
}
template <class T>
void sigmoid_backward_reference(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
    detail::activation_check<T>("sigmoid_backward_reference", y, dy, ConstTensorView<T>(dx));
    for (int64_t i = 0; i < y.numel(); ++i) {
        T v = y.data()[i];
        dx.data()[i] += dy.data()[i] * v * (T(1) - v);
    }
}

// ---------------------------------------------------------------------------------------------
// Public kernels: vectorised, parallel over fixed blocks of elements. Each block's loop lives in
// a function of plain pointers: inside a lambda the pointers are read through the closure, which
// a store to dx might alias, and GCC then refuses to vectorise.

namespace detail {

template <class T>
void relu_backward_span(int64_t n, const T* y, const T* dy, T* dx) {
    for (int64_t i = 0; i < n; ++i) {
        const T g = dy[i];
        dx[i] += y[i] > T(0) ? g : T(0);
    }
}
template <class T>
void relu_backward_assign_span(int64_t n, const T* y, const T* dy, T* dx) {
    for (int64_t i = 0; i < n; ++i) {
        const T g = dy[i];
        dx[i] = y[i] > T(0) ? g : T(0);
    }
}
template <class T>
void elu_forward_span(int64_t n, T alpha, const T* x, T* y) {
    for (int64_t i = 0; i < n; ++i) {
        const T v = x[i];
        const T neg = alpha * (exp_poly(std::min(v, T(0))) - T(1));
        y[i] = v > T(0) ? v : neg;
    }
}
template <class T>
void elu_backward_span(int64_t n, T alpha, const T* y, const T* dy, T* dx) {
    for (int64_t i = 0; i < n; ++i) {
        const T v = y[i], g = dy[i];
        dx[i] += g * (v > T(0) ? T(1) : v + alpha);
    }
}
template <class T>
void sigmoid_forward_span(int64_t n, const T* x, T* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + exp_poly(-x[i]));
}
template <class T>
void sigmoid_backward_span(int64_t n, const T* y, const T* dy, T* dx) {
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * y[i] * (T(1) - y[i]);
}

}  // namespace detail

// ASSIGNS y = max(x, 0). y may be x (in place).
template <class T>
void relu_forward(ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("relu_forward", x, ConstTensorView<T>(y), "x", "y");
    const T* xp = x.data();
    T* yp = y.data();
    detail::elementwise_blocks(x.numel(), [=](int64_t lo, int64_t hi) {
        simd::max_scalar(hi - lo, xp + lo, T(0), yp + lo);
    });
}

// Input gradient from the output y. ADDS dy where y > 0 into dx (GradWrite::assign: ASSIGNS
// dx = dy where y > 0, else 0).
template <class T>
void relu_backward(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx,
                   GradWrite write = GradWrite::add) {
    detail::activation_check<T>("relu_backward", y, dy, ConstTensorView<T>(dx));
    const T *yp = y.data(), *gp = dy.data();
    T* dxp = dx.data();
    detail::elementwise_blocks(y.numel(), [=](int64_t lo, int64_t hi) {
        if (write == GradWrite::assign) {
            detail::relu_backward_assign_span(hi - lo, yp + lo, gp + lo, dxp + lo);
        } else {
            detail::relu_backward_span(hi - lo, yp + lo, gp + lo, dxp + lo);
        }
    });
}

// ASSIGNS y = ELU_alpha(x). y may be x (in place). alpha > 0 (PyTorch's default is 1).
template <class T>
void elu_forward(double alpha, ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("elu_forward", x, ConstTensorView<T>(y), "x", "y");
    const T a = T(alpha);
    const T* xp = x.data();
    T* yp = y.data();
    detail::elementwise_blocks(x.numel(), [=](int64_t lo, int64_t hi) {
        detail::elu_forward_span(hi - lo, a, xp + lo, yp + lo);
    });
}

// Input gradient from the output y. ADDS dy * (y > 0 ? 1 : y + alpha) into dx.
template <class T>
void elu_backward(double alpha, ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
    detail::activation_check<T>("elu_backward", y, dy, ConstTensorView<T>(dx));
    const T a = T(alpha);
    const T *yp = y.data(), *gp = dy.data();
    T* dxp = dx.data();
    detail::elementwise_blocks(y.numel(), [=](int64_t lo, int64_t hi) {
        detail::elu_backward_span(hi - lo, a, yp + lo, gp + lo, dxp + lo);
    });
}

// ASSIGNS y = 1 / (1 + e^-x). y may be x (in place).
template <class T>
void sigmoid_forward(ConstTensorView<T> x, TensorView<T> y) {
    detail::activation_check<T>("sigmoid_forward", x, ConstTensorView<T>(y), "x", "y");
    const T* xp = x.data();
    T* yp = y.data();
    detail::elementwise_blocks(x.numel(), [=](int64_t lo, int64_t hi) {
        detail::sigmoid_forward_span(hi - lo, xp + lo, yp + lo);
    });
}

// Input gradient from the output y. ADDS dy * y * (1 - y) into dx.
template <class T>
void sigmoid_backward(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
    detail::activation_check<T>("sigmoid_backward", y, dy, ConstTensorView<T>(dx));
    const T *yp = y.data(), *gp = dy.data();
    T* dxp = dx.data();
    detail::elementwise_blocks(y.numel(), [=](int64_t lo, int64_t hi) {
        detail::sigmoid_backward_span(hi - lo, yp + lo, gp + lo, dxp + lo);
    });
}

}  // namespace unetpp
