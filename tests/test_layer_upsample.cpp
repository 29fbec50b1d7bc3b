// Bilinear 2x upsampling and the bilinear + conv decoder path: gradients by central differences
// and the contract.
#include <catch2/catch.hpp>

#include <unetpp/layers/upsample.hpp>

#include "support/layer_check.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

TEST_CASE("bilinear 2x upsample layer backward matches finite differences", "[upsample][grad]") {
    unetpp::UpsampleBilinear2x<double> up("dec1.up");
    unetpp_test::check_layer("upsample", up, Shape{2, 3, 5, 7});
    unetpp_test::check_layer("upsample 1x1", up, Shape{1, 2, 1, 1});
}

TEST_CASE("bilinear upconv backward matches finite differences on input and conv parameters",
          "[upsample][conv2d][grad]") {
    unetpp::BilinearUpConv<double> up("dec2.up", unetpp::BilinearUpConvSpec{4, 3, 3});
    unetpp::Rng rng(5);
    up.init(rng);
    REQUIRE(up.output_shape(Shape{2, 4, 3, 5}) == Shape{2, 3, 6, 10});
    unetpp_test::check_layer("bilinear upconv", up, Shape{2, 4, 3, 5});
    REQUIRE(up.parameters().size() == 2);
    REQUIRE(up.parameters()[0]->name == "dec2.up.conv.weight");
}

TEST_CASE("bilinear upsample keeps a constant image constant", "[upsample]") {
    Tensor<float> x({1, 2, 3, 4}), y({1, 2, 6, 8});
    x.fill(2.5f);
    unetpp::UpsampleBilinear2x<float> up("u");
    up.forward(x.view(), y.view(), Mode::infer);
    for (float v : y) REQUIRE(v == Approx(2.5f));
}
