#pragma once
// Conv2d: the layer around the 2-D convolution kernel (include/unetpp/kernels/conv2d.hpp).
//
//   y[n,k,i,j] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n,c,i*stride+r-pad, j*stride+s-pad]
//
//   x  N C H W     weight K C R S ("<name>.weight")     bias K ("<name>.bias")     y  N K Ho Wo
//
// Weights start He-normal (fan_in = C R S, He et al., arXiv:1502.01852) and biases at zero: the
// convolutions of a U-Net are followed by ReLU or ELU.

#include <string>
#include <utility>

#include "unetpp/error.hpp"
#include "unetpp/kernels/conv2d.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: a view of the forward input. The caller keeps that tensor alive and
// unchanged between forward and backward (the U-Net owns all its activations).
template <class T>
struct Conv2dCache {
    ConstTensorView<T> x;
};

template <class T>
class Conv2d {
public:
    Conv2d() = default;
    // Creates "<name>.weight" (K C R S) and, when has_bias, "<name>.bias" (K), zero-filled;
    // call init() to draw the weights.
    Conv2d(std::string name, const Conv2dSpec& spec, bool has_bias = true)
        : name_(std::move(name)), spec_(spec), has_bias_(has_bias) {
        if (spec.C <= 0 || spec.K <= 0 || spec.R <= 0 || spec.S <= 0 || spec.stride <= 0 ||
            spec.pad < 0) {
            throw Error(detail::concat("conv2d \"", name_, "\": invalid spec C=", spec.C, " K=",
                                       spec.K, " R=", spec.R, " S=", spec.S, " stride=",
                                       spec.stride, " pad=", spec.pad));
        }
        weight_ = Parameter<T>(name_ + ".weight", Shape{spec.K, spec.C, spec.R, spec.S});
        if (has_bias_) bias_ = Parameter<T>(name_ + ".bias", Shape{spec.K});
    }

    // He-normal weights, zero bias.
    void init(Rng& rng) {
        init_he_normal(weight_.value, rng, spec_.C * spec_.R * spec_.S);
        if (has_bias_) bias_.value.zero();
    }

    // The output shape for input shape x; throws ShapeError naming this layer when x does not fit.
    Shape output_shape(const Shape& x) const {
        if (x.rank() != 4) {
            throw ShapeError(detail::concat("conv2d \"", name_, "\": input must be N C H W, got ",
                                            x.str()));
        }
        if (x[1] != spec_.C) {
            throw ShapeError(detail::concat("conv2d \"", name_, "\": input has ", x[1],
                                            " channels, weights expect ", spec_.C,
                                            " (check the previous layer's width)"));
        }
        int64_t ho = spec_.out_h(x[2]), wo = spec_.out_w(x[3]);
        if (ho <= 0 || wo <= 0) {
            throw ShapeError(detail::concat("conv2d \"", name_, "\": input ", x.str(),
                                            " is smaller than the ", spec_.R, "x", spec_.S,
                                            " kernel"));
        }
        return Shape{x[0], spec_.K, ho, wo};
    }

    // ASSIGNS y = conv(x) + bias, or its ReLU with ConvActivation::relu (the same bits as a ReLU
    // layer after it; backward then takes the gradient after the ReLU's backward). y must have
    // output_shape(x.shape()). Mode::train keeps a view of x for backward; Mode::infer keeps
    // nothing.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode,
                 ConvActivation activation = ConvActivation::none) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        conv2d_forward(spec_, x, std::as_const(weight_.value).view(), bias_ptr(), y, activation);
        cache_.x = mode == Mode::train ? x : ConstTensorView<T>();
    }

    // Inference with a per-channel affine map folded in:
    //   y[n,k] = activation(scale[k] * (conv(x)[n,k] + bias[k]) + shift[k])
    // computed as one convolution with weights scale[k] w[k] and bias scale[k] bias[k] +
    // shift[k] (a batch norm in inference mode is such a map). Equal to the unfolded sequence up
    // to float rounding. Keeps nothing for backward; the folded weights live in this layer, so
    // no allocation after the first call.
    void forward_folded(ConstTensorView<T> x, TensorView<T> y, const T* scale, const T* shift,
                        ConvActivation activation = ConvActivation::none) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        folded_weight_.resize(weight_.value.shape());
        folded_bias_.resize(Shape{spec_.K});
        const int64_t per_k = spec_.C * spec_.R * spec_.S;
        for (int64_t k = 0; k < spec_.K; ++k) {
            const T a = scale[k];
            for (int64_t i = 0; i < per_k; ++i) {
                folded_weight_[k * per_k + i] = a * weight_.value[k * per_k + i];
            }
            const T b = has_bias_ ? bias_.value[k] : T(0);
            folded_bias_[k] = a * b + shift[k];
        }
        conv2d_forward(spec_, x, std::as_const(folded_weight_).view(), folded_bias_.data(), y,
                       activation);
        cache_.x = ConstTensorView<T>();
    }

    // Gradient contract: ADDS the input gradient into dx (skipped when dx is an empty view, e.g.
    // for the first layer; GradWrite::assign ASSIGNS it); ASSIGNS weight.grad and bias.grad,
    // skipped when the weight is frozen. Requires a Mode::train forward since the last
    // backward-relevant change of the input. With relu_output (the input x of the forward, when
    // a ReLU made it), the input gradient goes through that ReLU too (conv2d_backward_data).
    void backward(ConstTensorView<T> dy, TensorView<T> dx, GradWrite write = GradWrite::add,
                  ConstTensorView<T> relu_output = ConstTensorView<T>()) {
        if (cache_.x.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), output_shape(cache_.x.shape()));

        // 1. input gradient
        if (dx.data() != nullptr) {
            shape_check(where("dx").c_str(), dx.shape(), cache_.x.shape());
            conv2d_backward_data(spec_, dy, std::as_const(weight_.value).view(), dx, write,
                                 relu_output);
        }
        // 2. weight and bias gradients
        if (!weight_.frozen) {
            T* dbias = has_bias_ ? bias_.grad.data() : nullptr;
            conv2d_backward_weight(spec_, cache_.x, dy, weight_.grad.view(), dbias);
        }
    }

    // Freezes or unfreezes weight and bias together.
    void set_frozen(bool frozen) {
        weight_.frozen = frozen;
        bias_.frozen = frozen;
    }

    ParameterList<T> parameters() {
        ParameterList<T> list{&weight_};
        if (has_bias_) list.push_back(&bias_);
        return list;
    }
    const std::string& name() const { return name_; }
    const Conv2dSpec& spec() const { return spec_; }
    Parameter<T>& weight() { return weight_; }
    Parameter<T>& bias() { return bias_; }
    const Conv2dCache<T>& cache() const { return cache_; }

private:
    std::string where(const char* what) const {
        return detail::concat("conv2d \"", name_, "\": ", what);
    }
    const T* bias_ptr() const { return has_bias_ ? bias_.value.data() : nullptr; }

    std::string name_;
    Conv2dSpec spec_{};
    bool has_bias_ = true;
    Parameter<T> weight_;
    Parameter<T> bias_;
    Conv2dCache<T> cache_;
    Tensor<T> folded_weight_, folded_bias_;  // forward_folded's weights
};

}  // namespace unetpp
