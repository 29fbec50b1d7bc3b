#pragma once
// BatchNorm2d: per-channel normalisation (Ioffe and Szegedy, arXiv:1502.03167).
//
//   training:   mu[c] = mean_{n,h,w} x[n,c,h,w]      var[c] = mean_{n,h,w} (x - mu[c])^2
//   inference:  mu[c] = running_mean[c]              var[c] = running_var[c]
//   x_hat = (x - mu[c]) / sqrt(var[c] + eps)         y = gamma[c] x_hat + beta[c]
//
//   x, y  N C H W        gamma "<name>.weight", beta "<name>.bias", running_mean, running_var: C
//
// Backward through the batch statistics, with M = N H W and g = dy:
//   dbeta[c]  = sum g                 dgamma[c] = sum g x_hat
//   dx       += gamma[c] rstd[c] / M * (M g - dbeta[c] - x_hat dgamma[c])
// With fixed statistics (inference, or spec.use_running_stats) mu and var are constants and
// dx += gamma[c] rstd[c] g.
//
// Running statistics follow PyTorch: running = (1 - momentum) running + momentum batch, with the
// unbiased variance (M / (M - 1)) stored. momentum is in PyTorch's sense (Keras's momentum 0.99
// is 0.01 here). They are non-trainable Parameters, saved with the model.
// Sums run per channel in double, over 16 interleaved partial sums (vector adds; on AVX-512 and
// AVX2 the backward's loops are written out in simd/batchnorm_avx512.hpp and batchnorm_avx2.hpp)
// combined in a fixed order, so results do not depend on the thread count.
// The batch variance comes from one pass: sums of (x - x0) and (x - x0)^2 with x0 the channel's
// first element, a shift that keeps the subtraction var = E[d^2] - E[d]^2 accurate in double.

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/kernels/grad_write.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/simd/simd.hpp"
#include "unetpp/tensor.hpp"

#if defined(UNETPP_SIMD_AVX512)
#include "unetpp/simd/batchnorm_avx512.hpp"
namespace unetpp::detail {
namespace bn_isa = avx512;
}
#elif defined(UNETPP_SIMD_AVX2)
#include "unetpp/simd/batchnorm_avx2.hpp"
namespace unetpp::detail {
namespace bn_isa = avx2;
}
#endif

