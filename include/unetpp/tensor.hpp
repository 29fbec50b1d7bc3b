#pragma once
// Tensors: owned, 64-byte aligned storage of up to four dimensions, and non-owning views.
//
// Shape vocabulary used everywhere in unetpp:
//   N  batch          C  input channels    H  height      W  width
//   K  output channels                      R  kernel height  S  kernel width
// Activations are N C H W, convolution weights K C R S, transposed-convolution weights C K R S
// (PyTorch's order), biases K. The last dimension is contiguous (row-major).
//
// Tensor<T> owns its memory; TensorView<T> and ConstTensorView<T> borrow it. A view of a batch item
// or of a channel range is cheap. Views carry strides, but kernels require contiguous views and say
// so when given anything else.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <type_traits>

#include "unetpp/error.hpp"

namespace unetpp {

constexpr int kMaxRank = 4;
constexpr std::size_t kTensorAlignment = 64;

// The extents of a tensor, rank 0 to 4.
class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) {
        if (dims.size() > static_cast<std::size_t>(kMaxRank)) {
            throw ShapeError(detail::concat("Shape: rank ", dims.size(), " given, at most ",
                                            kMaxRank, " dimensions are supported"));
        }
        int64_t count = 1;
        for (int64_t d : dims) {
            if (d < 0) {
                throw ShapeError(detail::concat("Shape: negative extent ", d, " in a shape"));
            }
            if (d != 0 && count > (int64_t(1) << 62) / d) {
                throw ShapeError(detail::concat("Shape: ", str(), " then ", d,
                                                " elements is too large to address"));
            }
            count *= d;
            dims_[rank_++] = d;
        }
    }

    int rank() const { return rank_; }
    int64_t operator[](int i) const {
        if (i < 0 || i >= rank_) {
            throw ShapeError(detail::concat("Shape ", str(), ": dimension ", i, " out of range"));
        }
        return dims_[i];
    }
    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < rank_; ++i) n *= dims_[i];
        return n;
    }
    bool operator==(const Shape& other) const {
        if (rank_ != other.rank_) return false;
        for (int i = 0; i < rank_; ++i) {
            if (dims_[i] != other.dims_[i]) return false;
        }
        return true;
    }
    bool operator!=(const Shape& other) const { return !(*this == other); }

    // "[2, 3, 64, 64]"
    std::string str() const {
        std::string s = "[";
        for (int i = 0; i < rank_; ++i) {
            s += std::to_string(dims_[i]);
            if (i + 1 < rank_) s += ", ";
        }
        return s + "]";
    }

private:
    std::array<int64_t, kMaxRank> dims_{};
    int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

namespace detail {

inline std::array<int64_t, kMaxRank> contiguous_strides(const Shape& shape) {
    std::array<int64_t, kMaxRank> strides{};
    int64_t s = 1;
    for (int i = shape.rank() - 1; i >= 0; --i) {
        strides[i] = s;
        s *= shape[i];
    }
    return strides;
}

// A view's data pointer, shape and strides, shared by the const and mutable views.
template <class T>
class ViewBase {
public:
    ViewBase() = default;
    ViewBase(T* data, const Shape& shape)
        : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
    ViewBase(T* data, const Shape& shape, const std::array<int64_t, kMaxRank>& strides)
        : data_(data), shape_(shape), strides_(strides) {}

    T* data() const { return data_; }
    const Shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    int64_t dim(int i) const { return shape_[i]; }
    int64_t numel() const { return shape_.numel(); }
    int64_t stride(int i) const {
        if (i < 0 || i >= rank()) {
            throw ShapeError(concat("stride(", i, ") on a tensor of shape ", shape_.str()));
        }
        return strides_[i];
    }
    const std::array<int64_t, kMaxRank>& strides() const { return strides_; }

    // The N, C, H, W extents of a rank-4 view.
    int64_t n() const { return dim4(0); }
    int64_t c() const { return dim4(1); }
    int64_t h() const { return dim4(2); }
    int64_t w() const { return dim4(3); }

    bool is_contiguous() const { return strides_ == contiguous_strides(shape_); }

