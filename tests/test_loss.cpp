// Losses on logits: binary cross-entropy, soft Dice and their weighted sum.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <unetpp/losses/combined.hpp>
#include <unetpp/parallel.hpp>

#include "support/gradcheck.hpp"

using unetpp::BceSpec;
using unetpp::CombinedLossSpec;
using unetpp::ConstTensorView;
using unetpp::DiceSpec;
using unetpp::Rng;
using unetpp::Shape;
using unetpp::Tensor;
using unetpp::TensorView;
using namespace unetpp_test;

namespace {

// Targets uniform in [0, 1]: soft labels exercise every term of the gradient.
Tensor<double> random_target(const Shape& shape, Rng& rng) {
    Tensor<double> t(shape);
    unetpp::init_uniform(t, rng, 0.0, 1.0);
    return t;
}

// Logits spread over [-3, 3] so sigmoids are neither saturated nor all near 0.5.
Tensor<double> random_logits(const Shape& shape, Rng& rng) {
    Tensor<double> z(shape);
    unetpp::init_uniform(z, rng, -3.0, 3.0);
    return z;
}

double sigmoid_ref(double z) { return 1.0 / (1.0 + std::exp(-z)); }

}  // namespace

TEST_CASE("bce of a two-pixel image equals the hand-computed cross-entropy", "[loss][bce]") {
    Tensor<double> z({1, 1, 1, 2}), t({1, 1, 1, 2}), dz({1, 1, 1, 2});
    z[0] = 0.0, z[1] = 2.0;
    t[0] = 1.0, t[1] = 0.0;
    // -log s(0) = log 2 and -log(1 - s(2)) = log(1 + e^2), averaged over 2 elements.
    const double expected = (std::log(2.0) + std::log(1.0 + std::exp(2.0))) / 2;
    double loss = unetpp::bce_loss<double>(BceSpec{}, z, t, dz);
    REQUIRE(loss == Approx(expected).epsilon(1e-14));
    REQUIRE(dz[0] == Approx((0.5 - 1.0) / 2).epsilon(1e-14));
    REQUIRE(dz[1] == Approx(sigmoid_ref(2.0) / 2).epsilon(1e-14));
}

TEST_CASE("bce weights scale each pixel's and channel's term, and the mean counts elements",
          "[loss][bce]") {
    Tensor<double> z({1, 2, 1, 1}), t({1, 2, 1, 1}), w({1, 1, 1, 1}), dz({1, 2, 1, 1});
    z[0] = 0.0, z[1] = 0.0;
    t[0] = 1.0, t[1] = 0.0;
    w[0] = 3.0;
    BceSpec spec{{1.0, 0.5}};
    // Each element costs log 2; weights 3*1 and 3*0.5; divided by 2 elements.
    double loss = unetpp::bce_loss<double>(spec, z, t, w, dz);
    REQUIRE(loss == Approx((3.0 + 1.5) * std::log(2.0) / 2).epsilon(1e-14));
    REQUIRE(dz[0] == Approx(3.0 * (0.5 - 1.0) / 2).epsilon(1e-14));
    REQUIRE(dz[1] == Approx(1.5 * 0.5 / 2).epsilon(1e-14));
}

TEST_CASE("bce gradient matches finite differences with every kind of weight",
          "[loss][bce][grad]") {
    Rng rng(11);
    const Shape shape{2, 3, 5, 7};
    Tensor<double> z = random_logits(shape, rng), t = random_target(shape, rng);
    Tensor<double> w1({2, 1, 5, 7}), w3(shape);
    unetpp::init_uniform(w1, rng, 0.0, 2.0);
    unetpp::init_uniform(w3, rng, 0.0, 2.0);
    BceSpec spec{{0.7, 1.0, 2.5}};

    SECTION("no weight map") {
        Tensor<double> dz(shape);
        fill_nan(dz);
        unetpp::bce_loss<double>(spec, z, t, dz);
        require_no_nan("bce dlogits", dz);
        auto f = [&] { return unetpp::bce_loss_value<double>(spec, z, t); };
        gradient_check("bce", dz, numeric_gradient(f, z));
    }
    SECTION("N 1 H W weight map broadcast over channels") {
        Tensor<double> dz(shape);
        unetpp::bce_loss<double>(spec, z, t, w1, dz);
        auto f = [&] { return unetpp::bce_loss_value<double>(spec, z, t, w1); };
        gradient_check("bce N1HW weights", dz, numeric_gradient(f, z));
    }
    SECTION("N C H W weight map") {
        Tensor<double> dz(shape);
        unetpp::bce_loss<double>(spec, z, t, w3, dz);
        auto f = [&] { return unetpp::bce_loss_value<double>(spec, z, t, w3); };
        gradient_check("bce NCHW weights", dz, numeric_gradient(f, z));
    }
}

