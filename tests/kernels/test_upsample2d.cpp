// Bilinear 2x upsampling (align_corners=false): a hand table from PyTorch's formula, the separable
// fast path against the index-formula reference, finite differences, threads and errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/upsample2d.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <cstring>


// Runs a scope on one thread. Finite differences call the kernel thousands of times on tiny
// tensors; on a shared 2-core CI machine each OpenMP fork then waits on a busy partner core and
// the test crawls. Thread independence has its own test case.
namespace {
struct OneThread {
    OneThread() { unetpp::set_num_threads(1); }
    ~OneThread() { unetpp::set_num_threads(0); }
};
}  // namespace

using unetpp::Tensor;
using namespace unetpp_test;

namespace {
// Blends of at most four values in [-1, 1) with weights 1/16..9/16: a few float ulp.
constexpr double kFloatTolerance = 1e-6;
}  // namespace

TEST_CASE("upsample2d_bilinear follows PyTorch's align_corners=false weights", "[upsample2d]") {
    // x = [0 4 8] along W (H = 1): outputs sample at s = max(0, o/2 - 1/4):
    // 0, 0.25, 0.75, 1.25, 1.75, 2.5->clamped 2 => 0, 1, 3, 5, 7, 8
    Tensor<double> x({1, 1, 1, 3}), y({1, 1, 2, 6});
    x[0] = 0, x[1] = 4, x[2] = 8;
    const double want[6] = {0, 1, 3, 5, 7, 8};
    SECTION("reference") { unetpp::upsample2d_bilinear_forward_reference<double>(x, y); }
    SECTION("fast path") { unetpp::upsample2d_bilinear_forward<double>(x, y); }
    for (int row = 0; row < 2; ++row)
        for (int i = 0; i < 6; ++i) REQUIRE(y(0, 0, row, i) == Approx(want[i]).margin(1e-12));
}

TEST_CASE("upsample2d_bilinear fast path matches the reference on awkward sizes",
          "[upsample2d]") {
    unetpp::Rng rng(61);
    struct Case {
        int64_t N, C, H, W;
    };
    for (Case c : {Case{1, 1, 1, 1}, Case{2, 3, 5, 7}, Case{1, 17, 1, 33}, Case{1, 3, 33, 2},
                   Case{2, 1, 17, 17}}) {
        INFO("N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W);
        auto x = random_tensor<float>({c.N, c.C, c.H, c.W}, rng);
        Tensor<float> y({c.N, c.C, 2 * c.H, 2 * c.W}), y_ref = y;
        unetpp::upsample2d_bilinear_forward<float>(x, y);
        unetpp::upsample2d_bilinear_forward_reference<float>(x, y_ref);
        for (int64_t i = 0; i < y.numel(); ++i) {
            if (!(std::abs(y[i] - y_ref[i]) <= kFloatTolerance)) {
                FAIL("forward at " << i << ": " << y[i] << " vs " << y_ref[i]);
            }
        }
        auto dy = random_tensor<float>(y.shape(), rng);
        auto dx = random_tensor<float>(x.shape(), rng);
        Tensor<float> dx_ref = dx;
        unetpp::upsample2d_bilinear_backward<float>(dy, dx);
        unetpp::upsample2d_bilinear_backward_reference<float>(dy, dx_ref);
        for (int64_t i = 0; i < dx.numel(); ++i) {
            if (!(std::abs(dx[i] - dx_ref[i]) <= 4 * kFloatTolerance)) {
                FAIL("backward at " << i << ": " << dx[i] << " vs " << dx_ref[i]);
            }
        }
    }
}

TEST_CASE("upsample2d_bilinear backward matches finite differences and adds into dx",
          "[upsample2d][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(62);
    for (auto shape : {unetpp::Shape{1, 1, 1, 1}, unetpp::Shape{2, 3, 4, 5},
                       unetpp::Shape{1, 2, 1, 7}}) {
        INFO("x " << shape.str());
        auto x = random_tensor<double>(shape, rng);
        Tensor<double> y({shape[0], shape[1], 2 * shape[2], 2 * shape[3]});
        auto g = random_tensor<double>(y.shape(), rng);
        auto loss = [&]() {
            unetpp::upsample2d_bilinear_forward<double>(x, y);
            return weighted_sum(g, y);
        };
        auto noise = random_tensor<double>(x.shape(), rng);
        Tensor<double> dx = noise;
        unetpp::upsample2d_bilinear_backward<double>(g, dx);
        tensor_axpy(-1.0, noise, dx);
        gradient_check("dx", dx, numeric_gradient(loss, x));
    }
}

TEST_CASE("upsample2d_bilinear gives bit-identical results on 1 and 2 threads",
          "[upsample2d][threads]") {
    unetpp::Rng rng(63);
    auto x = random_tensor<float>({3, 5, 9, 13}, rng);
    auto dy = random_tensor<float>({3, 5, 18, 26}, rng);
    Tensor<float> y[2], dx[2];
    for (int t = 0; t < 2; ++t) {
        unetpp::set_num_threads(t + 1);
        y[t] = Tensor<float>(dy.shape());
        dx[t] = Tensor<float>(x.shape());
        unetpp::upsample2d_bilinear_forward<float>(x, y[t]);
        unetpp::upsample2d_bilinear_backward<float>(dy, dx[t]);
    }
    unetpp::set_num_threads(0);
    REQUIRE(std::memcmp(y[0].data(), y[1].data(), sizeof(float) * y[0].numel()) == 0);
    REQUIRE(std::memcmp(dx[0].data(), dx[1].data(), sizeof(float) * dx[0].numel()) == 0);
}

TEST_CASE("upsample2d_bilinear rejects a wrong output size with a message",
          "[upsample2d][errors]") {
    using Catch::Matchers::Contains;
    Tensor<float> x({1, 2, 3, 4}), y({1, 2, 6, 9});
    REQUIRE_THROWS_WITH(unetpp::upsample2d_bilinear_forward<float>(x, y),
                        Contains("expected shape [1, 2, 6, 8], got [1, 2, 6, 9]"));
    REQUIRE_THROWS_WITH(unetpp::upsample2d_bilinear_backward<float>(y, x), Contains("dy"));
}
