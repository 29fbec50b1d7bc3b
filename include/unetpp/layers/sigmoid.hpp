#pragma once
// Sigmoid activation, around include/unetpp/kernels/activation.hpp.
//
//   y = 1 / (1 + e^-x)          dx += dy * y (1 - y)
//
// The U-Net itself ends in logits: the sigmoid lives in the loss (BCE on logits, which is stable)
// and in UNet::predict_probabilities. This layer is for models that want it explicitly.

#include <string>

#include "unetpp/error.hpp"
#include "unetpp/kernels/activation.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: a view of the output, kept alive by the caller.
template <class T>
struct SigmoidCache {
    ConstTensorView<T> y;
};

template <class T>
class Sigmoid {
public:
    Sigmoid() = default;
    explicit Sigmoid(std::string name) : name_(std::move(name)) {}

    Shape output_shape(const Shape& x) const { return x; }

    // ASSIGNS y = sigmoid(x). Mode::train keeps a view of y.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), x.shape());
        sigmoid_forward(x, y);
        cache_.y = mode == Mode::train ? ConstTensorView<T>(y) : ConstTensorView<T>();
    }

    // Gradient contract: ADDS dy * y (1 - y) into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (cache_.y.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), cache_.y.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.y.shape());
        sigmoid_backward(cache_.y, dy, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

private:
    std::string where(const char* what) const {
        return detail::concat("sigmoid \"", name_, "\": ", what);
    }

    std::string name_;
    SigmoidCache<T> cache_;
};

}  // namespace unetpp
