// 2x2 stride-2 max-pool: hand tables, fast path against the reference, finite differences,
// ties, odd sizes, thread independence and shape errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/maxpool2d.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>


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

// Distinct values 0.05 apart in random order: finite differences with eps = 1e-6 never change
// which element is the max, so the pool is differentiable at every drawn point.
template <class T>
Tensor<T> tie_free_tensor(const unetpp::Shape& shape, unetpp::Rng& rng) {
    Tensor<T> t(shape);
    std::vector<int64_t> order(static_cast<std::size_t>(t.numel()));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = t.numel() - 1; i > 0; --i) {
        std::swap(order[i], order[rng.below(uint64_t(i + 1))]);
    }
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = T(0.05 * double(order[i]) - 1.0);
    return t;
}

}  // namespace

TEST_CASE("maxpool2d forward picks the max of each 2x2 window and records where",
          "[maxpool2d]") {
    Tensor<float> x({1, 1, 4, 4}), y({1, 1, 2, 2});
    const float v[16] = {1, 5, 2, 0,   //
                         3, 4, 9, 8,   //
                         0, 0, 6, 7,   //
                         0, 2, 7, 6};
    std::copy(v, v + 16, x.begin());
    std::vector<int32_t> argmax;
    SECTION("fast path") { unetpp::maxpool2d_forward<float>(x, y, argmax); }
    SECTION("reference") { unetpp::maxpool2d_forward_reference<float>(x, y, argmax); }
    REQUIRE(y[0] == 5);
    REQUIRE(y[1] == 9);
    REQUIRE(y[2] == 2);
    REQUIRE(y[3] == 7);
    // flat indices h*W + w; the last window has a tie (7 at (2,3) and (3,2)): the first wins
    REQUIRE(argmax == std::vector<int32_t>{1, 6, 13, 11});
}

TEST_CASE("maxpool2d drops the last row and column of odd sizes", "[maxpool2d]") {
    // 3x5 input -> 1x2 output; the row 2 and column 4 (holding 100) are ignored (floor mode)
    Tensor<float> x({1, 1, 3, 5}), y({1, 1, 1, 2});
    for (int64_t i = 0; i < 15; ++i) x[i] = float(i % 5 == 4 || i >= 10 ? 100 : i);
    std::vector<int32_t> argmax;
    unetpp::maxpool2d_forward<float>(x, y, argmax);
    REQUIRE(y[0] == 6);
    REQUIRE(y[1] == 8);
    REQUIRE(argmax == std::vector<int32_t>{6, 8});
}

TEST_CASE("maxpool2d sends ties to the first element in row-major order", "[maxpool2d]") {
    Tensor<float> x({1, 2, 2, 2}), y({1, 2, 1, 1});
    x.fill(3.0f);
    x[5] = x[6] = x[7] = 4.0f;  // channel 1: tie between (0,1), (1,0) and (1,1)
    std::vector<int32_t> argmax, argmax_ref;
    unetpp::maxpool2d_forward<float>(x, y, argmax);
    REQUIRE(argmax == std::vector<int32_t>{0, 1});
    unetpp::maxpool2d_forward_reference<float>(x, y, argmax_ref);
    REQUIRE(argmax_ref == argmax);
}

