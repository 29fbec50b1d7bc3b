// ReLU, ELU and Sigmoid layers: gradients by central differences, the gradient contract, and the
// forward values against the formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <unetpp/layers/elu.hpp>
#include <unetpp/layers/relu.hpp>
#include <unetpp/layers/sigmoid.hpp>

#include "support/layer_check.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;
using unetpp_test::check_layer;

TEST_CASE("relu layer backward matches finite differences and adds into dx", "[relu][grad]") {
    unetpp::ReLU<double> relu("dec1.act1");
    check_layer("relu", relu, Shape{2, 3, 7, 5});
    check_layer("relu", relu, Shape{1, 1, 1, 17});
}

TEST_CASE("elu layer backward matches finite differences for alpha 1 and 0.3", "[elu][grad]") {
    unetpp::ELU<double> elu("enc2.act2");
    check_layer("elu", elu, Shape{2, 3, 7, 5});
    unetpp::ELU<double> elu_small("enc2.act2", unetpp::ELUSpec{0.3});
    check_layer("elu alpha 0.3", elu_small, Shape{1, 3, 3, 33});
}

TEST_CASE("sigmoid layer backward matches finite differences", "[sigmoid][grad]") {
    unetpp::Sigmoid<double> sigmoid("head.sigmoid");
    unetpp_test::LayerCheckOptions opt;
    opt.input_lo = -4;
    opt.input_hi = 4;
    check_layer("sigmoid", sigmoid, Shape{3, 2, 7, 3}, opt);
}

TEST_CASE("activation layers compute their formulas", "[relu][elu][sigmoid]") {
    Tensor<double> x({1, 1, 1, 4});
    const double values[] = {-2.0, -0.5, 0.25, 3.0};
    for (int i = 0; i < 4; ++i) x[i] = values[i];
    Tensor<double> y(x.shape());

    unetpp::ReLU<double> relu("r");
    relu.forward(x.view(), y.view(), Mode::infer);
    for (int i = 0; i < 4; ++i) REQUIRE(y[i] == std::max(values[i], 0.0));

    unetpp::ELU<double> elu("e", unetpp::ELUSpec{0.5});
    elu.forward(x.view(), y.view(), Mode::infer);
    for (int i = 0; i < 4; ++i) {
        double v = values[i];
        REQUIRE(y[i] == Approx(v > 0 ? v : 0.5 * (std::exp(v) - 1)).epsilon(1e-12));
    }

    unetpp::Sigmoid<double> sigmoid("s");
    sigmoid.forward(x.view(), y.view(), Mode::infer);
    for (int i = 0; i < 4; ++i) REQUIRE(y[i] == Approx(1 / (1 + std::exp(-values[i]))));
}

TEST_CASE("activation backward after an inference forward is refused with the layer's name",
          "[relu][errors]") {
    unetpp::ReLU<float> relu("enc1.act1");
    Tensor<float> x({1, 2, 3, 3}), y({1, 2, 3, 3}), dx({1, 2, 3, 3});
    relu.forward(x.view(), y.view(), Mode::infer);
    REQUIRE_THROWS_WITH(relu.backward(y.view(), dx.view()), Catch::Contains("enc1.act1"));
    Tensor<float> wrong({1, 2, 3, 4});
    REQUIRE_THROWS_WITH(relu.forward(x.view(), wrong.view(), Mode::train),
                        Catch::Contains("relu \"enc1.act1\""));
}

TEST_CASE("elu and sigmoid name themselves in errors; elu refuses a non-positive alpha",
          "[elu][sigmoid][errors]") {
    Tensor<float> x({1, 2, 3, 3}), y({1, 2, 3, 3}), dx({1, 2, 3, 3}), wrong({1, 2, 3, 4});
    unetpp::ELU<float> elu("dec2.act2");
    REQUIRE_THROWS_WITH(elu.forward(x.view(), wrong.view(), Mode::train),
                        Catch::Contains("elu \"dec2.act2\""));
    REQUIRE_THROWS_WITH(elu.backward(y.view(), dx.view()),
                        Catch::Contains("elu \"dec2.act2\": backward called without"));
    unetpp::Sigmoid<float> sigmoid("head.act");
    sigmoid.forward(x.view(), y.view(), Mode::train);
    REQUIRE_THROWS_WITH(sigmoid.backward(wrong.view(), dx.view()),
                        Catch::Contains("sigmoid \"head.act\": dy"));
    REQUIRE_THROWS_WITH(unetpp::ELU<float>("e", unetpp::ELUSpec{0.0}),
                        Catch::Contains("elu \"e\": alpha must be positive, got 0"));
    REQUIRE_THROWS_WITH(unetpp::ELU<float>("e", unetpp::ELUSpec{-1.0}),
                        Catch::Contains("got -1"));
}