    // Unchecked element access for rank 4 (hot loops); `at` checks bounds.
    T& operator()(int64_t a, int64_t b, int64_t c, int64_t d) const {
        return data_[a * strides_[0] + b * strides_[1] + c * strides_[2] + d * strides_[3]];
    }
    T& at(std::initializer_list<int64_t> index) const {
        if (static_cast<int>(index.size()) != rank()) {
            throw ShapeError(concat("at(): ", index.size(), " indices given for a tensor of shape ",
                                    shape_.str()));
        }
        int64_t offset = 0;
        int i = 0;
        for (int64_t v : index) {
            if (v < 0 || v >= shape_[i]) {
                throw ShapeError(concat("at(): index ", v, " out of range for dimension ", i,
                                        " of shape ", shape_.str()));
            }
            offset += v * strides_[i++];
        }
        return data_[offset];
    }

protected:
    int64_t dim4(int i) const {
        if (rank() != 4) {
            throw ShapeError(concat("expected an N C H W tensor (rank 4), got shape ", shape_.str()));
        }
        return shape_[i];
    }
    // Sub-range [lo, lo+count) of dimension `axis`, keeping the rank.
    ViewBase slice(int axis, int64_t lo, int64_t count) const {
        if (axis < 0 || axis >= rank() || lo < 0 || count < 0 || lo + count > shape_[axis]) {
            throw ShapeError(concat("slice of dimension ", axis, " from ", lo, " count ", count,
                                    " is out of range for shape ", shape_.str()));
        }
        std::array<int64_t, kMaxRank> dims{};
        for (int i = 0; i < rank(); ++i) dims[i] = shape_[i];
        dims[axis] = count;
        Shape s = make_shape(dims, rank());
        return ViewBase(data_ + lo * strides_[axis], s, strides_);
    }
    static Shape make_shape(const std::array<int64_t, kMaxRank>& d, int rank) {
        switch (rank) {
            case 0: return Shape{};
            case 1: return Shape{d[0]};
            case 2: return Shape{d[0], d[1]};
            case 3: return Shape{d[0], d[1], d[2]};
            default: return Shape{d[0], d[1], d[2], d[3]};
        }
    }

    T* data_ = nullptr;
    Shape shape_;
    std::array<int64_t, kMaxRank> strides_{};
};

}  // namespace detail

// A read-only, non-owning window onto tensor data.
template <class T>
class ConstTensorView : public detail::ViewBase<const T> {
    using Base = detail::ViewBase<const T>;

public:
    using Base::Base;
    ConstTensorView(const Base& base) : Base(base) {}

    // Items [n0, n0+count) of the batch (dimension 0).
    ConstTensorView batch(int64_t n0, int64_t count = 1) const { return this->slice(0, n0, count); }
    // Channels [c0, c0+count) of every batch item (dimension 1).
    ConstTensorView channels(int64_t c0, int64_t count) const { return this->slice(1, c0, count); }
};

// A mutable, non-owning window onto tensor data.
template <class T>
class TensorView : public detail::ViewBase<T> {
    using Base = detail::ViewBase<T>;

public:
    using Base::Base;
    TensorView(const Base& base) : Base(base) {}
    operator ConstTensorView<T>() const {
        return ConstTensorView<T>(this->data_, this->shape_, this->strides_);
    }

    TensorView batch(int64_t n0, int64_t count = 1) const { return this->slice(0, n0, count); }
    TensorView channels(int64_t c0, int64_t count) const { return this->slice(1, c0, count); }
};

namespace detail {
struct AlignedFree {
    void operator()(void* p) const { std::free(p); }
};

template <class T>
std::unique_ptr<T[], AlignedFree> aligned_array(int64_t count, const Shape& shape) {
    if (count == 0) return nullptr;
    constexpr int64_t kMaxBytes = int64_t(1) << 46;  // 64 TiB: anything larger is a shape bug
    if (count > kMaxBytes / int64_t(sizeof(T))) {
        throw Error(concat("tensor of shape ", shape.str(), " would need ", count, " elements of ",
                           sizeof(T), " bytes: too large to allocate"));
    }
    std::size_t bytes = static_cast<std::size_t>(count) * sizeof(T);
    bytes = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    void* p = std::aligned_alloc(kTensorAlignment, bytes);
    if (p == nullptr) {
        throw Error(concat("tensor of shape ", shape.str(), ": allocation of ", bytes,
                           " bytes failed (out of memory)"));
    }
    return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}
}  // namespace detail

