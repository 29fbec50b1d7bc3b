#pragma once
// MaxPool2d: 2x2 max-pooling with stride 2, the U-Net encoder's downsampling, around
// include/unetpp/kernels/maxpool2d.hpp.
//
//   y[n,c,i,j] = max_{r,s in {0,1}} x[n,c,2i+r,2j+s]       x N C H W,  y N C floor(H/2) floor(W/2)
//
// Odd sizes drop the last row or column (floor), as in PyTorch and Keras; the U-Net pads its input
// to a multiple of 2^depth so this never happens inside it.

#include <cstdint>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/kernels/maxpool2d.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: where each maximum came from, and the input shape.
template <class T>
struct MaxPool2dCache {
    std::vector<int32_t> argmax;  // per output, flat index h*W + w inside its input plane
    Shape x_shape;
    bool valid = false;
};

template <class T>
class MaxPool2d {
public:
    MaxPool2d() = default;
    explicit MaxPool2d(std::string name) : name_(std::move(name)) {}

    Shape output_shape(const Shape& x) const {
        if (x.rank() != 4 || x[2] < 2 || x[3] < 2) {
            throw ShapeError(detail::concat("maxpool2d \"", name_,
                                            "\": input must be N C H W with H, W >= 2, got ",
                                            x.str()));
        }
        return Shape{x[0], x[1], x[2] / 2, x[3] / 2};
    }

    // ASSIGNS y. Both modes record argmax (the kernel needs somewhere to write it); only
    // Mode::train allows a later backward.
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), output_shape(x.shape()));
        maxpool2d_forward(x, y, cache_.argmax);
        cache_.x_shape = x.shape();
        cache_.valid = mode == Mode::train;
    }

    // Gradient contract: ADDS dy into dx at the recorded maxima; no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("dx").c_str(), dx.shape(), cache_.x_shape);
        shape_check(where("dy").c_str(), dy.shape(), output_shape(cache_.x_shape));
        maxpool2d_backward(dy, cache_.argmax, dx);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

private:
    std::string where(const char* what) const {
        return detail::concat("maxpool2d \"", name_, "\": ", what);
    }

    std::string name_;
    MaxPool2dCache<T> cache_;
};

}  // namespace unetpp