namespace unetpp {

namespace detail {

// Partial sums of a channel plane, 16 interleaved lanes each; combine() adds them in lane order.
struct LaneSums {
    static constexpr int kLanes = 16;
    double a[kLanes] = {}, b[kLanes] = {};
    static double combine(const double* v) {
        double s = 0;
        for (int l = 0; l < kLanes; ++l) s += v[l];
        return s;
    }
};

// s.a += x - shift, s.b += (x - shift)^2 over x[0, n).
template <class T>
void lane_sums_shifted(const T* x, int64_t n, double shift, LaneSums& s) {
    constexpr int L = LaneSums::kLanes;
    int64_t i = 0;
    for (; i + L <= n; i += L) {
        for (int l = 0; l < L; ++l) {
            const double d = double(x[i + l]) - shift;
            s.a[l] += d;
            s.b[l] += d * d;
        }
    }
    for (int l = 0; i < n; ++i, ++l) {
        const double d = double(x[i]) - shift;
        s.a[l] += d;
        s.b[l] += d * d;
    }
}

// The gradient reaching the batch norm's output: g, or with a fused ReLU (y its output) what
// the ReLU's backward would have added onto zero. A product with the 0/1 mask rather than a
// select, which GCC keeps as a branch (the sign of y is unpredictable); float on AVX-512 and
// AVX2 masks in simd/batchnorm_avx512.hpp and batchnorm_avx2.hpp instead. It differs from the
// select only for a non-finite g (training stops on those) and in the sign of a zero, which the
// sums and the addition into dx absorb.
template <class T>
inline T bn_output_grad(T g, T y) {
    return g * T(y > T(0));
}

// s.a += g, s.b += g * h over [0, n); with relu_y, g as bn_output_grad gives it. The lanes are
// locals, so the compiler can keep them in registers.
template <bool kRelu, class T>
void lane_sums_product_impl(const T* g, const T* relu_y, const T* h, int64_t n, LaneSums& s) {
    constexpr int L = LaneSums::kLanes;
    double a[L], b[L];
    for (int l = 0; l < L; ++l) {
        a[l] = s.a[l];
        b[l] = s.b[l];
    }
    int64_t i = 0;
#if defined(UNETPP_SIMD_AVX512) || defined(UNETPP_SIMD_AVX2)
    if constexpr (std::is_same<T, float>::value) {
        i = bn_isa::bn_lane_sums(g, kRelu ? relu_y : nullptr, h, n, a, b);
    }
#endif
    for (; i + L <= n; i += L) {
        for (int l = 0; l < L; ++l) {
            const double gv = double(kRelu ? bn_output_grad(g[i + l], relu_y[i + l]) : g[i + l]);
            a[l] += gv;
            b[l] += gv * double(h[i + l]);
        }
    }
    for (int l = 0; i < n; ++i, ++l) {
        const double gv = double(kRelu ? bn_output_grad(g[i], relu_y[i]) : g[i]);
        a[l] += gv;
        b[l] += gv * double(h[i]);
    }
    for (int l = 0; l < L; ++l) {
        s.a[l] = a[l];
        s.b[l] = b[l];
    }
}

template <class T>
void lane_sums_product(const T* g, const T* relu_y, const T* h, int64_t n, LaneSums& s) {
    if (relu_y != nullptr) lane_sums_product_impl<true>(g, relu_y, h, n, s);
    else lane_sums_product_impl<false>(g, relu_y, h, n, s);
}

// dx[i] += T(k * (M g[i] - dbeta - h[i] dgamma)) (batch statistics) or T(k * g[i]) (fixed
// ones), g as in lane_sums_product; = in place of += when assign.
template <bool kRelu, bool kBatch, class T>
void bn_backward_dx(bool assign, const T* g, const T* relu_y, const T* h, int64_t n, double k,
                    double M, double dbeta, double dgamma, T* dx) {
    int64_t i = 0;
#if defined(UNETPP_SIMD_AVX512) || defined(UNETPP_SIMD_AVX2)
    if constexpr (std::is_same<T, float>::value) {
        i = bn_isa::bn_dx(kBatch, assign, g, kRelu ? relu_y : nullptr, h, n, k, M, dbeta,
                          dgamma, dx);
    }
#endif
    for (; i < n; ++i) {
        const double gv = double(kRelu ? bn_output_grad(g[i], relu_y[i]) : g[i]);
        const T v = kBatch ? T(k * (M * gv - dbeta - h[i] * dgamma)) : T(k * gv);
        dx[i] = assign ? v : dx[i] + v;
    }
}

template <class T>
void bn_backward_dx(bool batch, bool assign, const T* g, const T* relu_y, const T* h, int64_t n,
                    double k, double M, double dbeta, double dgamma, T* dx) {
    if (relu_y && batch) {
        bn_backward_dx<true, true>(assign, g, relu_y, h, n, k, M, dbeta, dgamma, dx);
    } else if (relu_y) {
        bn_backward_dx<true, false>(assign, g, relu_y, h, n, k, M, dbeta, dgamma, dx);
    } else if (batch) {
        bn_backward_dx<false, true>(assign, g, relu_y, h, n, k, M, dbeta, dgamma, dx);
    } else {
        bn_backward_dx<false, false>(assign, g, relu_y, h, n, k, M, dbeta, dgamma, dx);
    }
}

}  // namespace detail

struct BatchNorm2dSpec {
    int64_t C = 0;
    double eps = 1e-5;
    double momentum = 0.1;           // weight of the new batch in the running statistics
    bool use_running_stats = false;  // also normalise with the running statistics in training
                                     // (frozen BN for fine-tuning); running stats then stay put
};

// What backward needs: the normalised input, the per-channel 1/sqrt(var + eps), whether the
// statistics came from the batch, and with a fused ReLU a view of its output (kept alive by the
// caller).
template <class T>
struct BatchNorm2dCache {
    Tensor<T> x_hat;
    std::vector<double> rstd;
    ConstTensorView<T> relu_y;
    bool batch_stats = false;
    bool valid = false;
};

template <class T>
class BatchNorm2d {
public:
    BatchNorm2d() = default;
    BatchNorm2d(std::string name, const BatchNorm2dSpec& spec)
        : name_(std::move(name)), spec_(spec) {
        if (spec.C <= 0 || !(spec.eps > 0) || !(spec.momentum >= 0 && spec.momentum <= 1)) {
            throw Error(detail::concat("batchnorm2d \"", name_, "\": invalid spec C=", spec.C,
                                       " eps=", spec.eps, " momentum=", spec.momentum,
                                       " (need C > 0, eps > 0, momentum in [0, 1])"));
        }
        gamma_ = Parameter<T>(name_ + ".weight", Shape{spec.C});
        beta_ = Parameter<T>(name_ + ".bias", Shape{spec.C});
        running_mean_ = Parameter<T>(name_ + ".running_mean", Shape{spec.C}, false);
        running_var_ = Parameter<T>(name_ + ".running_var", Shape{spec.C}, false);
        init();
    }

