#pragma once
// Sigmoid activation, around include/unetpp/kernels/activation.hpp.
//
//   y = 1 / (1 + e^-x)          dx += dy * y (1 - y)
//
// The U-Net itself ends in logits: the sigmoid lives in the loss (BCE on logits, which is stable)
// and in UNet::predict_probabilities. This layer is for models that want it explicitly.
// Forward, backward and their checks are those of detail::OutputActivation.

#include <string>
#include <utility>

#include "unetpp/kernels/activation.hpp"
#include "unetpp/layers/output_activation.hpp"

namespace unetpp {

template <class T>
class Sigmoid : public detail::OutputActivation<T, Sigmoid<T>> {
public:
    static constexpr const char* kKind = "sigmoid";

    Sigmoid() = default;
    explicit Sigmoid(std::string name)
        : detail::OutputActivation<T, Sigmoid<T>>(std::move(name)) {}

    void apply(ConstTensorView<T> x, TensorView<T> y) { sigmoid_forward(x, y); }
    void gradient(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
        sigmoid_backward(y, dy, dx);
    }
};

}  // namespace unetpp
