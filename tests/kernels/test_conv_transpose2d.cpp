// 2x2 stride-2 transposed convolution: fast path against the scalar reference and a hand table,
// backward passes against central differences, the gradient contract, thread independence and
// shape errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/conv_transpose2d.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <cstring>
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

using unetpp::ConvTranspose2dSpec;
using unetpp::Shape;
using unetpp::Tensor;
using namespace unetpp_test;

namespace {

// Float sums of up to 4*33 products of values in [-1, 1): a reordered sum differs by a few ulp
// of the magnitude (about 10), so 2e-5 absolute leaves room without hiding a wrong index.
constexpr float kFloatTolerance = 2e-5f;
// Double fast path against the double reference: only summation order differs.
constexpr double kDoubleTolerance = 1e-12;

struct Case {
    int64_t N, C, K, H, W;
};
// Awkward sizes: ones, odd primes and a size past one SIMD width and one GEMM strip. The fast
// path groups small images into one work unit ({3,17,33,4,3}: all three; {5,3,33,10,10}: units of
// 2, 2 and 1 image) and cuts large ones into bands of rows ({2,3,33,17,17}: rows 0-14, 15-16).
const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1},   {2, 3, 1, 5, 7},  {1, 1, 3, 3, 1},    {3, 17, 33, 4, 3},
    {2, 33, 17, 7, 5}, {1, 3, 7, 9, 17}, {2, 3, 33, 17, 17}, {5, 3, 33, 10, 10},
};

std::string describe(const Case& c) {
    return unetpp::detail::concat("N=", c.N, " C=", c.C, " K=", c.K, " H=", c.H, " W=", c.W);
}

template <class T>
void require_close(const Tensor<T>& got, const Tensor<T>& want, double tol) {
    REQUIRE(got.shape() == want.shape());
    for (int64_t i = 0; i < got.numel(); ++i) {
        if (!(std::abs(double(got[i]) - double(want[i])) <= tol)) {
            FAIL("first mismatch at flat index " << i << " of " << got.shape().str() << ": got "
                                                 << got[i] << ", want " << want[i]);
        }
    }
}

template <class T>
bool bit_identical(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * a.numel()) == 0;
}

}  // namespace

TEST_CASE("conv_transpose2d reference matches a hand-computed 1x2 example",
          "[conv_transpose2d][reference]") {
    // x = [1 2] (C=1, 1x2), w = [[1 2] [3 4]] (C=K=1), b = 0.5:
    // each x[j] stamps x[j] * w into the 2x2 block at columns 2j, 2j+1.
    Tensor<double> x({1, 1, 1, 2}), w({1, 1, 2, 2}), y({1, 1, 2, 4});
    x[0] = 1, x[1] = 2;
    w[0] = 1, w[1] = 2, w[2] = 3, w[3] = 4;
    const double bias = 0.5;
    const double want[8] = {1.5, 2.5, 2.5, 4.5, 3.5, 4.5, 6.5, 8.5};
    SECTION("reference") {
        unetpp::conv_transpose2d_forward_reference<double>({1, 1}, x, w, &bias, y);
        for (int i = 0; i < 8; ++i) REQUIRE(y[i] == want[i]);
    }
    SECTION("fast path") {
        unetpp::conv_transpose2d_forward<double>({1, 1}, x, w, &bias, y);
        for (int i = 0; i < 8; ++i) REQUIRE(y[i] == want[i]);
    }
}

