#pragma once
// ConvTranspose2d: the U-Net decoder's learned 2x upsampling (2x2 kernel, stride 2), around
// include/unetpp/kernels/conv_transpose2d.hpp.
//
//   y[n,k,2i+r,2j+s] = b[k] + sum_c w[c,k,r,s] * x[n,c,i,j]        r, s in {0, 1}
//
//   x  N C H W     weight C K 2 2 ("<name>.weight", PyTorch's layout)     bias K     y  N K 2H 2W
//
// Weights start He-normal with fan_in = C: every output pixel sees exactly one tap per input
// channel, since the 2x2 windows of stride 2 do not overlap.

#include <string>
#include <utility>

#include "unetpp/error.hpp"
#include "unetpp/kernels/conv_transpose2d.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: a view of the forward input, kept alive by the caller.
template <class T>
struct ConvTranspose2dCache {
    ConstTensorView<T> x;
};

template <class T>
class ConvTranspose2d {
public:
    ConvTranspose2d() = default;
    // Creates "<name>.weight" (C K 2 2) and "<name>.bias" (K), zero-filled; call init().
    ConvTranspose2d(std::string name, const ConvTranspose2dSpec& spec)
        : name_(std::move(name)), spec_(spec) {
        if (spec.C <= 0 || spec.K <= 0) {
            throw Error(detail::concat("conv_transpose2d \"", name_, "\": invalid spec C=",
                                       spec.C, " K=", spec.K));
        }
        weight_ = Parameter<T>(name_ + ".weight", Shape{spec.C, spec.K, 2, 2});
        bias_ = Parameter<T>(name_ + ".bias", Shape{spec.K});
    }

    void init(Rng& rng) {
        init_he_normal(weight_.value, rng, spec_.C);
        bias_.value.zero();
    }

    // N K 2H 2W; throws ShapeError naming this layer when x does not fit.
    Shape output_shape(const Shape& x) const {
        if (x.rank() != 4) {
            throw ShapeError(detail::concat("conv_transpose2d \"", name_,
                                            "\": input must be N C H W, got ", x.str()));
        }
        if (x[1] != spec_.C) {
            throw ShapeError(detail::concat("conv_transpose2d \"", name_, "\": input has ", x[1],
                                            " channels, weights expect ", spec_.C));
        }
        return Shape{x[0], spec_.K, 2 * x[2], 2 * x[3]};
    }

    // ASSIGNS y. Mode::train keeps a view of x for backward; Mode::infer keeps nothing.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        ConstTensorView<T> weight = std::as_const(weight_.value).view();
        conv_transpose2d_forward(spec_, x, weight, std::as_const(bias_.value).data(), y);
        cache_.x = mode == Mode::train ? x : ConstTensorView<T>();
    }

    // Gradient contract: ADDS the input gradient into dx (skipped for an empty dx); ASSIGNS
    // weight.grad and bias.grad, skipped when the weight is frozen.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (cache_.x.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), output_shape(cache_.x.shape()));

        // 1. input gradient
        if (dx.data() != nullptr) {
            shape_check(where("dx").c_str(), dx.shape(), cache_.x.shape());
            conv_transpose2d_backward_data(spec_, dy, std::as_const(weight_.value).view(), dx);
        }
        // 2. weight and bias gradients
        if (!weight_.frozen) {
            conv_transpose2d_backward_weight(spec_, cache_.x, dy, weight_.grad.view(),
                                             bias_.grad.data());
        }
    }

    void set_frozen(bool frozen) {
        weight_.frozen = frozen;
        bias_.frozen = frozen;
    }
    ParameterList<T> parameters() { return {&weight_, &bias_}; }
    const std::string& name() const { return name_; }
    const ConvTranspose2dSpec& spec() const { return spec_; }
    Parameter<T>& weight() { return weight_; }
    Parameter<T>& bias() { return bias_; }

private:
    std::string where(const char* what) const {
        return detail::concat("conv_transpose2d \"", name_, "\": ", what);
    }

    std::string name_;
    ConvTranspose2dSpec spec_{};
    Parameter<T> weight_;
    Parameter<T> bias_;
    ConvTranspose2dCache<T> cache_;
};

}  // namespace unetpp
