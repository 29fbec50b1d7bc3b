// Dropout layer: gradients with a fixed mask, inverted scaling, inference copy, determinism
// across thread counts.
#include <catch2/catch.hpp>

#include <unetpp/layers/dropout.hpp>
#include <unetpp/parallel.hpp>

#include "support/layer_check.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

TEST_CASE("dropout backward with a fixed mask matches finite differences", "[dropout][grad]") {
    unetpp::Dropout<double> drop("enc3.drop", unetpp::DropoutSpec{0.3, 11});
    unetpp_test::LayerCheckOptions opt;
    opt.before_forward = [&]() { drop.set_step(4); };
    unetpp_test::check_layer("dropout", drop, Shape{3, 2, 7, 5}, opt);
}

TEST_CASE("dropout keeps about 1-p of the elements, scaled by 1/(1-p)", "[dropout]") {
    const double p = 0.25;
    unetpp::Dropout<float> drop("d", unetpp::DropoutSpec{p, 2});
    Tensor<float> x({4, 8, 32, 32}), y(x.shape());
    x.fill(1.0f);
    drop.forward(x.view(), y.view(), Mode::train);
    int64_t kept = 0;
    for (float v : y) {
        REQUIRE((v == 0.0f || v == Approx(1.0 / (1.0 - p))));
        kept += v != 0.0f;
    }
    const double fraction = double(kept) / double(y.numel());
    // 32768 Bernoulli(0.75) draws: one standard deviation is 0.0024, so 0.02 is over 8 sigma.
    REQUIRE(fraction == Approx(1 - p).margin(0.02));

    Tensor<float> z(x.shape());
    drop.forward(x.view(), z.view(), Mode::infer);
    for (float v : z) REQUIRE(v == 1.0f);
}

TEST_CASE("dropout masks depend on the seed and step, not on the thread count", "[dropout]") {
    Tensor<float> x({5, 3, 9, 7}), y1(x.shape()), y2(x.shape()), y3(x.shape());
    x.fill(1.0f);
    unetpp::Dropout<float> a("d", unetpp::DropoutSpec{0.5, 9});
    unetpp::Dropout<float> b("d", unetpp::DropoutSpec{0.5, 9});
    unetpp::set_num_threads(1);
    a.forward(x.view(), y1.view(), Mode::train);
    unetpp::set_num_threads(2);
    b.forward(x.view(), y2.view(), Mode::train);
    b.forward(x.view(), y3.view(), Mode::train);
    unetpp::set_num_threads(0);
    REQUIRE(unetpp::tensor_max_abs_diff(y1, y2) == 0.0f);
    REQUIRE(unetpp::tensor_max_abs_diff(y1, y3) > 0.0f);
}