TEST_CASE("conv_transpose2d fast path matches the reference on awkward sizes",
          "[conv_transpose2d]") {
    unetpp::Rng rng(11);
    for (const Case& c : kCases) {
        INFO(describe(c));
        const ConvTranspose2dSpec spec{c.C, c.K};
        auto x = random_tensor<float>({c.N, c.C, c.H, c.W}, rng);
        auto w = random_tensor<float>({c.C, c.K, 2, 2}, rng);
        auto b = random_tensor<float>({c.K}, rng);
        auto dy = random_tensor<float>({c.N, c.K, 2 * c.H, 2 * c.W}, rng);

        Tensor<float> y({c.N, c.K, 2 * c.H, 2 * c.W}), y_ref = y;
        unetpp::conv_transpose2d_forward<float>(spec, x, w, b.data(), y);
        unetpp::conv_transpose2d_forward_reference<float>(spec, x, w, b.data(), y_ref);
        require_close(y, y_ref, kFloatTolerance);

        auto dx = random_tensor<float>(x.shape(), rng);
        Tensor<float> dx_ref = dx;
        unetpp::conv_transpose2d_backward_data<float>(spec, dy, w, dx);
        unetpp::conv_transpose2d_backward_data_reference<float>(spec, dy, w, dx_ref);
        require_close(dx, dx_ref, kFloatTolerance);

        Tensor<float> dw(w.shape()), dw_ref(w.shape()), db({c.K}), db_ref({c.K});
        unetpp::conv_transpose2d_backward_weight<float>(spec, x, dy, dw, db.data());
        unetpp::conv_transpose2d_backward_weight_reference<float>(spec, x, dy, dw_ref,
                                                                  db_ref.data());
        // dW sums N*H*W products, up to 3*7*5 here: scale the tolerance with it.
        require_close(dw, dw_ref, kFloatTolerance * double(c.N * c.H * c.W));
        require_close(db, db_ref, kFloatTolerance * double(c.N * c.H * c.W));
    }
}

TEST_CASE("conv_transpose2d double fast path matches the double reference",
          "[conv_transpose2d]") {
    unetpp::Rng rng(12);
    const Case c{2, 17, 3, 5, 7};
    const ConvTranspose2dSpec spec{c.C, c.K};
    auto x = random_tensor<double>({c.N, c.C, c.H, c.W}, rng);
    auto w = random_tensor<double>({c.C, c.K, 2, 2}, rng);
    Tensor<double> y({c.N, c.K, 2 * c.H, 2 * c.W}), y_ref = y;
    unetpp::conv_transpose2d_forward<double>(spec, x, w, nullptr, y);
    unetpp::conv_transpose2d_forward_reference<double>(spec, x, w, nullptr, y_ref);
    require_close(y, y_ref, kDoubleTolerance);
}

TEST_CASE("conv_transpose2d backward matches finite differences", "[conv_transpose2d][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(13);
    for (const Case& c : {Case{1, 1, 1, 1, 1}, Case{2, 3, 2, 3, 5}, Case{1, 5, 3, 2, 3}}) {
        INFO(describe(c));
        const ConvTranspose2dSpec spec{c.C, c.K};
        auto x = random_tensor<double>({c.N, c.C, c.H, c.W}, rng);
        auto w = random_tensor<double>({c.C, c.K, 2, 2}, rng);
        auto b = random_tensor<double>({c.K}, rng);
        auto g = random_tensor<double>({c.N, c.K, 2 * c.H, 2 * c.W}, rng);
        Tensor<double> y(g.shape());
        auto loss = [&]() {
            unetpp::conv_transpose2d_forward<double>(spec, x, w, b.data(), y);
            return weighted_sum(g, y);
        };

        // input gradient, added onto noise
        auto noise = random_tensor<double>(x.shape(), rng);
        Tensor<double> dx = noise;
        unetpp::conv_transpose2d_backward_data<double>(spec, g, w, dx);
        tensor_axpy(-1.0, noise, dx);
        gradient_check("dx", dx, numeric_gradient(loss, x));

        // weight and bias gradients, assigned over NaN
        Tensor<double> dw(w.shape()), db(b.shape());
        fill_nan(dw);
        fill_nan(db);
        unetpp::conv_transpose2d_backward_weight<double>(spec, x, g, dw, db.data());
        require_no_nan("dweight", dw);
        require_no_nan("dbias", db);
        gradient_check("dweight", dw, numeric_gradient(loss, w));
        gradient_check("dbias", db, numeric_gradient(loss, b));
    }
}

TEST_CASE("conv_transpose2d backward_weight accepts a null dbias", "[conv_transpose2d]") {
    unetpp::Rng rng(14);
    auto x = random_tensor<float>({2, 3, 4, 4}, rng);
    auto dy = random_tensor<float>({2, 5, 8, 8}, rng);
    Tensor<float> dw({3, 5, 2, 2});
    fill_nan(dw);
    unetpp::conv_transpose2d_backward_weight<float>({3, 5}, x, dy, dw, nullptr);
    require_no_nan("dweight", dw);
}

