#pragma once
// ReLU activation, around include/unetpp/kernels/activation.hpp.
//
//   y = max(x, 0)          dx += dy * [y > 0]
//
// Any shape; x and y contiguous and of equal shape.

#include <string>

#include "unetpp/error.hpp"
#include "unetpp/kernels/activation.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: a view of the output (the derivative is read off y), kept alive by the
// caller.
template <class T>
struct ReLUCache {
    ConstTensorView<T> y;
};

template <class T>
class ReLU {
public:
    ReLU() = default;
    explicit ReLU(std::string name) : name_(std::move(name)) {}

    Shape output_shape(const Shape& x) const { return x; }

    // ASSIGNS y = max(x, 0). Mode::train keeps a view of y.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), x.shape());
        relu_forward(x, y);
        cache_.y = mode == Mode::train ? ConstTensorView<T>(y) : ConstTensorView<T>();
    }

    // Gradient contract: ADDS dy * [y > 0] into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (cache_.y.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), cache_.y.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.y.shape());
        relu_backward(cache_.y, dy, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

private:
    std::string where(const char* what) const {
        return detail::concat("relu \"", name_, "\": ", what);
    }

    std::string name_;
    ReLUCache<T> cache_;
};

}  // namespace unetpp
