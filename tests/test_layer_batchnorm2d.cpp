// BatchNorm2d layer: gradients through the batch statistics (training) and with fixed running
// statistics (inference formula), running-statistics update, inference output.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <unetpp/layers/batchnorm2d.hpp>

#include "support/layer_check.hpp"

using unetpp::BatchNorm2dSpec;
using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

namespace {
// Non-trivial gamma and beta so that the checks see their effect.
void randomize_affine(unetpp::BatchNorm2d<double>& bn, unetpp::Rng& rng) {
    unetpp::init_uniform(bn.weight().value, rng, 0.5, 1.5);
    unetpp::init_uniform(bn.bias().value, rng, -0.5, 0.5);
}
}  // namespace

TEST_CASE("batchnorm2d training backward through batch statistics matches finite differences",
          "[batchnorm2d][grad]") {
    unetpp::BatchNorm2d<double> bn("enc1.bn1", BatchNorm2dSpec{3});
    unetpp::Rng rng(1);
    randomize_affine(bn, rng);
    unetpp_test::check_layer("batchnorm2d train", bn, Shape{2, 3, 5, 7});
    unetpp_test::check_layer("batchnorm2d train N=1", bn, Shape{1, 3, 3, 1});
}

TEST_CASE("batchnorm2d backward with GradWrite::assign gives the values it adds to zero",
          "[batchnorm2d]") {
    unetpp::Rng rng(3);
    const Shape shape{2, 3, 9, 7};  // 63 pixels a plane: vector blocks and a tail
    for (int stats = 0; stats < 2; ++stats) {
        for (int relu = 0; relu < 2; ++relu) {
            INFO("running stats " << stats << ", fused relu " << relu);
            BatchNorm2dSpec spec{3};
            spec.use_running_stats = stats == 1;
            unetpp::BatchNorm2d<float> bn("bn", spec);
            Tensor<float> x = unetpp_test::random_tensor<float>(shape, rng), y(shape);
            Tensor<float> dy = unetpp_test::random_tensor<float>(shape, rng);
            Tensor<float> added(shape), assigned(shape);
            assigned.fill(std::nanf(""));
            bn.forward(x.view(), y.view(), Mode::train, relu == 1);
            bn.backward(dy.view(), added.view());
            bn.backward(dy.view(), assigned.view(), unetpp::GradWrite::assign);
            for (int64_t i = 0; i < added.numel(); ++i) REQUIRE(assigned[i] == added[i]);
        }
    }
}

TEST_CASE("batchnorm2d float backward (SIMD loops) matches the double one (scalar loops)",
          "[batchnorm2d]") {
    // Float takes the vector loops of simd/batchnorm_*.hpp where the build has them; double
    // always the portable ones, which the finite-difference checks above cover. Planes of 63
    // and 100 pixels: 16-float blocks, 8-float blocks and a tail.
    // Float rounding of the forward's output and of the inputs gives ~1e-6 relative error;
    // 2e-4 leaves room for the cancellation in M g - dbeta - h dgamma.
    constexpr double kTolerance = 2e-4;
    unetpp::Rng rng(5);
    for (const Shape shape : {Shape{2, 3, 9, 7}, Shape{1, 2, 5, 20}}) {
        for (int stats = 0; stats < 2; ++stats) {
            for (int relu = 0; relu < 2; ++relu) {
                INFO("shape " << shape.str() << ", running stats " << stats << ", fused relu "
                              << relu);
                BatchNorm2dSpec spec{shape[1]};
                spec.use_running_stats = stats == 1;
                unetpp::BatchNorm2d<float> bn_f("bn", spec);
                unetpp::BatchNorm2d<double> bn_d("bn", spec);
                randomize_affine(bn_d, rng);
                unetpp::init_uniform(bn_d.running_mean().value, rng, -0.3, 0.3);
                unetpp::init_uniform(bn_d.running_var().value, rng, 0.5, 2.0);
                auto copy = [](const Tensor<double>& from, Tensor<float>& to) {
                    for (int64_t i = 0; i < from.numel(); ++i) to[i] = float(from[i]);
                };
                copy(bn_d.weight().value, bn_f.weight().value);
                copy(bn_d.bias().value, bn_f.bias().value);
                copy(bn_d.running_mean().value, bn_f.running_mean().value);
                copy(bn_d.running_var().value, bn_f.running_var().value);
                Tensor<double> x_d = unetpp_test::random_tensor<double>(shape, rng);
                Tensor<double> dy_d = unetpp_test::random_tensor<double>(shape, rng);
                Tensor<float> x_f(shape), dy_f(shape), y_f(shape), dx_f(shape);
                for (int64_t i = 0; i < x_d.numel(); ++i) {  // the same values in both types
                    x_f[i] = float(x_d[i]);
                    x_d[i] = x_f[i];
                    dy_f[i] = float(dy_d[i]);
                    dy_d[i] = dy_f[i];
                }
                Tensor<double> y_d(shape), dx_d(shape);
                bn_f.forward(x_f.view(), y_f.view(), Mode::train, relu == 1);
                bn_d.forward(x_d.view(), y_d.view(), Mode::train, relu == 1);
                bn_f.backward(dy_f.view(), dx_f.view(), unetpp::GradWrite::assign);
                bn_d.backward(dy_d.view(), dx_d.view(), unetpp::GradWrite::assign);
                auto require_close = [&](const char* what, const Tensor<float>& got,
                                         const Tensor<double>& want) {
                    for (int64_t i = 0; i < got.numel(); ++i) {
                        INFO(what << " at " << i << ": " << got[i] << " vs " << want[i]);
                        REQUIRE(std::abs(got[i] - want[i]) <=
                                kTolerance * std::max(1.0, std::abs(want[i])));
                    }
                };
                require_close("dx", dx_f, dx_d);
                require_close("dgamma", bn_f.weight().grad, bn_d.weight().grad);
                require_close("dbeta", bn_f.bias().grad, bn_d.bias().grad);
            }
        }
    }
}