TEST_CASE("dice of a two-pixel image equals the hand-computed value", "[loss][dice]") {
    Tensor<double> z({1, 1, 1, 2}), t({1, 1, 1, 2}), dz({1, 1, 1, 2});
    t[0] = 1.0;  // logits 0: p = 0.5 on both pixels
    // I = 0.5, P = 1, T = 1, eps = 1: D = (2*0.5 + 1) / (1 + 1 + 1) = 2/3.
    double loss = unetpp::dice_loss<double>(DiceSpec{}, z, t, dz);
    REQUIRE(loss == Approx(1.0 / 3).epsilon(1e-14));
    // dloss/dz = (D - 2t)/S * p(1-p) = (2/3 - 2t)/3 * 0.25
    REQUIRE(dz[0] == Approx((2.0 / 3 - 2) / 3 * 0.25).epsilon(1e-14));
    REQUIRE(dz[1] == Approx((2.0 / 3) / 3 * 0.25).epsilon(1e-14));
}

TEST_CASE("dice of an empty prediction on an empty target is zero", "[loss][dice]") {
    Tensor<double> z({1, 1, 3, 3}), t({1, 1, 3, 3});
    z.fill(-100.0);
    REQUIRE(unetpp::dice_loss_value<double>(DiceSpec{}, z, t) == Approx(0.0).margin(1e-12));
}

TEST_CASE("dice gradient matches finite differences over the batch and per image",
          "[loss][dice][grad]") {
    Rng rng(12);
    const Shape shape{3, 2, 7, 3};
    Tensor<double> z = random_logits(shape, rng), t = random_target(shape, rng);
    DiceSpec spec;
    spec.channel_weights = {1.0, 0.3};
    spec.eps = 0.5;
    for (bool per_image : {false, true}) {
        spec.per_image = per_image;
        Tensor<double> dz(shape);
        fill_nan(dz);
        unetpp::dice_loss<double>(spec, z, t, dz);
        require_no_nan("dice dlogits", dz);
        auto f = [&] { return unetpp::dice_loss_value<double>(spec, z, t); };
        gradient_check(per_image ? "dice per image" : "dice over batch", dz,
                       numeric_gradient(f, z));
    }
}

TEST_CASE("dice per image averages the per-plane losses", "[loss][dice]") {
    Rng rng(13);
    const Shape shape{2, 1, 4, 4};
    Tensor<double> z = random_logits(shape, rng), t = random_target(shape, rng);
    DiceSpec spec;
    spec.per_image = true;
    double expected = 0;
    for (int n = 0; n < 2; ++n) {
        double i_sum = 0, p_sum = 0, t_sum = 0;
        for (int k = 0; k < 16; ++k) {
            double p = sigmoid_ref(z[n * 16 + k]);
            i_sum += p * t[n * 16 + k];
            p_sum += p;
            t_sum += t[n * 16 + k];
        }
        expected += (1 - (2 * i_sum + 1) / (p_sum + t_sum + 1)) / 2;
    }
    REQUIRE(unetpp::dice_loss_value<double>(spec, z, t) == Approx(expected).epsilon(1e-13));
}

TEST_CASE("combined loss is the weighted sum of its terms, value and gradient",
          "[loss][combined][grad]") {
    Rng rng(14);
    const Shape shape{2, 2, 3, 5};
    Tensor<double> z = random_logits(shape, rng), t = random_target(shape, rng);
    Tensor<double> w({2, 1, 3, 5});
    unetpp::init_uniform(w, rng, 0.5, 1.5);
    CombinedLossSpec spec;
    spec.bce.channel_weights = {1.0, 3.0};
    spec.dice.channel_weights = {1.0, 0.0};
    spec.bce_weight = 0.6;
    spec.dice_weight = 1.7;

    Tensor<double> dz(shape), dz_bce(shape), dz_dice(shape);
    fill_nan(dz);
    auto value = unetpp::combined_loss<double>(spec, z, t, w, dz);
    double bce = unetpp::bce_loss<double>(spec.bce, z, t, w, dz_bce);
    double dice = unetpp::dice_loss<double>(spec.dice, z, t, dz_dice);
    REQUIRE(value.bce == Approx(bce).epsilon(1e-15));
    REQUIRE(value.dice == Approx(dice).epsilon(1e-15));
    REQUIRE(value.total == Approx(0.6 * bce + 1.7 * dice).epsilon(1e-15));
    for (int64_t i = 0; i < dz.numel(); ++i) {
        REQUIRE(dz[i] == Approx(0.6 * dz_bce[i] + 1.7 * dz_dice[i]).margin(1e-15));
    }
    auto f = [&] { return unetpp::combined_loss_value<double>(spec, z, t, w).total; };
    gradient_check("combined", dz, numeric_gradient(f, z));
}

