// ReLU, ELU and sigmoid: the float fast path against double references, the polynomial exp,
// backward against finite differences (adding into dx), in-place use, threads and errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/activation.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <cmath>
#include <cstring>
#include <functional>


// Runs a scope on one thread. Finite differences call the kernel thousands of times on tiny
// tensors; on a shared 2-core CI machine each OpenMP fork then waits on a busy partner core and
// the test crawls. Thread independence has its own test case.
namespace {
struct OneThread {
    OneThread() { unetpp::set_num_threads(1); }
    ~OneThread() { unetpp::set_num_threads(0); }
};
}  // namespace

using unetpp::ConstTensorView;
using unetpp::Tensor;
using unetpp::TensorView;
using namespace unetpp_test;

namespace {

// exp_poly promises about 2 ulp (float epsilon is 1.2e-7) on its range.
constexpr double kExpRelTolerance = 3e-7;
// Activation outputs lie within [-alpha, 10] here; a few ulp of 10 plus exp's error.
constexpr double kActivationTolerance = 5e-6;
constexpr double kAlpha = 0.7;

// Sizes around a SIMD width and around the parallel block of 16384 elements.
const std::vector<int64_t> kLengths = {1, 3, 7, 17, 33, 16384 + 5};

using Forward = std::function<void(ConstTensorView<double>, TensorView<double>)>;
using Backward =
    std::function<void(ConstTensorView<double>, ConstTensorView<double>, TensorView<double>)>;

// Checks backward(y, g, dx) against d/dx sum(g * forward(x)), with dx prefilled by noise.
void check_gradient(const std::string& what, const Forward& forward, const Backward& backward,
                    Tensor<double> x, unetpp::Rng& rng) {
    Tensor<double> y(x.shape());
    auto g = random_tensor<double>(x.shape(), rng);
    auto loss = [&]() {
        forward(x, y);
        return weighted_sum(g, y);
    };
    forward(x, y);
    auto noise = random_tensor<double>(x.shape(), rng);
    Tensor<double> dx = noise;
    backward(y, g, dx);
    unetpp::tensor_axpy(-1.0, noise, dx);
    gradient_check(what, dx, numeric_gradient(loss, x));
}

// Values in [-6, 6) but at least 0.01 from 0, where ReLU and ELU have a kink.
Tensor<double> kink_free(const unetpp::Shape& shape, unetpp::Rng& rng) {
    Tensor<double> x(shape);
    for (auto& v : x) {
        v = rng.uniform(0.01, 6.0);
        if (rng.uniform() < 0.5) v = -v;
    }
    return x;
}

}  // namespace

TEST_CASE("exp_poly stays within a few ulp of exp over the float range", "[activation]") {
    for (double x = -87.0; x <= 88.0; x += 0.01721) {
        const double want = std::exp(double(float(x)));
        const double got = unetpp::detail::exp_poly(float(x));
        if (!(std::abs(got - want) <= kExpRelTolerance * want)) {
            FAIL("exp_poly(" << float(x) << ") = " << got << ", exp = " << want);
        }
    }
    REQUIRE(unetpp::detail::exp_poly(-1000.0f) >= 0.0f);
    REQUIRE(std::isfinite(unetpp::detail::exp_poly(1000.0f)));
}

TEST_CASE("float activations match double references on awkward lengths", "[activation]") {
    unetpp::Rng rng(51);
    for (int64_t n : kLengths) {
        INFO("length " << n);
        Tensor<float> x({n}), y({n}), dy({n});
        for (auto& v : x) v = float(rng.uniform(-10.0, 10.0));
        x[0] = 0.0f;  // the kink: both sides take the x <= 0 branch
        for (auto& v : dy) v = float(rng.uniform(-1.0, 1.0));
        auto xd = unetpp::tensor_cast<double>(x), dyd = unetpp::tensor_cast<double>(dy);
        Tensor<double> yd({n});

        auto compare = [&](const char* what, const Tensor<float>& got, const Tensor<double>& want) {
            for (int64_t i = 0; i < n; ++i) {
                if (!(std::abs(double(got[i]) - want[i]) <= kActivationTolerance)) {
                    FAIL(what << " at " << i << " (x=" << x[i] << "): got " << got[i] << ", want "
                              << want[i]);
                }
            }
        };
        auto compare_backward = [&](const char* what, auto backward, auto backward_ref) {
            Tensor<float> dx({n});
            Tensor<double> dxd({n});
            dx.fill(0.5f);
            dxd.fill(0.5);
            backward(y, dy, dx);
            backward_ref(unetpp::tensor_cast<double>(y), dyd, dxd);
            compare(what, dx, dxd);
            // the backward wrote something (a copy of dx taken by mistake would leave 0.5)
            bool changed = false;
            for (int64_t i = 0; i < n; ++i) changed = changed || dxd[i] != 0.5;
            if (n >= 4) REQUIRE(changed);
        };

        unetpp::relu_forward<float>(x, y);
        unetpp::relu_forward_reference<double>(xd, yd);
        compare("relu", y, yd);
        compare_backward(
            "relu backward",
            [](const Tensor<float>& y_, const Tensor<float>& g_, Tensor<float>& dx_) {
                unetpp::relu_backward<float>(y_, g_, dx_);
            },
            unetpp::relu_backward_reference<double>);
        // assign: dx's old contents (NaN here) are ignored; the values are those added to 0
        {
            Tensor<float> assigned({n}), added({n});
            assigned.fill(std::nanf(""));
            unetpp::relu_backward<float>(y, dy, assigned, unetpp::GradWrite::assign);
            unetpp::relu_backward<float>(y, dy, added);
            for (int64_t i = 0; i < n; ++i) {
                if (!(assigned[i] == added[i])) {
                    FAIL("relu backward assign at " << i << ": " << assigned[i] << ", added to "
                                                    << "zero " << added[i]);
                }
            }
        }

        unetpp::elu_forward<float>(kAlpha, x, y);
        unetpp::elu_forward_reference<double>(kAlpha, xd, yd);
        compare("elu", y, yd);
        compare_backward(
            "elu backward",
            [](const Tensor<float>& y_, const Tensor<float>& g_, Tensor<float>& dx_) {
                unetpp::elu_backward<float>(kAlpha, y_, g_, dx_);
            },
            [](const Tensor<double>& y_, const Tensor<double>& g_, Tensor<double>& dx_) {
                unetpp::elu_backward_reference<double>(kAlpha, y_, g_, dx_);
            });

        unetpp::sigmoid_forward<float>(x, y);
        unetpp::sigmoid_forward_reference<double>(xd, yd);
        compare("sigmoid", y, yd);
        compare_backward("sigmoid backward", unetpp::sigmoid_backward<float>,
                         unetpp::sigmoid_backward_reference<double>);
    }
}