TEST_CASE("maxpool2d fast path matches the reference on awkward sizes", "[maxpool2d]") {
    unetpp::Rng rng(21);
    struct Case {
        int64_t N, C, H, W;
    };
    for (Case c : {Case{1, 1, 2, 2}, Case{2, 3, 5, 7}, Case{1, 17, 33, 3}, Case{3, 33, 4, 9},
                   Case{1, 1, 17, 34}}) {
        INFO("N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W);
        auto x = random_tensor<float>({c.N, c.C, c.H, c.W}, rng);
        Tensor<float> y({c.N, c.C, c.H / 2, c.W / 2}), y_ref = y;
        std::vector<int32_t> argmax, argmax_ref;
        unetpp::maxpool2d_forward<float>(x, y, argmax);
        unetpp::maxpool2d_forward_reference<float>(x, y_ref, argmax_ref);
        REQUIRE(std::memcmp(y.data(), y_ref.data(), sizeof(float) * y.numel()) == 0);
        REQUIRE(argmax == argmax_ref);

        auto dy = random_tensor<float>(y.shape(), rng);
        auto dx = random_tensor<float>(x.shape(), rng);
        Tensor<float> dx_ref = dx;
        unetpp::maxpool2d_backward<float>(dy, argmax, dx);
        unetpp::maxpool2d_backward_reference<float>(dy, argmax_ref, dx_ref);
        REQUIRE(std::memcmp(dx.data(), dx_ref.data(), sizeof(float) * dx.numel()) == 0);
    }
}

TEST_CASE("maxpool2d backward matches finite differences and adds into dx",
          "[maxpool2d][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(22);
    for (auto shape : {unetpp::Shape{1, 1, 2, 2}, unetpp::Shape{2, 3, 5, 7}}) {
        INFO("x " << shape.str());
        auto x = tie_free_tensor<double>(shape, rng);
        Tensor<double> y({shape[0], shape[1], shape[2] / 2, shape[3] / 2});
        auto g = random_tensor<double>(y.shape(), rng);
        std::vector<int32_t> argmax;
        auto loss = [&]() {
            std::vector<int32_t> scratch;
            unetpp::maxpool2d_forward<double>(x, y, scratch);
            return weighted_sum(g, y);
        };
        unetpp::maxpool2d_forward<double>(x, y, argmax);
        auto noise = random_tensor<double>(x.shape(), rng);
        Tensor<double> dx = noise;
        unetpp::maxpool2d_backward<double>(g, argmax, dx);
        tensor_axpy(-1.0, noise, dx);
        gradient_check("dx", dx, numeric_gradient(loss, x));
    }
}

TEST_CASE("maxpool2d gives bit-identical results on 1 and 2 threads", "[maxpool2d][threads]") {
    unetpp::Rng rng(23);
    auto x = random_tensor<float>({3, 5, 9, 13}, rng);
    auto dy = random_tensor<float>({3, 5, 4, 6}, rng);
    Tensor<float> y[2], dx[2];
    std::vector<int32_t> argmax[2];
    for (int t = 0; t < 2; ++t) {
        unetpp::set_num_threads(t + 1);
        y[t] = Tensor<float>(dy.shape());
        dx[t] = Tensor<float>(x.shape());
        unetpp::maxpool2d_forward<float>(x, y[t], argmax[t]);
        unetpp::maxpool2d_backward<float>(dy, argmax[t], dx[t]);
    }
    unetpp::set_num_threads(0);
    REQUIRE(std::memcmp(y[0].data(), y[1].data(), sizeof(float) * y[0].numel()) == 0);
    REQUIRE(std::memcmp(dx[0].data(), dx[1].data(), sizeof(float) * dx[0].numel()) == 0);
    REQUIRE(argmax[0] == argmax[1]);
}

TEST_CASE("maxpool2d rejects bad shapes and a foreign argmax with a message",
          "[maxpool2d][errors]") {
    using Catch::Matchers::Contains;
    std::vector<int32_t> argmax;
    SECTION("output not H/2 x W/2") {
        Tensor<float> x({1, 2, 5, 6}), y({1, 2, 3, 3});
        REQUIRE_THROWS_WITH(unetpp::maxpool2d_forward<float>(x, y, argmax),
                            Contains("expected shape [1, 2, 2, 3], got [1, 2, 3, 3]"));
    }
    SECTION("input smaller than the window") {
        Tensor<float> x({1, 2, 1, 6}), y({1, 2, 0, 3});
        REQUIRE_THROWS_WITH(unetpp::maxpool2d_forward<float>(x, y, argmax),
                            Contains("smaller than the 2x2 window"));
    }
    SECTION("argmax of another size") {
        Tensor<float> dy({1, 2, 2, 3}), dx({1, 2, 4, 6});
        argmax.assign(5, 0);
        REQUIRE_THROWS_WITH(unetpp::maxpool2d_backward<float>(dy, argmax, dx),
                            Contains("argmax has 5 entries, dy has 12"));
    }
    SECTION("argmax pointing outside the plane") {
        Tensor<float> dy({1, 1, 1, 1}), dx({1, 1, 2, 2});
        argmax.assign(1, 4);
        REQUIRE_THROWS_WITH(unetpp::maxpool2d_backward<float>(dy, argmax, dx),
                            Contains("lies outside the 2x2 input plane"));
    }
}