TEMPLATE_TEST_CASE("logits of +-100 give a finite loss and gradient", "[loss][extreme]", float,
                   double) {
    using T = TestType;
    const Shape shape{1, 2, 2, 2};
    Tensor<T> z(shape), t(shape), dz(shape);
    for (int64_t i = 0; i < z.numel(); ++i) {
        z[i] = (i % 2) ? T(100) : T(-100);
        t[i] = (i % 3 == 0) ? T(1) : T(0);
    }
    CombinedLossSpec spec;
    auto value = unetpp::combined_loss<T>(spec, z, t, ConstTensorView<T>(), dz);
    REQUIRE(std::isfinite(value.total));
    REQUIRE(value.bce > 0);
    for (T g : dz) REQUIRE(std::isfinite(g));
    // Confident and wrong: z = 100 with t = 0 costs about 100 per element.
    Tensor<T> z1({1, 1, 1, 1}), t1({1, 1, 1, 1}), d1({1, 1, 1, 1});
    z1[0] = T(100);
    REQUIRE(unetpp::bce_loss<T>(BceSpec{}, z1, t1, d1) == Approx(100.0).epsilon(1e-6));
    REQUIRE(d1[0] == Approx(1.0));
}

TEST_CASE("losses are bit-identical for 1, 2 and 3 threads", "[loss][threads]") {
    Rng rng(15);
    const Shape shape{3, 2, 17, 33};
    Tensor<float> z(shape), t(shape), w({3, 1, 17, 33});
    unetpp::init_uniform(z, rng, -4.0, 4.0);
    unetpp::init_uniform(t, rng, 0.0, 1.0);
    unetpp::init_uniform(w, rng, 0.0, 2.0);
    CombinedLossSpec spec;
    std::vector<Tensor<float>> grads;
    std::vector<double> totals;
    for (int threads : {1, 2, 3}) {
        unetpp::set_num_threads(threads);
        Tensor<float> dz(shape);
        totals.push_back(unetpp::combined_loss<float>(spec, z, t, w, dz).total);
        grads.push_back(dz);
    }
    unetpp::set_num_threads(0);
    for (std::size_t k = 1; k < grads.size(); ++k) {
        REQUIRE(totals[k] == totals[0]);
        REQUIRE(std::memcmp(grads[k].data(), grads[0].data(), grads[0].numel() * 4) == 0);
    }
}

TEST_CASE("losses refuse mismatched shapes and bad targets, naming both shapes",
          "[loss][errors]") {
    Tensor<float> z({2, 2, 3, 3}), t({2, 2, 3, 3}), dz({2, 2, 3, 3});
    Tensor<float> t_bad({2, 1, 3, 3}), dz_bad({2, 2, 3, 4}), w_bad({2, 2, 3, 4});
    BceSpec bce;
    REQUIRE_THROWS_WITH(unetpp::bce_loss<float>(bce, z, t_bad, dz),
                        Catch::Contains("[2, 1, 3, 3]") && Catch::Contains("[2, 2, 3, 3]"));
    REQUIRE_THROWS_AS(unetpp::bce_loss<float>(bce, z, t_bad, dz), unetpp::ShapeError);
    REQUIRE_THROWS_WITH(unetpp::bce_loss<float>(bce, z, t, dz_bad),
                        Catch::Contains("dlogits") && Catch::Contains("[2, 2, 3, 4]"));
    REQUIRE_THROWS_WITH(unetpp::bce_loss<float>(bce, z, t, w_bad, dz),
                        Catch::Contains("weight map"));
    REQUIRE_THROWS_WITH(unetpp::bce_loss<float>(BceSpec{{1, 2, 3}}, z, t, dz),
                        Catch::Contains("3 channel weights") && Catch::Contains("2 output"));
    REQUIRE_THROWS_AS(unetpp::dice_loss<float>(DiceSpec{}, z, t_bad, dz), unetpp::ShapeError);
    Tensor<float> z3({2, 3, 3});
    REQUIRE_THROWS_WITH(unetpp::dice_loss_value<float>(DiceSpec{}, z3, z3),
                        Catch::Contains("rank 4"));
    t[5] = 255.0f;
    REQUIRE_THROWS_WITH(unetpp::bce_loss<float>(bce, z, t, dz),
                        Catch::Contains("255") && Catch::Contains("[0, 1]"));
    REQUIRE_THROWS_WITH(unetpp::dice_loss<float>(DiceSpec{}, z, t, dz), Catch::Contains("255"));
    t[5] = 0.0f;
    Tensor<float> strided_src({2, 4, 3, 3});
    REQUIRE_THROWS_WITH(
        unetpp::bce_loss_value<float>(bce, strided_src.channels(0, 2), t),
        Catch::Contains("contiguous"));
}
