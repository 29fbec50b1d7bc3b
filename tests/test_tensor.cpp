// Tensor shapes, views, copies, errors and random initialisers.
#include <catch2/catch.hpp>

#include <cmath>
#include <unetpp/random.hpp>
#include <unetpp/tensor.hpp>

using unetpp::Shape;
using unetpp::Tensor;

TEST_CASE("tensor storage is zeroed, 64-byte aligned and sized by its shape", "[tensor]") {
    Tensor<float> x({2, 3, 5, 7});
    REQUIRE(x.numel() == 210);
    REQUIRE(x.n() == 2);
    REQUIRE(x.c() == 3);
    REQUIRE(x.h() == 5);
    REQUIRE(x.w() == 7);
    REQUIRE(reinterpret_cast<uintptr_t>(x.data()) % 64 == 0);
    for (float v : x) REQUIRE(v == 0.0f);
}

TEST_CASE("tensor element (n,c,h,w) lies at the row-major NCHW offset", "[tensor]") {
    Tensor<double> x({2, 3, 4, 5});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = double(i);
    REQUIRE(x(1, 2, 3, 4) == 1 * 60 + 2 * 20 + 3 * 5 + 4);
    REQUIRE(x.at({0, 1, 2, 3}) == 20 + 10 + 3);
    REQUIRE_THROWS_AS(x.at({2, 0, 0, 0}), unetpp::ShapeError);
    REQUIRE_THROWS_AS(x.at({0, 0, 0}), unetpp::ShapeError);
}

TEST_CASE("batch and channel views borrow the right elements", "[tensor][view]") {
    Tensor<float> x({2, 4, 2, 3});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
    auto item = x.batch(1);
    REQUIRE(item.shape() == Shape{1, 4, 2, 3});
    REQUIRE(item.is_contiguous());
    REQUIRE(item(0, 0, 0, 0) == 24.0f);

    auto ch = x.channels(1, 2);
    REQUIRE(ch.shape() == Shape{2, 2, 2, 3});
    REQUIRE_FALSE(ch.is_contiguous());
    REQUIRE(ch(1, 1, 1, 2) == x(1, 2, 1, 2));

    Tensor<float> copy(ch.shape());
    copy.copy_from(ch);
    REQUIRE(copy(1, 0, 0, 0) == x(1, 1, 0, 0));
    REQUIRE(copy(0, 1, 1, 1) == x(0, 2, 1, 1));
}

TEST_CASE("out-of-range views and mismatched shapes are refused with both shapes named",
          "[tensor][errors]") {
    Tensor<float> x({2, 4, 2, 3});
    REQUIRE_THROWS_WITH(x.channels(3, 2), Catch::Contains("[2, 4, 2, 3]"));
    REQUIRE_THROWS_AS(x.batch(2), unetpp::ShapeError);
    Tensor<float> y({2, 4, 2, 2});
    REQUIRE_THROWS_WITH(unetpp::tensor_copy<float>(x.view(), y.view()),
                        Catch::Contains("[2, 4, 2, 2]") && Catch::Contains("[2, 4, 2, 3]"));
    REQUIRE_THROWS_AS(x.reshape(Shape{5, 5}), unetpp::ShapeError);
    REQUIRE_THROWS_AS(Shape({1, 2, 3, 4, 5}), unetpp::ShapeError);
    REQUIRE_THROWS_AS(Shape({1, -2}), unetpp::ShapeError);
}

TEST_CASE("an impossible allocation throws instead of crashing", "[tensor][errors]") {
    REQUIRE_THROWS_WITH(Tensor<float>({1 << 20, 1 << 20, 1 << 20, 16}),
                        Catch::Contains("too large"));
}

TEST_CASE("resize keeps capacity and zero-fills on a shape change", "[tensor]") {
    Tensor<float> x({4, 4});
    x.fill(3.0f);
    float* before = x.data();
    x.resize(Shape{2, 4});
    REQUIRE(x.data() == before);
    for (float v : x) REQUIRE(v == 0.0f);
}

TEST_CASE("copies are deep and moves are cheap", "[tensor]") {
    Tensor<float> a({3});
    a.fill(2.0f);
    Tensor<float> b = a;
    b[0] = 5.0f;
    REQUIRE(a[0] == 2.0f);
    float* p = b.data();
    Tensor<float> c = std::move(b);
    REQUIRE(c.data() == p);
}

TEST_CASE("seeded random init is deterministic and has the requested spread", "[tensor][random]") {
    unetpp::Rng r1(42), r2(42), r3(43);
    Tensor<float> a({64, 64, 3, 3}), b({64, 64, 3, 3}), c({64, 64, 3, 3});
    unetpp::init_he_normal(a, r1, 64 * 9);
    unetpp::init_he_normal(b, r2, 64 * 9);
    unetpp::init_he_normal(c, r3, 64 * 9);
    REQUIRE(unetpp::tensor_max_abs_diff(a, b) == 0.0f);
    REQUIRE(unetpp::tensor_max_abs_diff(a, c) > 0.0f);

    double mean = 0, sq = 0;
    for (float v : a) {
        mean += v;
        sq += double(v) * v;
    }
    mean /= a.numel();
    double stddev = std::sqrt(sq / a.numel() - mean * mean);
    // 36864 samples: the sample stddev is within 2% of the true one with overwhelming odds.
    REQUIRE(std::abs(stddev - std::sqrt(2.0 / 576)) < 0.02 * std::sqrt(2.0 / 576));
    REQUIRE(std::abs(mean) < 0.002);

    Tensor<double> g({1000});
    unetpp::init_glorot_uniform(g, r1, 30, 20);
    double limit = std::sqrt(6.0 / 50);
    for (double v : g) REQUIRE(std::abs(v) <= limit);
}
