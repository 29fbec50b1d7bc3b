#pragma once
// Parameter-free upsampling for the U-Net decoder: bilinear 2x, and the "bilinear + conv" path
// that replaces the transposed convolution.
//
//   UpsampleBilinear2x:  y = bilinear_2x(x)   (align_corners=false, PyTorch's nn.Upsample; see
//                        include/unetpp/kernels/upsample2d.hpp for the taps)
//   BilinearUpConv:      u = bilinear_2x(x);  y = conv_RxR(u) + b   ("<name>.conv.weight/bias")
//
//   x  N C H W     u  N C 2H 2W     y  N K 2H 2W      (conv: kernel R x R, stride 1, pad R/2)
//
// Unlike the 2x2 stride-2 transposed convolution, bilinear upsampling makes no checkerboard
// pattern (Odena et al., Distill 2016); the convolution after it then halves the channels like
// the paper's "up-convolution". Default kernel 3 (the paper's 2x2 would shift the image by half a
// pixel with symmetric padding).

#include <string>

#include "unetpp/error.hpp"
#include "unetpp/kernels/upsample2d.hpp"
#include "unetpp/layers/conv2d.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: only the input shape.
struct UpsampleBilinear2xCache {
    Shape x_shape;
    bool valid = false;
};

template <class T>
class UpsampleBilinear2x {
public:
    UpsampleBilinear2x() = default;
    explicit UpsampleBilinear2x(std::string name) : name_(std::move(name)) {}

    Shape output_shape(const Shape& x) const {
        if (x.rank() != 4) {
            throw ShapeError(detail::concat("upsample \"", name_, "\": input must be N C H W, got ",
                                            x.str()));
        }
        return Shape{x[0], x[1], 2 * x[2], 2 * x[3]};
    }

    // ASSIGNS y = bilinear_2x(x).
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        upsample2d_bilinear_forward(x, y);
        cache_ = UpsampleBilinear2xCache{x.shape(), mode == Mode::train};
    }

    // Gradient contract: ADDS the adjoint of the upsampling applied to dy into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("dx").c_str(), dx.shape(), cache_.x_shape);
        shape_check(where("dy").c_str(), dy.shape(), output_shape(cache_.x_shape));
        upsample2d_bilinear_backward(dy, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

private:
    std::string where(const char* what) const {
        return detail::concat("upsample \"", name_, "\": ", what);
    }

    std::string name_;
    UpsampleBilinear2xCache cache_;
};

struct BilinearUpConvSpec {
    int64_t C = 0;       // input channels
    int64_t K = 0;       // output channels
    int64_t kernel = 3;  // odd convolution size R = S, padded by R/2 so the size is kept
};

// What backward needs beyond the convolution's own cache: the upsampled tensor u, owned here
// (resized only when the input shape changes), and its gradient buffer.
template <class T>
struct BilinearUpConvCache {
    Tensor<T> u;
    Tensor<T> du;
};

template <class T>
class BilinearUpConv {
public:
    BilinearUpConv() = default;
    BilinearUpConv(std::string name, const BilinearUpConvSpec& spec)
        : name_(std::move(name)), spec_(spec), up_(name_ + ".up") {
        if (spec.kernel <= 0 || spec.kernel % 2 == 0) {
            throw Error(detail::concat("bilinear_upconv \"", name_,
                                       "\": kernel must be odd and positive, got ", spec.kernel));
        }
        Conv2dSpec conv{spec.C, spec.K, spec.kernel, spec.kernel, 1, spec.kernel / 2};
        conv_ = Conv2d<T>(name_ + ".conv", conv);
    }

    void init(Rng& rng) { conv_.init(rng); }

    Shape output_shape(const Shape& x) const {
        return conv_.output_shape(up_.output_shape(x));
    }

    // ASSIGNS y = conv(bilinear_2x(x)). Mode::train keeps u for the convolution's backward.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        cache_.u.resize(up_.output_shape(x.shape()));
        up_.forward(x, cache_.u.view(), mode);
        conv_.forward(std::as_const(cache_.u).view(), y, mode);
    }

    // Gradient contract: ADDS the input gradient into dx; ASSIGNS the convolution's weight and bias
    // gradients (skipped when frozen).
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        // 1. through the convolution into du (zeroed, since backward adds)
        cache_.du.resize(cache_.u.shape());
        cache_.du.zero();
        conv_.backward(dy, cache_.du.view());
        // 2. through the upsampling into dx
        up_.backward(std::as_const(cache_.du).view(), dx);
    }

    void set_frozen(bool frozen) { conv_.set_frozen(frozen); }
    ParameterList<T> parameters() { return conv_.parameters(); }
    const std::string& name() const { return name_; }
    Conv2d<T>& conv() { return conv_; }

private:
    std::string name_;
    BilinearUpConvSpec spec_;
    UpsampleBilinear2x<T> up_;
    Conv2d<T> conv_;
    BilinearUpConvCache<T> cache_;
};

}  // namespace unetpp
