// Per-channel bias: forward against the reference, backward against finite differences (it must
// assign), thread independence and errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/bias.hpp>
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
// Float sums of up to 2*33*17 = 1122 values in [-1, 1) against the exact (double) sum. The
// portable build sums sequentially, so rounding grows up to about n * eps * |partial sum|
// (1122 * 6e-8 * 30 = 2e-3); a wrong index would be off by O(1).
constexpr double kSumTolerance = 3e-3;
}

TEST_CASE("bias_add_forward adds b[k] to channel k and matches the reference", "[bias]") {
    unetpp::Rng rng(41);
    for (auto shape : {unetpp::Shape{1, 1, 1, 1}, unetpp::Shape{2, 3, 5, 7},
                       unetpp::Shape{2, 17, 33, 17}}) {
        INFO("y " << shape.str());
        auto y = random_tensor<float>(shape, rng);
        auto b = random_tensor<float>({shape[1]}, rng);
        Tensor<float> y_ref = y, y0 = y;
        unetpp::bias_add_forward<float>(b.data(), y);
        unetpp::bias_add_forward_reference<float>(b.data(), y_ref);
        REQUIRE(std::memcmp(y.data(), y_ref.data(), sizeof(float) * y.numel()) == 0);
        REQUIRE(y(0, shape[1] - 1, 0, 0) == y0(0, shape[1] - 1, 0, 0) + b[shape[1] - 1]);

        Tensor<float> db({shape[1]});
        Tensor<double> db_ref({shape[1]});
        fill_nan(db);
        unetpp::bias_backward<float>(y, db.data());
        unetpp::bias_backward_reference<double>(unetpp::tensor_cast<double>(y), db_ref.data());
        for (int64_t k = 0; k < shape[1]; ++k) {
            INFO("k=" << k);
            REQUIRE(std::abs(double(db[k]) - db_ref[k]) < kSumTolerance);
        }
    }
}

TEST_CASE("bias_backward matches finite differences and assigns dbias", "[bias][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(42);
    auto y0 = random_tensor<double>({2, 3, 5, 7}, rng);
    auto b = random_tensor<double>({3}, rng);
    auto g = random_tensor<double>(y0.shape(), rng);
    Tensor<double> y;
    auto loss = [&]() {
        y = y0;
        unetpp::bias_add_forward<double>(b.data(), y);
        return weighted_sum(g, y);
    };
    Tensor<double> db({3});
    fill_nan(db);
    unetpp::bias_backward<double>(g, db.data());
    require_no_nan("dbias", db);
    gradient_check("dbias", db, numeric_gradient(loss, b));
}

TEST_CASE("bias kernels give bit-identical results on 1 and 2 threads", "[bias][threads]") {
    unetpp::Rng rng(43);
    auto y0 = random_tensor<float>({3, 9, 11, 13}, rng);
    auto b = random_tensor<float>({9}, rng);
    Tensor<float> y[2], db[2];
    for (int t = 0; t < 2; ++t) {
        unetpp::set_num_threads(t + 1);
        y[t] = y0;
        db[t] = Tensor<float>({9});
        unetpp::bias_add_forward<float>(b.data(), y[t]);
        unetpp::bias_backward<float>(y0, db[t].data());
    }
    unetpp::set_num_threads(0);
    REQUIRE(std::memcmp(y[0].data(), y[1].data(), sizeof(float) * y[0].numel()) == 0);
    REQUIRE(std::memcmp(db[0].data(), db[1].data(), sizeof(float) * 9) == 0);
}

TEST_CASE("bias kernels reject a rank-2 tensor and a null bias", "[bias][errors]") {
    using Catch::Matchers::Contains;
    Tensor<float> y2({3, 4}), y({1, 3, 2, 2});
    float b[3] = {};
    REQUIRE_THROWS_WITH(unetpp::bias_add_forward<float>(b, y2), Contains("rank 4"));
    REQUIRE_THROWS_WITH(unetpp::bias_add_forward<float>(nullptr, y), Contains("bias is nullptr"));
    REQUIRE_THROWS_WITH(unetpp::bias_backward<float>(y, nullptr), Contains("dbias is nullptr"));
}
