#pragma once
// What ReLU, ELU and Sigmoid share: elementwise activations whose derivative can be read off
// their output, so a training forward keeps a view of y and nothing else.
//
// A layer derives from detail::OutputActivation<T, Layer> and supplies
//   static constexpr const char* kKind;                    // "relu", used in error messages
//   void apply(ConstTensorView<T> x, TensorView<T> y);    // y = f(x)
//   void gradient(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx);  // dx += ...
// The base checks shapes and the mode and owns the name and the kept view.

#include <string>
#include <utility>

#include "unetpp/error.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp::detail {

template <class T, class Layer>
class OutputActivation {
public:
    Shape output_shape(const Shape& x) const { return x; }

    // ASSIGNS y = f(x); x and y of equal shape, contiguous. Mode::train keeps a view of y,
    // which the caller keeps alive until backward.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), x.shape());
        static_cast<Layer*>(this)->apply(x, y);
        y_ = mode == Mode::train ? ConstTensorView<T>(y) : ConstTensorView<T>();
    }

    // Gradient contract: ADDS dy * f'(x) into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (y_.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), y_.shape());
        shape_check(where("dx").c_str(), dx.shape(), y_.shape());
        static_cast<Layer*>(this)->gradient(y_, dy, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

protected:
    OutputActivation() = default;
    explicit OutputActivation(std::string name) : name_(std::move(name)) {}

    std::string where(const char* what) const {
        return concat(Layer::kKind, " \"", name_, "\": ", what);
    }

private:
    std::string name_;
    ConstTensorView<T> y_;
};

}  // namespace unetpp::detail
