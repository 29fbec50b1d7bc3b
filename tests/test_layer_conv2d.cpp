// Conv2d and ConvTranspose2d layers: gradients by central differences on input, weight and bias,
// the gradient contract, frozen layers, parameter names, error messages, and the inference
// forward with a batch norm folded into the weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <unetpp/kernels/activation.hpp>
#include <unetpp/layers/batchnorm2d.hpp>
#include <unetpp/layers/conv2d.hpp>
#include <unetpp/layers/conv_transpose2d.hpp>
#include <utility>
#include <vector>

#include "support/layer_check.hpp"

using unetpp::Conv2dSpec;
using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

TEST_CASE("conv2d layer backward matches finite differences on input, weight and bias",
          "[conv2d][grad]") {
    unetpp::Rng rng(4);
    SECTION("3x3 pad 1, the U-Net's convolution") {
        unetpp::Conv2d<double> conv("enc1.conv1", Conv2dSpec{3, 4, 3, 3, 1, 1});
        conv.init(rng);
        unetpp_test::check_layer("conv2d 3x3", conv, Shape{2, 3, 7, 5});
    }
    SECTION("1x1 pad 0, the U-Net's head") {
        unetpp::Conv2d<double> conv("head", Conv2dSpec{5, 1, 1, 1, 1, 0});
        conv.init(rng);
        unetpp_test::check_layer("conv2d 1x1", conv, Shape{3, 5, 3, 1});
    }
    SECTION("3x3 stride 2, no bias") {
        unetpp::Conv2d<double> conv("c", Conv2dSpec{2, 3, 3, 3, 2, 1}, false);
        conv.init(rng);
        REQUIRE(conv.parameters().size() == 1);
        unetpp_test::check_layer("conv2d stride 2", conv, Shape{1, 2, 7, 6});
    }
}

TEST_CASE("conv_transpose2d layer backward matches finite differences",
          "[conv_transpose2d][grad]") {
    unetpp::Rng rng(8);
    unetpp::ConvTranspose2d<double> up("dec3.up", unetpp::ConvTranspose2dSpec{4, 3});
    up.init(rng);
    REQUIRE(up.output_shape(Shape{2, 4, 3, 5}) == Shape{2, 3, 6, 10});
    unetpp_test::check_layer("conv_transpose2d", up, Shape{2, 4, 3, 5});
    REQUIRE(up.parameters()[0]->name == "dec3.up.weight");
    REQUIRE(up.parameters()[0]->value.shape() == Shape{4, 3, 2, 2});
}

TEST_CASE("a frozen conv2d leaves its gradients untouched but still passes dx",
          "[conv2d][frozen]") {
    unetpp::Rng rng(2);
    unetpp::Conv2d<double> conv("enc1.conv1", Conv2dSpec{2, 3});
    conv.init(rng);
    conv.set_frozen(true);
    Tensor<double> x = unetpp_test::random_tensor<double>(Shape{1, 2, 5, 5}, rng);
    Tensor<double> y({1, 3, 5, 5}), dx(x.shape());
    Tensor<double> dy = unetpp_test::random_tensor<double>(y.shape(), rng);
    conv.weight().grad.fill(7.0);
    conv.forward(x.view(), y.view(), Mode::train);
    conv.backward(dy.view(), dx.view());
    for (double v : conv.weight().grad) REQUIRE(v == 7.0);
    double norm = 0;
    for (double v : dx) norm += std::abs(v);
    REQUIRE(norm > 0);
}

TEST_CASE("conv2d names its parameters from its prefix and its errors after itself",
          "[conv2d][errors]") {
    unetpp::Conv2d<float> conv("enc3.conv1", Conv2dSpec{64, 64});
    auto params = conv.parameters();
    REQUIRE(params.size() == 2);
    REQUIRE(params[0]->name == "enc3.conv1.weight");
    REQUIRE(params[1]->name == "enc3.conv1.bias");
    REQUIRE(unetpp::parameter_count(params) == 64 * 64 * 9 + 64);

    Tensor<float> x({1, 32, 8, 8}), y({1, 64, 8, 8});
    REQUIRE_THROWS_WITH(conv.forward(x.view(), y.view(), Mode::train),
                        Catch::Contains("conv2d \"enc3.conv1\": input has 32 channels, "
                                        "weights expect 64"));
    Tensor<float> dy({1, 64, 8, 8}), dx({1, 64, 8, 8});
    REQUIRE_THROWS_WITH(conv.backward(dy.view(), dx.view()),
                        Catch::Contains("enc3.conv1") && Catch::Contains("Mode::train"));
}

TEST_CASE("conv2d with a batch norm folded in matches conv, batch norm and ReLU in turn",
          "[conv2d][fold]") {
    unetpp::Rng rng(12);
    for (int64_t K : {5, 16}) {
        INFO("K = " << K);
        unetpp::Conv2d<float> conv("c", Conv2dSpec{3, K, 3, 3, 1, 1});
        conv.init(rng);
        conv.bias().value = unetpp_test::random_tensor<float>(Shape{K}, rng);
        unetpp::BatchNorm2d<float> bn("bn", unetpp::BatchNorm2dSpec{K});
        for (int64_t k = 0; k < K; ++k) {
            bn.weight().value[k] = float(rng.uniform(0.5, 2.0));
            bn.bias().value[k] = float(rng.uniform(-0.5, 0.5));
            bn.running_mean().value[k] = float(rng.uniform(-0.3, 0.3));
            bn.running_var().value[k] = float(rng.uniform(0.2, 3.0));
        }
        Tensor<float> x = unetpp_test::random_tensor<float>(Shape{2, 3, 9, 21}, rng);
        Tensor<float> c({2, K, 9, 21}), b(c.shape()), expect(c.shape()), got(c.shape());
        conv.forward(x.view(), c.view(), Mode::infer);
        bn.forward(std::as_const(c).view(), b.view(), Mode::infer);
        unetpp::relu_forward<float>(std::as_const(b).view(), expect.view());

        std::vector<float> scale(static_cast<size_t>(K)), shift(static_cast<size_t>(K));
        bn.inference_affine(scale.data(), shift.data());
        conv.forward_folded(x.view(), got.view(), scale.data(), shift.data(),
                            unetpp::ConvActivation::relu);
        int64_t zeros = 0;
        for (int64_t i = 0; i < got.numel(); ++i) {
            zeros += expect[i] == 0.0f;
            REQUIRE(got[i] == Approx(expect[i]).margin(2e-5).epsilon(2e-5));
        }
        REQUIRE(zeros > 0);               // the ReLU clamped some outputs
        REQUIRE(zeros < got.numel() / 2 + got.numel() / 4);
        // the layer's own weights are untouched and its plain forward still agrees
        Tensor<float> again(c.shape());
        conv.forward(x.view(), again.view(), Mode::infer);
        REQUIRE(std::equal(again.begin(), again.end(), c.begin()));
    }
}
