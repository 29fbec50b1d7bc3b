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
// Sums run per channel in a fixed order in double, so results do not depend on the thread count.

#include <cmath>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct BatchNorm2dSpec {
    int64_t C = 0;
    double eps = 1e-5;
    double momentum = 0.1;           // weight of the new batch in the running statistics
    bool use_running_stats = false;  // also normalise with the running statistics in training
                                     // (frozen BN for fine-tuning); running stats then stay put
};

// What backward needs: the normalised input, the per-channel 1/sqrt(var + eps), and whether the
// statistics came from the batch.
template <class T>
struct BatchNorm2dCache {
    Tensor<T> x_hat;
    std::vector<double> rstd;
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

    // ASSIGNS y. Mode::train with batch statistics also updates the running statistics and needs
    // N H W >= 2; both train variants keep x_hat for backward. Mode::infer keeps nothing.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
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

        parallel_for(0, C, [&](int64_t c) {
            // 1. statistics: the batch's (two passes) or the running ones
            double mu, var;
            if (batch_stats) {
                double sum = 0, sq = 0;
                for (int64_t n = 0; n < N; ++n) {
                    const T* xp = x.data() + (n * C + c) * HW;
                    for (int64_t i = 0; i < HW; ++i) sum += xp[i];
                }
                mu = sum / double(M);
                for (int64_t n = 0; n < N; ++n) {
                    const T* xp = x.data() + (n * C + c) * HW;
                    for (int64_t i = 0; i < HW; ++i) sq += (xp[i] - mu) * (xp[i] - mu);
                }
                var = sq / double(M);
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
                    yp[i] = T(g * xh + b);
                }
            }
        });
    }

    // Gradient contract: ADDS the input gradient into dx (through the batch statistics when the
    // forward used them); ASSIGNS weight.grad (dgamma) and bias.grad (dbeta), skipped when frozen.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("dy").c_str(), dy.shape(), cache_.x_hat.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.x_hat.shape());
        contiguous_check(where("dy").c_str(), dy);
        contiguous_check(where("dx").c_str(), dx);
        const int64_t N = dy.n(), C = dy.c(), HW = dy.h() * dy.w(), M = N * HW;

        parallel_for(0, C, [&](int64_t c) {
            // 1. per-channel sums: dbeta = sum g, dgamma = sum g x_hat
            double dbeta = 0, dgamma = 0;
            for (int64_t n = 0; n < N; ++n) {
                const T* gp = dy.data() + (n * C + c) * HW;
                const T* hp = cache_.x_hat.data() + (n * C + c) * HW;
                for (int64_t i = 0; i < HW; ++i) {
                    dbeta += gp[i];
                    dgamma += double(gp[i]) * hp[i];
                }
            }

            // 2. input gradient
            const double scale = gamma_.value[c] * cache_.rstd[c];
            for (int64_t n = 0; n < N; ++n) {
                const T* gp = dy.data() + (n * C + c) * HW;
                const T* hp = cache_.x_hat.data() + (n * C + c) * HW;
                T* dxp = dx.data() + (n * C + c) * HW;
                if (cache_.batch_stats) {
                    const double k = scale / double(M);
                    for (int64_t i = 0; i < HW; ++i) {
                        dxp[i] += T(k * (double(M) * gp[i] - dbeta - hp[i] * dgamma));
                    }
                } else {
                    for (int64_t i = 0; i < HW; ++i) dxp[i] += T(scale * gp[i]);
                }
            }

            // 3. weight (gamma) and bias (beta) gradients
            if (!gamma_.frozen) {
                gamma_.grad[c] = T(dgamma);
                beta_.grad[c] = T(dbeta);
            }
        });
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