// An owning, contiguous, 64-byte aligned tensor of float or double.
// New tensors are zero-filled. Copying copies the data; moving is cheap.
template <class T>
class Tensor {
    static_assert(std::is_floating_point<T>::value,
                  "unetpp::Tensor holds float or double; other element types are not supported.");

public:
    using value_type = T;

    Tensor() = default;
    explicit Tensor(const Shape& shape) { resize(shape); }
    Tensor(std::initializer_list<int64_t> dims) : Tensor(Shape(dims)) {}

    Tensor(const Tensor& other) : Tensor(other.shape_) { copy_from(other.view()); }
    Tensor& operator=(const Tensor& other) {
        if (this != &other) {
            resize(other.shape_);
            copy_from(other.view());
        }
        return *this;
    }
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    // Reshapes to `shape`, keeping the allocation when it is large enough. The contents are
    // zero-filled whenever the shape changes.
    void resize(const Shape& shape) {
        if (shape == shape_ && (data_ || shape.numel() == 0)) return;
        int64_t count = shape.numel();
        if (count > capacity_) {
            data_ = detail::aligned_array<T>(count, shape);
            capacity_ = count;
        }
        shape_ = shape;
        fill(T(0));
    }
    // Changes the shape without touching the data; the element count must stay the same.
    void reshape(const Shape& shape) {
        if (shape.numel() != shape_.numel()) {
            throw ShapeError(detail::concat("reshape from ", shape_.str(), " to ", shape.str(),
                                            ": element counts differ (", shape_.numel(), " vs ",
                                            shape.numel(), ")"));
        }
        shape_ = shape;
    }

    T* data() { return data_.get(); }
    const T* data() const { return data_.get(); }
    const Shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    int64_t dim(int i) const { return shape_[i]; }
    int64_t numel() const { return shape_.numel(); }
    // Elements the allocation holds (at least numel(); resize to a smaller shape keeps it).
    int64_t capacity() const { return capacity_; }
    int64_t n() const { return view().n(); }
    int64_t c() const { return view().c(); }
    int64_t h() const { return view().h(); }
    int64_t w() const { return view().w(); }

    T* begin() { return data(); }
    T* end() { return data() + numel(); }
    const T* begin() const { return data(); }
    const T* end() const { return data() + numel(); }
    T& operator[](int64_t i) { return data_[i]; }
    const T& operator[](int64_t i) const { return data_[i]; }
    T& operator()(int64_t a, int64_t b, int64_t c, int64_t d) { return view()(a, b, c, d); }
    const T& operator()(int64_t a, int64_t b, int64_t c, int64_t d) const {
        return view()(a, b, c, d);
    }
    T& at(std::initializer_list<int64_t> index) { return view().at(index); }
    const T& at(std::initializer_list<int64_t> index) const { return view().at(index); }

    TensorView<T> view() { return TensorView<T>(data(), shape_); }
    ConstTensorView<T> view() const { return ConstTensorView<T>(data(), shape_); }
    operator TensorView<T>() { return view(); }
    operator ConstTensorView<T>() const { return view(); }
    TensorView<T> batch(int64_t n0, int64_t count = 1) { return view().batch(n0, count); }
    ConstTensorView<T> batch(int64_t n0, int64_t count = 1) const {
        return view().batch(n0, count);
    }
    TensorView<T> channels(int64_t c0, int64_t count) { return view().channels(c0, count); }
    ConstTensorView<T> channels(int64_t c0, int64_t count) const {
        return view().channels(c0, count);
    }

    void fill(T value) { std::fill(begin(), end(), value); }
    void zero() { fill(T(0)); }

    // Copies `src` (any strides) into this tensor; shapes must match.
    void copy_from(ConstTensorView<T> src);

private:
    std::unique_ptr<T[], detail::AlignedFree> data_;
    Shape shape_;
    int64_t capacity_ = 0;
};