    // gamma 1, beta 0, running mean 0, running variance 1.
    void init() {
        gamma_.value.fill(T(1));
        beta_.value.zero();
        running_mean_.value.zero();
        running_var_.value.fill(T(1));
    }

    Shape output_shape(const Shape& x) const {
        if (x.rank() != 4 || x[1] != spec_.C) {
            throw ShapeError(detail::concat("batchnorm2d \"", name_, "\": input ", x.str(),
                                            " must be N C H W with ", spec_.C, " channels"));
        }
        return x;
    }

    // ASSIGNS y, or with fuse_relu y = max(y, 0): the bits of this layer followed by a ReLU
    // layer, in one pass; backward then takes the gradient of the ReLU's output. Mode::train
    // with batch statistics also updates the running statistics and needs N H W >= 2; both
    // train variants keep x_hat for backward. Mode::infer keeps nothing.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode, bool fuse_relu = false) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        contiguous_check(where("x").c_str(), x);
        contiguous_check(where("y").c_str(), y);
        const bool batch_stats = mode == Mode::train && !spec_.use_running_stats;
        const int64_t N = x.n(), C = x.c(), HW = x.h() * x.w(), M = N * HW;
        if (batch_stats && M < 2) {
            throw ShapeError(where("batch statistics need N*H*W >= 2; got input ") +
                             x.shape().str());
        }
        if (mode == Mode::train) cache_.x_hat.resize(x.shape());
        cache_.rstd.resize(static_cast<std::size_t>(C));
        cache_.batch_stats = batch_stats;
        cache_.valid = mode == Mode::train;
        cache_.relu_y = mode == Mode::train && fuse_relu ? ConstTensorView<T>(y)
                                                         : ConstTensorView<T>();

        parallel_for(0, C, [&](int64_t c) {
            // 1. statistics: the batch's (one shifted pass) or the running ones
            double mu, var;
            if (batch_stats) {
                const double shift = double(x.data()[c * HW]);
                detail::LaneSums sums;
                for (int64_t n = 0; n < N; ++n) {
                    detail::lane_sums_shifted(x.data() + (n * C + c) * HW, HW, shift, sums);
                }
                const double d_mean = detail::LaneSums::combine(sums.a) / double(M);
                mu = shift + d_mean;
                var = std::max(0.0, detail::LaneSums::combine(sums.b) / double(M) -
                                        d_mean * d_mean);
                double m = spec_.momentum;
                running_mean_.value[c] = T((1 - m) * running_mean_.value[c] + m * mu);
                running_var_.value[c] =
                    T((1 - m) * running_var_.value[c] + m * var * double(M) / double(M - 1));
            } else {
                mu = running_mean_.value[c];
                var = running_var_.value[c];
            }
            double rstd = 1.0 / std::sqrt(var + spec_.eps);
            cache_.rstd[c] = rstd;

            // 2. normalise, scale and shift
            const double g = gamma_.value[c], b = beta_.value[c];
            for (int64_t n = 0; n < N; ++n) {
                const T* xp = x.data() + (n * C + c) * HW;
                T* yp = y.data() + (n * C + c) * HW;
                T* hp = mode == Mode::train ? cache_.x_hat.data() + (n * C + c) * HW : nullptr;
                for (int64_t i = 0; i < HW; ++i) {
                    double xh = (xp[i] - mu) * rstd;
                    if (hp) hp[i] = T(xh);
                    const T v = T(g * xh + b);
                    yp[i] = fuse_relu ? (v > T(0) ? v : T(0)) : v;
                }
            }
        });
    }

