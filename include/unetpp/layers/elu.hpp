#pragma once
// ELU activation (Clevert et al., arXiv:1511.07289), around include/unetpp/kernels/activation.hpp.
//
//   y = x                    for x > 0          dx += dy                 for y > 0
//   y = alpha (e^x - 1)      for x <= 0         dx += dy * (y + alpha)   for y <= 0
//
// The derivative is read off y, so only the output is kept. Any shape, contiguous. Forward,
// backward and their checks are those of detail::OutputActivation.

#include <string>
#include <utility>

#include "unetpp/error.hpp"
#include "unetpp/kernels/activation.hpp"
#include "unetpp/layers/output_activation.hpp"

namespace unetpp {

struct ELUSpec {
    double alpha = 1.0;
};

template <class T>
class ELU : public detail::OutputActivation<T, ELU<T>> {
public:
    static constexpr const char* kKind = "elu";

    ELU() = default;
    explicit ELU(std::string name, const ELUSpec& spec = {})
        : detail::OutputActivation<T, ELU<T>>(std::move(name)), spec_(spec) {
        if (!(spec.alpha > 0)) {
            throw Error(this->where(detail::concat("alpha must be positive, got ", spec.alpha)
                                        .c_str()));
        }
    }

    const ELUSpec& spec() const { return spec_; }

    void apply(ConstTensorView<T> x, TensorView<T> y) { elu_forward(spec_.alpha, x, y); }
    void gradient(ConstTensorView<T> y, ConstTensorView<T> dy, TensorView<T> dx) {
        elu_backward(spec_.alpha, y, dy, dx);
    }

private:
    ELUSpec spec_;
};

}  // namespace unetpp