// Throws ShapeError naming `what` unless `actual` equals `expected`.
inline void shape_check(const char* what, const Shape& actual, const Shape& expected) {
    if (actual != expected) {
        throw ShapeError(detail::concat(what, ": expected shape ", expected.str(), ", got ",
                                        actual.str()));
    }
}

// Throws ShapeError naming `what` unless the view is contiguous.
template <class View>
void contiguous_check(const char* what, const View& v) {
    if (!v.is_contiguous()) {
        throw ShapeError(detail::concat(what, ": needs a contiguous tensor, got a strided view of ",
                                        "shape ", v.shape().str(),
                                        " (copy it into a Tensor first)"));
    }
}

// Calls fn(offset_in_dst, offset_in_src, run_length) over the innermost contiguous runs.
namespace detail {
template <class Fn>
void for_each_run(const Shape& shape, const std::array<int64_t, kMaxRank>& dst_strides,
                  const std::array<int64_t, kMaxRank>& src_strides, Fn&& fn) {
    int r = shape.rank();
    if (r == 0) {
        fn(0, 0, 1);
        return;
    }
    std::array<int64_t, kMaxRank> d{1, 1, 1, 1};
    for (int i = 0; i < r; ++i) d[kMaxRank - r + i] = shape[i];
    std::array<int64_t, kMaxRank> ds{0, 0, 0, 0}, ss{0, 0, 0, 0};
    for (int i = 0; i < r; ++i) {
        ds[kMaxRank - r + i] = dst_strides[i];
        ss[kMaxRank - r + i] = src_strides[i];
    }
    for (int64_t a = 0; a < d[0]; ++a)
        for (int64_t b = 0; b < d[1]; ++b)
            for (int64_t c = 0; c < d[2]; ++c) {
                int64_t dof = a * ds[0] + b * ds[1] + c * ds[2];
                int64_t sof = a * ss[0] + b * ss[1] + c * ss[2];
                if (ds[3] == 1 && ss[3] == 1) {
                    fn(dof, sof, d[3]);
                } else {
                    for (int64_t e = 0; e < d[3]; ++e) fn(dof + e * ds[3], sof + e * ss[3], 1);
                }
            }
}
}  // namespace detail

// Copies src into dst (any strides, same shape).
template <class T>
void tensor_copy(ConstTensorView<T> src, TensorView<T> dst) {
    shape_check("tensor_copy", src.shape(), dst.shape());
    detail::for_each_run(src.shape(), dst.strides(), src.strides(),
                         [&](int64_t dof, int64_t sof, int64_t len) {
                             std::memcpy(dst.data() + dof, src.data() + sof, len * sizeof(T));
                         });
}

// Sets every element of a view to `value`.
template <class T>
void tensor_fill(TensorView<T> dst, T value) {
    detail::for_each_run(dst.shape(), dst.strides(), dst.strides(),
                         [&](int64_t dof, int64_t, int64_t len) {
                             std::fill(dst.data() + dof, dst.data() + dof + len, value);
                         });
}

template <class T>
void Tensor<T>::copy_from(ConstTensorView<T> src) {
    tensor_copy(src, view());
}

// Elementwise helpers on whole tensors of equal shape.
// y += alpha * x
template <class T>
void tensor_axpy(T alpha, const Tensor<T>& x, Tensor<T>& y) {
    shape_check("tensor_axpy", x.shape(), y.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y[i] += alpha * x[i];
}
// x *= alpha
template <class T>
void tensor_scale(T alpha, Tensor<T>& x) {
    for (auto& v : x) v *= alpha;
}
// Largest |a - b| over all elements.
template <class T>
T tensor_max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
    shape_check("tensor_max_abs_diff", b.shape(), a.shape());
    T m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}
// A copy converted to another element type (float <-> double for gradient checks).
template <class To, class From>
Tensor<To> tensor_cast(const Tensor<From>& x) {
    Tensor<To> y(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = static_cast<To>(x[i]);
    return y;
}

}  // namespace unetpp