TEST_CASE("conv_transpose2d gives bit-identical results on 1 and 2 threads",
          "[conv_transpose2d][threads]") {
    unetpp::Rng rng(15);
    // N=1: one unit, split inside the GEMM; N=3: three images in one unit;
    // N=7 on 33x41: bands of 22 and 11 rows spread over the threads.
    for (int64_t N : {1, 3, 7}) {
        INFO("N=" << N);
        const ConvTranspose2dSpec spec{17, 9};
        const int64_t side = N == 7 ? 33 : 9;
        const int64_t width = N == 7 ? 41 : 13;
        auto x = random_tensor<float>({N, 17, side, width}, rng);
        auto w = random_tensor<float>({17, 9, 2, 2}, rng);
        auto b = random_tensor<float>({9}, rng);
        auto dy = random_tensor<float>({N, 9, 2 * side, 2 * width}, rng);
        Tensor<float> y[2], dx[2], dw[2], db[2];
        for (int t = 0; t < 2; ++t) {
            unetpp::set_num_threads(t + 1);
            y[t] = Tensor<float>(dy.shape());
            dx[t] = Tensor<float>(x.shape());
            dw[t] = Tensor<float>(w.shape());
            db[t] = Tensor<float>(b.shape());
            unetpp::conv_transpose2d_forward<float>(spec, x, w, b.data(), y[t]);
            unetpp::conv_transpose2d_backward_data<float>(spec, dy, w, dx[t]);
            unetpp::conv_transpose2d_backward_weight<float>(spec, x, dy, dw[t], db[t].data());
        }
        unetpp::set_num_threads(0);
        REQUIRE(bit_identical(y[0], y[1]));
        REQUIRE(bit_identical(dx[0], dx[1]));
        REQUIRE(bit_identical(dw[0], dw[1]));
        REQUIRE(bit_identical(db[0], db[1]));
    }
}

TEST_CASE("conv_transpose2d rejects mismatched shapes with a message",
          "[conv_transpose2d][errors]") {
    Tensor<float> x({2, 3, 4, 5}), w({3, 6, 2, 2}), y({2, 6, 8, 10});
    const ConvTranspose2dSpec spec{3, 6};
    using Catch::Matchers::Contains;

    SECTION("input channels differ from the spec") {
        Tensor<float> x4({2, 4, 4, 5});
        REQUIRE_THROWS_WITH(unetpp::conv_transpose2d_forward<float>(spec, x4, w, nullptr, y),
                            Contains("x has 4 channels, spec expects C=3"));
    }
    SECTION("weight is K C 2 2 instead of C K 2 2") {
        Tensor<float> wt({6, 3, 2, 2});
        REQUIRE_THROWS_WITH(unetpp::conv_transpose2d_forward<float>(spec, x, wt, nullptr, y),
                            Contains("expected shape [3, 6, 2, 2], got [6, 3, 2, 2]"));
    }
    SECTION("output is not 2H x 2W") {
        Tensor<float> y_bad({2, 6, 8, 9});
        REQUIRE_THROWS_WITH(unetpp::conv_transpose2d_forward<float>(spec, x, w, nullptr, y_bad),
                            Contains("expected shape [2, 6, 8, 10], got [2, 6, 8, 9]"));
    }
    SECTION("backward data names dx") {
        Tensor<float> dx({2, 3, 4, 4});
        REQUIRE_THROWS_WITH(unetpp::conv_transpose2d_backward_data<float>(spec, y, w, dx),
                            Contains("dy (N K 2H 2W)"));
    }
    SECTION("a strided view is refused") {
        Tensor<float> x_big({2, 5, 4, 5});
        REQUIRE_THROWS_WITH(unetpp::conv_transpose2d_forward<float>(
                                spec, x_big.channels(1, 3), w, nullptr, y),
                            Contains("needs a contiguous tensor"));
    }
    SECTION("non-positive spec") {
        REQUIRE_THROWS_AS(unetpp::conv_transpose2d_forward<float>({0, 6}, x, w, nullptr, y),
                          unetpp::ShapeError);
    }
}
