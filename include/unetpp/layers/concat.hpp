#pragma once
// Concat: joins two feature maps along channels, the U-Net skip connection, around
// include/unetpp/kernels/concat.hpp.
//
//   y[n, c, h, w] = a[n, c, h, w]  for c < Ca;     y[n, Ca + c, h, w] = b[n, c, h, w]  for c < Cb
//
//   a  N Ca H W (the upsampled decoder features)   b  N Cb H W (the encoder skip)   y  N Ca+Cb H W

#include <string>

#include "unetpp/error.hpp"
#include "unetpp/kernels/concat.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What backward needs: only the two input shapes.
struct ConcatCache {
    Shape a_shape, b_shape;
    bool valid = false;
};

template <class T>
class Concat {
public:
    Concat() = default;
    explicit Concat(std::string name) : name_(std::move(name)) {}

    // N Ca+Cb H W; throws ShapeError naming this layer when a and b differ in N, H or W.
    Shape output_shape(const Shape& a, const Shape& b) const {
        if (a.rank() != 4 || b.rank() != 4 || a[0] != b[0] || a[2] != b[2] || a[3] != b[3]) {
            throw ShapeError(detail::concat("concat \"", name_, "\": inputs ", a.str(), " and ",
                                            b.str(), " must agree in N, H and W"));
        }
        return Shape{a[0], a[1] + b[1], a[2], a[3]};
    }

    // ASSIGNS y = [a, b] along channels. y must not overlap a or b.
    void forward(ConstTensorView<T> a, ConstTensorView<T> b, TensorView<T> y, Mode mode) {
        shape_check(where("output").c_str(), y.shape(), output_shape(a.shape(), b.shape()));
        concat_channels_forward(a, b, y);
        cache_ = ConcatCache{a.shape(), b.shape(), mode == Mode::train};
    }

    // Gradient contract: ADDS dy's first Ca channels into da and the other Cb into db (the skip
    // tensor's gradient also arrives from the encoder path; GradWrite::assign copies them);
    // no parameters.
    void backward(ConstTensorView<T> dy, TensorView<T> da, TensorView<T> db,
                  GradWrite write = GradWrite::add) {
        if (!cache_.valid) throw Error(where("backward called without a Mode::train forward"));
        shape_check(where("da").c_str(), da.shape(), cache_.a_shape);
        shape_check(where("db").c_str(), db.shape(), cache_.b_shape);
        concat_channels_backward(dy, da, db, write);
    }

    ParameterList<T> parameters() { return {}; }
    const std::string& name() const { return name_; }

private:
    std::string where(const char* what) const {
        return detail::concat("concat \"", name_, "\": ", what);
    }

    std::string name_;
    ConcatCache cache_;
};

}  // namespace unetpp
