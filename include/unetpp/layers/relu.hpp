#pragma once
// ReLU activation, around include/unetpp/kernels/activation.hpp.
//
//   y = max(x, 0)          dx += dy * [y > 0]
//
// Any shape; x and y contiguous and of equal shape. Forward, backward and their checks are
// those of detail::OutputActivation (layers/output_activation.hpp).

#include <string>
#include <utility>

#include "unetpp/kernels/activation.hpp"
#include "unetpp/layers/output_activation.hpp"

namespace unetpp {

template <class T>
class ReLU : public detail::OutputActivation<T, ReLU<T>> {
public:
    static constexpr const char* kKind = "relu";

    ReLU() = default;
    explicit ReLU(std::string name) : detail::OutputActivation<T, ReLU<T>>(std::move(name)) {}

    void apply(ConstTensorView<T> x, TensorView<T> y) { relu_forward(x, y); }
    void gradient(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
        relu_backward(y, dy, dx);
    }
};

}  // namespace unetpp
