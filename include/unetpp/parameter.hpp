#pragma once
// Named parameters and the training/inference mode switch.
//
// Every layer owns its Parameters and lists them by stable, readable names ("enc1.conv1.weight").
// Optimizers and checkpoints work on those lists, never on layers directly. A Parameter that is
// not trainable (BatchNorm's running mean and variance) is saved with the model but has no
// gradient and is never touched by an optimizer.

#include <string>
#include <vector>

#include "unetpp/tensor.hpp"

namespace unetpp {

// Training keeps what backward needs and uses batch statistics and dropout; inference does not.
enum class Mode { train, infer };

template <class T>
struct Parameter {
    std::string name;   // stable and unique inside a model, e.g. "enc1.conv1.weight"
    Tensor<T> value;    // the parameter itself
    Tensor<T> grad;     // same shape as value when trainable; empty otherwise
    bool trainable = true;
    bool frozen = false;  // a frozen trainable parameter keeps its value; backward skips its grad

    Parameter() = default;
    Parameter(std::string name_, const Shape& shape, bool trainable_ = true)
        : name(std::move(name_)), value(shape), trainable(trainable_) {
        if (trainable) grad.resize(shape);
    }
};

// Non-owning list of a model's parameters, in a stable order.
template <class T>
using ParameterList = std::vector<Parameter<T>*>;

// Total number of scalar values in the trainable parameters of `params`.
template <class T>
int64_t parameter_count(const ParameterList<T>& params) {
    int64_t n = 0;
    for (const Parameter<T>* p : params) {
        if (p->trainable) n += p->value.numel();
    }
    return n;
}

// Sets every trainable parameter's gradient to zero.
template <class T>
void parameter_zero_grad(const ParameterList<T>& params) {
    for (Parameter<T>* p : params) {
        if (p->trainable) p->grad.zero();
    }
}

}  // namespace unetpp
