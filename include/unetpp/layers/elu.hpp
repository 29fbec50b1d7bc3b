#pragma once
// ELU activation (Clevert et al., arXiv:1511.07289), around include/unetpp/kernels/activation.hpp.
//
//   y = x                    for x > 0          dx += dy                 for y > 0
//   y = alpha (e^x - 1)      for x <= 0         dx += dy * (y + alpha)   for y <= 0
//
// The derivative is read off y, so only the output is kept. Any shape, contiguous.

#include <string>

#include "unetpp/error.hpp"
#include "unetpp/kernels/activation.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct ELUSpec {
    double alpha = 1.0;
};

// What backward needs: a view of the output, kept alive by the caller.
template <class T>
struct ELUCache {
    ConstTensorView<T> y;
};

template <class T>
class ELU {
public:
    ELU() = default;
    explicit ELU(std::string name, const ELUSpec& spec = {}) : name_(std::move(name)), spec_(spec) {
        if (!(spec.alpha > 0)) {
            throw Error(detail::concat("elu \"", name_, "\": alpha must be positive, got ",
                                       spec.alpha));
        }
    }

    Shape output_shape(const Shape& x) const { return x; }

    // ASSIGNS y = elu(x). Mode::train keeps a view of y.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), x.shape());
        elu_forward(spec_.alpha, x, y);
        cache_.y = mode == Mode::train ? ConstTensorView<T>(y) : ConstTensorView<T>();
    }

    // Gradient contract: ADDS dy * elu'(x) into dx; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (cache_.y.data() == nullptr) {
            throw Error(where("backward called without a Mode::train forward"));
        }
        shape_check(where("dy").c_str(), dy.shape(), cache_.y.shape());
        shape_check(where("dx").c_str(), dx.shape(), cache_.y.shape());
        elu_backward(spec_.alpha, cache_.y, dy, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }
    const ELUSpec& spec() const { return spec_; }

private:
    std::string where(const char* what) const {
        return detail::concat("elu \"", name_, "\": ", what);
    }

    std::string name_;
    ELUSpec spec_;
    ELUCache<T> cache_;
};

}  // namespace unetpp
