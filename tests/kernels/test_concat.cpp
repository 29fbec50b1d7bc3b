// Channel concatenation: forward against the reference and by hand, the split backward adds into
// da and db, thread independence and shape errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/concat.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <cmath>
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

TEST_CASE("concat_channels puts a's channels before b's", "[concat]") {
    Tensor<float> a({1, 1, 1, 2}), b({1, 2, 1, 2}), y({1, 3, 1, 2});
    a[0] = 1, a[1] = 2;
    for (int i = 0; i < 4; ++i) b[i] = float(10 + i);
    unetpp::concat_channels_forward<float>(a, b, y);
    const float want[6] = {1, 2, 10, 11, 12, 13};
    for (int i = 0; i < 6; ++i) REQUIRE(y[i] == want[i]);
}

TEST_CASE("concat_channels matches the reference and its backward adds the split",
          "[concat][grad]") {
    OneThread one_thread;
    unetpp::Rng rng(31);
    struct Case {
        int64_t N, Ca, Cb, H, W;
    };
    for (Case c : {Case{1, 1, 1, 1, 1}, Case{2, 3, 17, 5, 7}, Case{2, 33, 1, 3, 2}}) {
        INFO("N=" << c.N << " Ca=" << c.Ca << " Cb=" << c.Cb << " H=" << c.H << " W=" << c.W);
        auto a = random_tensor<double>({c.N, c.Ca, c.H, c.W}, rng);
        auto b = random_tensor<double>({c.N, c.Cb, c.H, c.W}, rng);
        Tensor<double> y({c.N, c.Ca + c.Cb, c.H, c.W}), y_ref = y;
        unetpp::concat_channels_forward<double>(a, b, y);
        unetpp::concat_channels_forward_reference<double>(a, b, y_ref);
        REQUIRE(std::memcmp(y.data(), y_ref.data(), sizeof(double) * y.numel()) == 0);

        auto g = random_tensor<double>(y.shape(), rng);
        auto loss = [&]() {
            unetpp::concat_channels_forward<double>(a, b, y);
            return weighted_sum(g, y);
        };
        auto noise_a = random_tensor<double>(a.shape(), rng);
        auto noise_b = random_tensor<double>(b.shape(), rng);
        Tensor<double> da = noise_a, db = noise_b, da_ref = noise_a, db_ref = noise_b;
        unetpp::concat_channels_backward<double>(g, da, db);
        unetpp::concat_channels_backward_reference<double>(g, da_ref, db_ref);
        // GradWrite::assign: the split itself, whatever da and db held (NaN here)
        Tensor<double> da_assigned(a.shape()), db_assigned(b.shape());
        da_assigned.fill(std::nan(""));
        db_assigned.fill(std::nan(""));
        unetpp::concat_channels_backward<double>(g, da_assigned, db_assigned,
                                                 unetpp::GradWrite::assign);
        for (int64_t i = 0; i < y.numel(); ++i) {
            const int64_t n = i / (y.numel() / c.N), rest = i % (y.numel() / c.N);
            const int64_t plane = c.H * c.W, ch = rest / plane;
            const double got = ch < c.Ca ? da_assigned[(n * c.Ca + ch) * plane + rest % plane]
                                         : db_assigned[(n * c.Cb + ch - c.Ca) * plane + rest % plane];
            REQUIRE(got == g[i]);
        }
        REQUIRE(std::memcmp(da.data(), da_ref.data(), sizeof(double) * da.numel()) == 0);
        REQUIRE(std::memcmp(db.data(), db_ref.data(), sizeof(double) * db.numel()) == 0);
        tensor_axpy(-1.0, noise_a, da);
        tensor_axpy(-1.0, noise_b, db);
        gradient_check("da", da, numeric_gradient(loss, a));
        gradient_check("db", db, numeric_gradient(loss, b));
    }
}

TEST_CASE("concat_channels gives bit-identical results on 1 and 2 threads", "[concat][threads]") {
    unetpp::Rng rng(32);
    auto a = random_tensor<float>({3, 5, 7, 9}, rng);
    auto b = random_tensor<float>({3, 2, 7, 9}, rng);
    auto dy = random_tensor<float>({3, 7, 7, 9}, rng);
    Tensor<float> y[2], da[2], db[2];
    for (int t = 0; t < 2; ++t) {
        unetpp::set_num_threads(t + 1);
        y[t] = Tensor<float>(dy.shape());
        da[t] = a;
        db[t] = b;
        unetpp::concat_channels_forward<float>(a, b, y[t]);
        unetpp::concat_channels_backward<float>(dy, da[t], db[t]);
    }
    unetpp::set_num_threads(0);
    REQUIRE(std::memcmp(y[0].data(), y[1].data(), sizeof(float) * y[0].numel()) == 0);
    REQUIRE(std::memcmp(da[0].data(), da[1].data(), sizeof(float) * da[0].numel()) == 0);
    REQUIRE(std::memcmp(db[0].data(), db[1].data(), sizeof(float) * db[0].numel()) == 0);
}

TEST_CASE("concat_channels rejects mismatched shapes with a message", "[concat][errors]") {
    using Catch::Matchers::Contains;
    Tensor<float> a({2, 3, 4, 4}), y({2, 5, 4, 4});
    SECTION("spatial sizes differ") {
        Tensor<float> b({2, 2, 4, 5});
        REQUIRE_THROWS_WITH(unetpp::concat_channels_forward<float>(a, b, y),
                            Contains("must agree in N, H and W"));
    }
    SECTION("output channel count is not Ca + Cb") {
        Tensor<float> b({2, 3, 4, 4});
        REQUIRE_THROWS_WITH(unetpp::concat_channels_forward<float>(a, b, y),
                            Contains("expected shape [2, 6, 4, 4], got [2, 5, 4, 4]"));
    }
    SECTION("backward with dy of the wrong size") {
        Tensor<float> db({2, 2, 4, 4}), dy({2, 4, 4, 4});
        REQUIRE_THROWS_WITH(unetpp::concat_channels_backward<float>(dy, a, db),
                            Contains("dy (N Ca+Cb H W)"));
    }
}
