// Concat layer (skip connections): values, gradients by central differences, the add contract
// for both inputs.
#include <catch2/catch.hpp>

#include <unetpp/layers/concat.hpp>

#include "support/gradcheck.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;
using namespace unetpp_test;

TEST_CASE("concat layer backward matches finite differences and adds into both inputs",
          "[concat][grad]") {
    unetpp::Rng rng(3);
    Tensor<double> a = random_tensor<double>(Shape{2, 3, 5, 7}, rng);
    Tensor<double> b = random_tensor<double>(Shape{2, 1, 5, 7}, rng);
    unetpp::Concat<double> cat("dec2.concat");
    const Shape y_shape = cat.output_shape(a.shape(), b.shape());
    REQUIRE(y_shape == Shape{2, 4, 5, 7});
    Tensor<double> y(y_shape);
    const Tensor<double> g = random_tensor<double>(y_shape, rng);
    auto loss = [&]() {
        cat.forward(a.view(), b.view(), y.view(), Mode::train);
        return weighted_sum(g, y);
    };

    // analytic gradients on top of noise
    const Tensor<double> noise_a = random_tensor<double>(a.shape(), rng);
    const Tensor<double> noise_b = random_tensor<double>(b.shape(), rng);
    Tensor<double> da = noise_a, db = noise_b;
    loss();
    cat.backward(g.view(), da.view(), db.view());
    unetpp::tensor_axpy(-1.0, noise_a, da);
    unetpp::tensor_axpy(-1.0, noise_b, db);

    gradient_check("concat da", da, numeric_gradient(loss, a));
    gradient_check("concat db", db, numeric_gradient(loss, b));
    loss();  // numeric_gradient left y at a perturbed input
    REQUIRE(y(1, 3, 4, 6) == b(1, 0, 4, 6));
    REQUIRE(y(1, 2, 0, 1) == a(1, 2, 0, 1));
}

TEST_CASE("concat refuses inputs of different spatial size, naming the layer", "[concat][errors]") {
    unetpp::Concat<float> cat("dec3.concat");
    REQUIRE_THROWS_WITH(cat.output_shape(Shape{1, 4, 8, 8}, Shape{1, 4, 8, 9}),
                        Catch::Contains("dec3.concat") && Catch::Contains("[1, 4, 8, 9]"));
}
