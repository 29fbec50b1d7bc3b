// MaxPool2d layer: gradients by central differences, the contract, floor on odd sizes.
#include <catch2/catch.hpp>

#include <unetpp/layers/maxpool2d.hpp>

#include "support/layer_check.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

TEST_CASE("maxpool2d layer backward matches finite differences and adds into dx",
          "[maxpool2d][grad]") {
    unetpp::MaxPool2d<double> pool("enc1.pool");
    SECTION("even sizes") { unetpp_test::check_layer("maxpool2d", pool, Shape{2, 3, 8, 6}); }
    SECTION("odd sizes drop the last row and column") {
        unetpp_test::check_layer("maxpool2d odd", pool, Shape{1, 2, 7, 5});
    }
}

TEST_CASE("maxpool2d output shape floors odd sizes", "[maxpool2d][shape]") {
    unetpp::MaxPool2d<float> pool("p");
    SECTION("8x6") { REQUIRE(pool.output_shape(Shape{2, 3, 8, 6}) == Shape{2, 3, 4, 3}); }
    SECTION("7x5") { REQUIRE(pool.output_shape(Shape{1, 1, 7, 5}) == Shape{1, 1, 3, 2}); }
    SECTION("3x2") { REQUIRE(pool.output_shape(Shape{1, 1, 3, 2}) == Shape{1, 1, 1, 1}); }
    SECTION("1x4 is refused") {
        REQUIRE_THROWS_WITH(pool.output_shape(Shape{1, 1, 1, 4}), Catch::Contains("\"p\""));
    }
}

TEST_CASE("maxpool2d forward picks each window's maximum", "[maxpool2d]") {
    Tensor<double> x({1, 1, 2, 4});
    const double v[] = {1, 5, -1, -2, 3, 2, -3, -0.5};
    for (int i = 0; i < 8; ++i) x[i] = v[i];
    Tensor<double> y({1, 1, 1, 2});
    unetpp::MaxPool2d<double> pool("p");
    pool.forward(x.view(), y.view(), Mode::train);
    REQUIRE(y[0] == 5);
    REQUIRE(y[1] == -0.5);
}