    // Gradient contract: ADDS the input gradient into dx (through the batch statistics when the
    // forward used them; GradWrite::assign ASSIGNS it); ASSIGNS weight.grad (dgamma) and
    // bias.grad (dbeta), skipped when frozen. After a fuse_relu forward, dy is the gradient of
    // the ReLU's output.
    void backward(ConstTensorView<T> dy, TensorView<T> dx, GradWrite write = GradWrite::add) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("dy").c_str(), dy.shape(), cache_.x_hat.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.x_hat.shape());
        contiguous_check(where("dy").c_str(), dy);
        contiguous_check(where("dx").c_str(), dx);
        const int64_t N = dy.n(), C = dy.c(), HW = dy.h() * dy.w(), M = N * HW;

        parallel_for(0, C, [&](int64_t c) {
            // 1. per-channel sums: dbeta = sum g, dgamma = sum g x_hat
            const T* relu_y = cache_.relu_y.data();
            auto relu_at = [&](int64_t n) {
                return relu_y != nullptr ? relu_y + (n * C + c) * HW : nullptr;
            };
            detail::LaneSums sums;
            for (int64_t n = 0; n < N; ++n) {
                detail::lane_sums_product(dy.data() + (n * C + c) * HW, relu_at(n),
                                          cache_.x_hat.data() + (n * C + c) * HW, HW, sums);
            }
            const double dbeta = detail::LaneSums::combine(sums.a);
            const double dgamma = detail::LaneSums::combine(sums.b);

            // 2. input gradient
            const double scale = gamma_.value[c] * cache_.rstd[c];
            for (int64_t n = 0; n < N; ++n) {
                const T* gp = dy.data() + (n * C + c) * HW;
                const T* hp = cache_.x_hat.data() + (n * C + c) * HW;
                const T* ry = relu_at(n);
                T* dxp = dx.data() + (n * C + c) * HW;
                const bool batch = cache_.batch_stats;
                detail::bn_backward_dx(batch, write == GradWrite::assign, gp, ry, hp, HW,
                                       batch ? scale / double(M) : scale, double(M), dbeta,
                                       dgamma, dxp);
            }

            // 3. weight (gamma) and bias (beta) gradients
            if (!gamma_.frozen) {
                gamma_.grad[c] = T(dgamma);
                beta_.grad[c] = T(dbeta);
            }
        });
    }

    // The inference transform as y = scale[c] x + shift[c] (C values each): scale = gamma /
    // sqrt(running_var + eps), shift = beta - running_mean scale, for folding into the
    // convolution before this layer (Conv2d::forward_folded).
    void inference_affine(T* scale, T* shift) const {
        for (int64_t c = 0; c < spec_.C; ++c) {
            const double a = double(gamma_.value[c]) /
                             std::sqrt(double(running_var_.value[c]) + spec_.eps);
            scale[c] = T(a);
            shift[c] = T(double(beta_.value[c]) - double(running_mean_.value[c]) * a);
        }
    }

    void set_frozen(bool frozen) {
        gamma_.frozen = frozen;
        beta_.frozen = frozen;
    }
    // weight, bias, running_mean, running_var (the last two non-trainable).
    ParameterList<T> parameters() { return {&gamma_, &beta_, &running_mean_, &running_var_}; }
    const std::string& name() const { return name_; }
    const BatchNorm2dSpec& spec() const { return spec_; }
    BatchNorm2dSpec& spec() { return spec_; }
    Parameter<T>& weight() { return gamma_; }
    Parameter<T>& bias() { return beta_; }
    Parameter<T>& running_mean() { return running_mean_; }
    Parameter<T>& running_var() { return running_var_; }

private:
    std::string where(const char* what) const {
        return detail::concat("batchnorm2d \"", name_, "\": ", what);
    }

    std::string name_;
    BatchNorm2dSpec spec_;
    Parameter<T> gamma_, beta_, running_mean_, running_var_;
    BatchNorm2dCache<T> cache_;
};

}  // namespace unetpp
