// Optimizers (Adam, AdamW, SGD), learning-rate schedules, gradient clipping and optimizer state.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <unetpp/optim/adam.hpp>
#include <unetpp/optim/clip.hpp>
#include <unetpp/optim/schedule.hpp>
#include <unetpp/optim/sgd.hpp>
#include <unetpp/random.hpp>

using unetpp::Adam;
using unetpp::AdamSpec;
using unetpp::LrDecay;
using unetpp::LrScheduleSpec;
using unetpp::Parameter;
using unetpp::ParameterList;
using unetpp::Sgd;
using unetpp::SgdSpec;
using unetpp::Tensor;

namespace {

// A tiny model: two trainable parameters of awkward sizes and one non-trainable statistic.
template <class T>
struct TinyModel {
    Parameter<T> weight{"layer.weight", {3, 7}};
    Parameter<T> bias{"layer.bias", {7}};
    Parameter<T> running_mean{"bn.running_mean", {7}, false};

    TinyModel() {
        unetpp::Rng rng(3);
        unetpp::init_uniform(weight.value, rng, -1.0, 1.0);
        unetpp::init_uniform(bias.value, rng, -1.0, 1.0);
        unetpp::init_uniform(running_mean.value, rng, -1.0, 1.0);
    }
    ParameterList<T> params() { return {&weight, &running_mean, &bias}; }
};

// Gradient of f(p) = 0.5 * sum_i a_i (p_i - c_i)^2 with a_i = 1 + i % 5, c_i = 0.1 * (i % 3):
// grad_i = a_i (p_i - c_i). Deterministic, so two runs see the same gradients.
template <class T>
void quadratic_grad(const ParameterList<T>& params) {
    for (Parameter<T>* p : params) {
        if (!p->trainable) continue;
        for (int64_t i = 0; i < p->value.numel(); ++i) {
            p->grad[i] = T(1 + i % 5) * (p->value[i] - T(0.1) * T(i % 3));
        }
    }
}

template <class T>
bool bit_equal(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE("adam's first step moves by lr times the sign, as computed by hand", "[optim][adam]") {
    Parameter<double> p("p", {1});
    p.value[0] = 1.0;
    p.grad[0] = 0.5;
    AdamSpec spec;
    spec.lr = 0.1;
    Adam<double> adam(spec);
    adam.step({&p});
    // m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25; step = 0.1 * 0.5 / (0.5 + 1e-8).
    REQUIRE(p.value[0] == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-15));
    REQUIRE(adam.step_count() == 1);
}

TEST_CASE("adam and adamw on a quadratic follow a hand-written reference loop",
          "[optim][adam]") {
    for (bool decoupled : {false, true}) {
        CAPTURE(decoupled);
        AdamSpec spec;
        spec.lr = 0.05;
        spec.beta1 = 0.8;
        spec.beta2 = 0.95;
        spec.eps = 1e-6;
        spec.weight_decay = 0.1;
        spec.decoupled_decay = decoupled;
        TinyModel<double> model;
        auto params = model.params();
        Tensor<double> ref = model.weight.value, m(ref.shape()), v(ref.shape());
        Adam<double> adam(spec);
        for (int t = 1; t <= 40; ++t) {
            quadratic_grad(params);
            adam.step(params);
            for (int64_t i = 0; i < ref.numel(); ++i) {
                double g = (1 + i % 5) * (ref[i] - 0.1 * (i % 3));
                if (!decoupled) g += 0.1 * ref[i];
                if (decoupled) ref[i] -= 0.05 * 0.1 * ref[i];
                m[i] = 0.8 * m[i] + 0.2 * g;
                v[i] = 0.95 * v[i] + 0.05 * g * g;
                double m_hat = m[i] / (1 - std::pow(0.8, t));
                double v_hat = v[i] / (1 - std::pow(0.95, t));
                ref[i] -= 0.05 * m_hat / (std::sqrt(v_hat) + 1e-6);
            }
        }
        for (int64_t i = 0; i < ref.numel(); ++i) {
            REQUIRE(model.weight.value[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));
        }
    }
}

TEST_CASE("adamw decays weights outside the moments, adam's L2 goes through them",
          "[optim][adam]") {
    // With a zero gradient AdamW's moments stay 0, so the only change is p * (1 - lr wd);
    // Adam's L2 term becomes the gradient and moves p by about lr.
    Parameter<double> p("p", {2}), q("q", {2});
    p.value[0] = q.value[0] = 2.0;
    p.value[1] = q.value[1] = -4.0;
    Adam<double> adamw(unetpp::adamw_spec(0.01, 0.5));
    adamw.step({&p});
    REQUIRE(p.value[0] == Approx(2.0 * (1 - 0.01 * 0.5)).epsilon(1e-15));
    REQUIRE(p.value[1] == Approx(-4.0 * (1 - 0.01 * 0.5)).epsilon(1e-15));
    AdamSpec l2;
    l2.lr = 0.01;
    l2.weight_decay = 0.5;
    Adam<double> adam(l2);
    adam.step({&q});
    REQUIRE(q.value[0] == Approx(2.0 - 0.01).epsilon(1e-9));
    REQUIRE(q.value[1] == Approx(-4.0 + 0.01).epsilon(1e-9));
}

TEST_CASE("sgd momentum and nesterov match hand-computed trajectories", "[optim][sgd]") {
    auto run = [](bool nesterov, int steps) {
        Parameter<double> p("p", {1});
        SgdSpec spec;
        spec.lr = 0.1;
        spec.momentum = 0.9;
        spec.nesterov = nesterov;
        Sgd<double> sgd(spec);
        for (int s = 0; s < steps; ++s) {
            p.grad[0] = 1.0;
            sgd.step({&p});
        }
        return p.value[0];
    };
    // b = 1, 1.9, 2.71: p = -0.1, -0.29, -0.561.
    REQUIRE(run(false, 3) == Approx(-0.561).epsilon(1e-14));
    // Nesterov updates by g + mu b = 1.9, then 2.71: p = -0.19, -0.461.
    REQUIRE(run(true, 2) == Approx(-0.461).epsilon(1e-14));

    Parameter<double> q("q", {1});
    q.value[0] = 2.0;
    q.grad[0] = 1.0;
    SgdSpec decay;
    decay.lr = 0.1;
    decay.momentum = 0.0;
    decay.weight_decay = 0.5;
    Sgd<double>(decay).step({&q});
    REQUIRE(q.value[0] == Approx(2.0 - 0.1 * (1.0 + 0.5 * 2.0)).epsilon(1e-15));
}

TEST_CASE("optimizers leave non-trainable and frozen parameters alone", "[optim]") {
    TinyModel<float> model;
    model.bias.frozen = true;
    Tensor<float> bias0 = model.bias.value, stats0 = model.running_mean.value;
    Tensor<float> weight0 = model.weight.value;
    auto params = model.params();
    quadratic_grad(params);
    Adam<float> adam;
    adam.step(params);
    Sgd<float> sgd;
    sgd.step(params);
    REQUIRE(bit_equal(model.bias.value, bias0));
    REQUIRE(bit_equal(model.running_mean.value, stats0));
    REQUIRE_FALSE(bit_equal(model.weight.value, weight0));
    // The frozen parameter still has a state slot; the non-trainable one has none.
    auto state = adam.state_save();
    REQUIRE(state.tensors.size() == 4);
    REQUIRE(state.tensors[0].first == "optim.adam.m.layer.weight");
    REQUIRE(state.tensors[3].first == "optim.adam.v.layer.bias");
    REQUIRE(state.metadata.at("optim.adam.step") == "1");
}

TEMPLATE_TEST_CASE("state round trip resumes bit-identically: 10 steps vs 5 + reload + 5",
                   "[optim][state]", Adam<float>, Sgd<float>) {
    using Opt = TestType;
    TinyModel<float> straight;
    Opt opt_straight;
    for (int s = 0; s < 10; ++s) {
        quadratic_grad(straight.params());
        opt_straight.step(straight.params(), 0.01 * (s + 1));
    }

    TinyModel<float> first;
    Opt opt_first;
    for (int s = 0; s < 5; ++s) {
        quadratic_grad(first.params());
        opt_first.step(first.params(), 0.01 * (s + 1));
    }
    auto state = opt_first.state_save();
    TinyModel<float> resumed;
    resumed.weight.value = first.weight.value;
    resumed.bias.value = first.bias.value;
    Opt opt_resumed;
    opt_resumed.state_load(state, resumed.params());
    REQUIRE(opt_resumed.step_count() == 5);
    for (int s = 5; s < 10; ++s) {
        quadratic_grad(resumed.params());
        opt_resumed.step(resumed.params(), 0.01 * (s + 1));
    }
    REQUIRE(bit_equal(resumed.weight.value, straight.weight.value));
    REQUIRE(bit_equal(resumed.bias.value, straight.bias.value));
}

TEST_CASE("optimizer state for a different parameter set is refused and changes nothing",
          "[optim][state][errors]") {
    TinyModel<float> model;
    Adam<float> adam;
    quadratic_grad(model.params());
    adam.step(model.params());
    auto state = adam.state_save();

    SECTION("a parameter of another shape") {
        Parameter<float> w("layer.weight", {3, 8}), b("layer.bias", {7});
        Adam<float> other;
        REQUIRE_THROWS_WITH(other.state_load(state, {&w, &b}),
                            Catch::Contains("optim.adam.m.layer.weight") &&
                                Catch::Contains("[3, 7]") && Catch::Contains("[3, 8]"));
        REQUIRE(other.step_count() == 0);
    }
    SECTION("a parameter the state lacks") {
        Parameter<float> extra("layer2.weight", {2});
        auto params = model.params();
        params.push_back(&extra);
        REQUIRE_THROWS_WITH(adam.state_load(state, params),
                            Catch::Contains("layer2.weight"));
        REQUIRE(adam.step_count() == 1);
    }
    SECTION("a state tensor no parameter claims") {
        Parameter<float> w("layer.weight", {3, 7});
        REQUIRE_THROWS_WITH(adam.state_load(state, {&w}), Catch::Contains("layer.bias"));
    }
    SECTION("state of another optimizer kind") {
        Sgd<float> sgd;
        REQUIRE_THROWS_WITH(sgd.state_load(state, model.params()),
                            Catch::Contains("adam") && Catch::Contains("sgd"));
        Adam<float> adamw(unetpp::adamw_spec(1e-3, 0.01));
        REQUIRE_THROWS_WITH(adamw.state_load(state, model.params()), Catch::Contains("adamw"));
    }
    SECTION("stepping with another parameter list") {
        Parameter<float> w("other.weight", {3, 7});
        REQUIRE_THROWS_WITH(adam.step({&w, &model.bias}), Catch::Contains("other.weight"));
    }
}

TEST_CASE("learning-rate schedules give the hand-computed rates", "[optim][schedule]") {
    LrScheduleSpec spec;
    spec.base_lr = 1.0;
    SECTION("constant") {
        REQUIRE(unetpp::lr_schedule_at(spec, 0) == 1.0);
        REQUIRE(unetpp::lr_schedule_at(spec, 123456) == 1.0);
    }
    SECTION("linear warm-up then constant") {
        spec.warmup_steps = 4;
        REQUIRE(unetpp::lr_schedule_at(spec, 0) == Approx(0.25));
        REQUIRE(unetpp::lr_schedule_at(spec, 2) == Approx(0.75));
        REQUIRE(unetpp::lr_schedule_at(spec, 3) == Approx(1.0));
        REQUIRE(unetpp::lr_schedule_at(spec, 4) == Approx(1.0));
    }
    SECTION("step decay after warm-up") {
        spec.decay = LrDecay::step;
        spec.warmup_steps = 2;
        spec.step_size = 10;
        spec.gamma = 0.5;
        REQUIRE(unetpp::lr_schedule_at(spec, 1) == Approx(1.0));
        REQUIRE(unetpp::lr_schedule_at(spec, 11) == Approx(1.0));
        REQUIRE(unetpp::lr_schedule_at(spec, 12) == Approx(0.5));
        REQUIRE(unetpp::lr_schedule_at(spec, 27) == Approx(0.25));
    }
    SECTION("cosine after warm-up reaches min_lr and stays") {
        spec.decay = LrDecay::cosine;
        spec.warmup_steps = 4;
        spec.total_steps = 14;
        spec.min_lr = 0.1;
        REQUIRE(unetpp::lr_schedule_at(spec, 4) == Approx(1.0));
        REQUIRE(unetpp::lr_schedule_at(spec, 9) == Approx(0.55));
        // s = 7.5 of D = 10 is not a step; s = 2: 0.1 + 0.9 * (1 + cos(0.2 pi)) / 2
        REQUIRE(unetpp::lr_schedule_at(spec, 6) ==
                Approx(0.1 + 0.9 * (1 + 0.80901699437494742) / 2));
        REQUIRE(unetpp::lr_schedule_at(spec, 14) == Approx(0.1));
        REQUIRE(unetpp::lr_schedule_at(spec, 1000) == Approx(0.1));
    }
    SECTION("invalid specs are refused") {
        REQUIRE_THROWS_AS(unetpp::lr_schedule_at(spec, -1), unetpp::Error);
        spec.decay = LrDecay::cosine;
        spec.total_steps = 0;
        REQUIRE_THROWS_WITH(unetpp::lr_schedule_at(spec, 0), Catch::Contains("total_steps"));
        spec.decay = LrDecay::step;
        spec.step_size = 0;
        REQUIRE_THROWS_WITH(unetpp::lr_schedule_at(spec, 0), Catch::Contains("step_size"));
    }
}

TEST_CASE("global-norm clipping scales to max_norm and returns the norm before",
          "[optim][clip]") {
    Parameter<double> a("a", {1}), b("b", {1}), frozen("f", {1}), stats("s", {1}, false);
    a.grad[0] = 3.0;
    b.grad[0] = 4.0;
    frozen.frozen = true;
    frozen.grad[0] = 100.0;
    ParameterList<double> params{&a, &frozen, &b, &stats};
    REQUIRE(unetpp::grad_global_norm(params) == Approx(5.0));
    REQUIRE(unetpp::grad_clip_global_norm(params, 10.0) == Approx(5.0));
    REQUIRE(a.grad[0] == 3.0);  // below the threshold: untouched
    REQUIRE(unetpp::grad_clip_global_norm(params, 1.0) == Approx(5.0));
    REQUIRE(a.grad[0] == Approx(0.6));
    REQUIRE(b.grad[0] == Approx(0.8));
    REQUIRE(frozen.grad[0] == 100.0);
    REQUIRE(unetpp::grad_global_norm(params) == Approx(1.0));

    a.grad[0] = std::numeric_limits<double>::quiet_NaN();
    REQUIRE(std::isnan(unetpp::grad_clip_global_norm(params, 1.0)));
    REQUIRE(b.grad[0] == Approx(0.8));  // a non-finite norm leaves gradients alone
    REQUIRE_THROWS_AS(unetpp::grad_clip_global_norm(params, 0.0), unetpp::Error);
}

TEST_CASE("global norm is bit-identical for 1 and 3 threads across many blocks",
          "[optim][clip][threads]") {
    Parameter<float> big("big", {3, 7, 33, 65});  // 45045 elements: several blocks
    unetpp::Rng rng(5);
    unetpp::init_uniform(big.grad, rng, -1.0, 1.0);
    unetpp::set_num_threads(1);
    double one = unetpp::grad_global_norm<float>({&big});
    unetpp::set_num_threads(3);
    double three = unetpp::grad_global_norm<float>({&big});
    unetpp::set_num_threads(0);
    REQUIRE(one == three);
    double ref = 0;
    for (float g : big.grad) ref += double(g) * g;
    REQUIRE(one == Approx(std::sqrt(ref)).epsilon(1e-12));
}