TEST_CASE("batchnorm2d with running statistics (inference formula) matches finite differences",
          "[batchnorm2d][grad]") {
    BatchNorm2dSpec spec{4};
    spec.use_running_stats = true;
    unetpp::BatchNorm2d<double> bn("dec2.bn2", spec);
    unetpp::Rng rng(2);
    randomize_affine(bn, rng);
    unetpp::init_uniform(bn.running_mean().value, rng, -0.3, 0.3);
    unetpp::init_uniform(bn.running_var().value, rng, 0.5, 2.0);
    unetpp_test::check_layer("batchnorm2d frozen stats", bn, Shape{2, 4, 3, 5});
    // the running statistics stay put when they are used
    REQUIRE(bn.running_var().value[0] >= 0.5);

    // and Mode::infer gives the same output as the frozen-statistics training forward
    Tensor<double> x = unetpp_test::random_tensor<double>(Shape{2, 4, 3, 5}, rng);
    Tensor<double> y_train(x.shape()), y_infer(x.shape());
    bn.forward(x.view(), y_train.view(), Mode::train);
    bn.spec().use_running_stats = false;
    bn.forward(x.view(), y_infer.view(), Mode::infer);
    REQUIRE(unetpp::tensor_max_abs_diff(y_train, y_infer) == 0.0);
}

TEST_CASE("batchnorm2d normalises per channel and updates running statistics with momentum",
          "[batchnorm2d]") {
    // channel 0 holds 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3)
    Tensor<double> x({2, 1, 1, 2}), y(x.shape());
    for (int i = 0; i < 4; ++i) x[i] = i + 1;
    BatchNorm2dSpec spec{1};
    spec.momentum = 0.1;
    unetpp::BatchNorm2d<double> bn("bn", spec);
    bn.forward(x.view(), y.view(), Mode::train);
    const double rstd = 1 / std::sqrt(1.25 + spec.eps);
    for (int i = 0; i < 4; ++i) REQUIRE(y[i] == Approx((i + 1 - 2.5) * rstd));
    REQUIRE(bn.running_mean().value[0] == Approx(0.9 * 0 + 0.1 * 2.5));
    REQUIRE(bn.running_var().value[0] == Approx(0.9 * 1 + 0.1 * 5.0 / 3.0));

    // running statistics are non-trainable parameters with readable names
    auto params = bn.parameters();
    REQUIRE(params.size() == 4);
    REQUIRE(params[2]->name == "bn.running_mean");
    REQUIRE_FALSE(params[2]->trainable);
    REQUIRE(unetpp::parameter_count(params) == 2);
}

TEST_CASE("batchnorm2d refuses a wrong channel count, naming the layer", "[batchnorm2d][errors]") {
    unetpp::BatchNorm2d<float> bn("enc2.bn1", BatchNorm2dSpec{8});
    Tensor<float> x({1, 4, 3, 3}), y({1, 4, 3, 3});
    REQUIRE_THROWS_WITH(bn.forward(x.view(), y.view(), Mode::train),
                        Catch::Contains("enc2.bn1") && Catch::Contains("8 channels"));
}