TEST_CASE("sigmoid saturates without NaN or infinity", "[activation]") {
    Tensor<float> x({4}), y({4});
    x[0] = -1000.0f, x[1] = -90.0f, x[2] = 90.0f, x[3] = 1000.0f;
    unetpp::sigmoid_forward<float>(x, y);
    REQUIRE(y[0] >= 0.0f);
    REQUIRE(y[0] < 1e-30f);
    REQUIRE(y[1] < 1e-30f);
    REQUIRE(y[2] == 1.0f);
    REQUIRE(y[3] == 1.0f);
}

TEST_CASE("activation backwards match finite differences and add into dx",
          "[activation][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(52);
    const unetpp::Shape shape{2, 3, 5, 7};
    check_gradient(
        "relu", unetpp::relu_forward<double>,
        [](auto y, auto g, auto dx) { unetpp::relu_backward<double>(y, g, dx); },
        kink_free(shape, rng), rng);
    check_gradient(
        "elu", [](auto x, auto y) { unetpp::elu_forward<double>(kAlpha, x, y); },
        [](auto y, auto g, auto dx) { unetpp::elu_backward<double>(kAlpha, y, g, dx); },
        kink_free(shape, rng), rng);
    check_gradient("sigmoid", unetpp::sigmoid_forward<double>, unetpp::sigmoid_backward<double>,
                   random_tensor<double>(shape, rng), rng);
}

TEST_CASE("activation forwards run in place", "[activation]") {
    unetpp::Rng rng(53);
    auto x = random_tensor<float>({3, 33}, rng);
    Tensor<float> y(x.shape()), z = x;
    unetpp::elu_forward<float>(1.0, x, y);
    unetpp::elu_forward<float>(1.0, z, z);
    REQUIRE(std::memcmp(y.data(), z.data(), sizeof(float) * y.numel()) == 0);
}

TEST_CASE("activations give bit-identical results on 1 and 2 threads", "[activation][threads]") {
    unetpp::Rng rng(54);
    auto x = random_tensor<float>({3, 5, 67, 71}, rng);  // several parallel blocks
    auto dy = random_tensor<float>(x.shape(), rng);
    Tensor<float> out[2];
    for (int t = 0; t < 2; ++t) {
        unetpp::set_num_threads(t + 1);
        Tensor<float> y(x.shape()), dx(x.shape());
        unetpp::relu_forward<float>(x, y);
        unetpp::relu_backward<float>(y, dy, dx);
        unetpp::elu_forward<float>(1.0, x, y);
        unetpp::elu_backward<float>(1.0, y, dy, dx);
        unetpp::sigmoid_forward<float>(x, y);
        unetpp::sigmoid_backward<float>(y, dy, dx);
        out[t] = dx;
    }
    unetpp::set_num_threads(0);
    REQUIRE(std::memcmp(out[0].data(), out[1].data(), sizeof(float) * out[0].numel()) == 0);
}

TEST_CASE("activations reject mismatched shapes with a message", "[activation][errors]") {
    using Catch::Matchers::Contains;
    Tensor<float> x({2, 3}), y({3, 2});
    REQUIRE_THROWS_WITH(unetpp::relu_forward<float>(x, y),
                        Contains("expected shape [2, 3], got [3, 2]"));
    REQUIRE_THROWS_WITH(unetpp::sigmoid_backward<float>(x, x, y), Contains("dx"));
    REQUIRE_THROWS_WITH(unetpp::elu_backward<float>(1.0, x, y, x), Contains("dy"));
}
