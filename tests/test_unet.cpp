// The U-Net as a whole: parameter count and names, gradients of a small network (batch norm,
// skips, pad/crop) against finite differences in double, learning synthetic disks, bit-identical
// training for 1 and 2 threads, and error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <unetpp/losses/combined.hpp>
#include <unetpp/model/unet.hpp>
#include <unetpp/optim/adam.hpp>
#include <unetpp/parallel.hpp>

#include "support/gradcheck.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;
using unetpp::UNet;
using unetpp::UNetConfig;
using namespace unetpp_test;

namespace {

// Runs a test case on one thread and restores the default afterwards. These networks are tiny:
// with 2 threads on a loaded 2-core machine, OpenMP's barrier spinning makes them 20x slower
// (24 s instead of 0.5 s for the batch-norm gradient check), and the thread count is not what
// they test. The determinism test below covers 1 versus 2 threads.
struct OneThread {
    OneThread() { unetpp::set_num_threads(1); }
    ~OneThread() { unetpp::set_num_threads(0); }
};

// Checks every trainable parameter gradient and the input gradient of `net` against central
// differences of L = sum g * logits, and the contract (dx added to, grads assigned).
void check_unet_gradients(UNet<double>& net, const Shape& x_shape, uint64_t seed) {
    unetpp::Rng rng(seed);
    Tensor<double> x = random_tensor<double>(x_shape, rng);
    const Tensor<double>& logits = net.forward(x.view(), Mode::train);
    REQUIRE(logits.shape() == Shape{x_shape[0], net.config().out_channels, x_shape[2], x_shape[3]});
    const Tensor<double> g = random_tensor<double>(logits.shape(), rng);
    auto loss = [&]() { return weighted_sum(g, net.forward(x.view(), Mode::train)); };

    // analytic, with dx on top of noise and grads prefilled with NaN
    auto params = net.parameters();
    for (auto* p : params) {
        if (p->trainable) fill_nan(p->grad);
    }
    const Tensor<double> noise = random_tensor<double>(x_shape, rng);
    Tensor<double> dx = noise;
    loss();
    net.backward(g.view(), dx.view());
    unetpp::tensor_axpy(-1.0, noise, dx);

    // every input element, and up to kSampled spread-out elements of each parameter (all of the
    // small ones): checking all ~7,000 weights would take 20 s and find nothing more, since a
    // wrong index shows in every sampled element of its tensor
    constexpr int64_t kSampled = 24;
    gradient_check("unet dx", dx, numeric_gradient(loss, x));
    for (auto* p : params) {
        if (!p->trainable) continue;
        require_no_nan(p->name, p->grad);
        const int64_t count = p->value.numel();
        const int64_t stride = count <= kSampled ? 1 : count / kSampled;
        for (int64_t i = (stride > 1 ? int64_t(rng.below(uint64_t(stride))) : 0); i < count;
             i += stride) {
            const double eps = 1e-6, saved = p->value[i];
            p->value[i] = saved + eps;
            const double up = loss();
            p->value[i] = saved - eps;
            const double down = loss();
            p->value[i] = saved;
            const double numeric = (up - down) / (2 * eps), analytic = p->grad[i];
            if (!(std::abs(analytic - numeric) <= kGradAbsTol + kGradRelTol * std::abs(numeric))) {
                FAIL(p->name << ": gradient mismatch at flat index " << i << ": analytic "
                             << analytic << ", numeric " << numeric);
            }
        }
    }
}

// N images of S x S with 1 to 3 random disks each, plus noise; masks 1 inside the disks.
void make_disks(unetpp::Rng& rng, int64_t N, int64_t S, Tensor<float>& images,
                Tensor<float>& masks) {
    images.resize(Shape{N, 1, S, S});
    masks.resize(Shape{N, 1, S, S});
    for (int64_t n = 0; n < N; ++n) {
        const int disks = 1 + int(rng.below(3));
        for (int d = 0; d < disks; ++d) {
            const double cy = rng.uniform(4, S - 4), cx = rng.uniform(4, S - 4);
            const double r = rng.uniform(2.5, 6.0);
            for (int64_t i = 0; i < S; ++i)
                for (int64_t j = 0; j < S; ++j) {
                    if ((i - cy) * (i - cy) + (j - cx) * (j - cx) <= r * r) masks(n, 0, i, j) = 1;
                }
        }
        for (int64_t i = 0; i < S; ++i)
            for (int64_t j = 0; j < S; ++j) {
                images(n, 0, i, j) = float(0.8 * masks(n, 0, i, j) + 0.1 + rng.normal(0, 0.15));
            }
    }
}

// Three Adam steps of `net` on a fixed batch x (N 3 H W) with random binary targets drawn from
// `rng`; returns a copy of every parameter afterwards.
std::vector<Tensor<float>> train_three_steps(UNet<float>& net, const Tensor<float>& x,
                                             unetpp::Rng& rng) {
    unetpp::Adam<float> adam;
    auto params = net.parameters();
    const Shape y_shape{x.dim(0), 1, x.dim(2), x.dim(3)};
    Tensor<float> target(y_shape), dlogits(y_shape);
    for (int64_t i = 0; i < target.numel(); ++i) target[i] = float(rng.below(2));
    for (int step = 0; step < 3; ++step) {
        const auto& logits = net.forward(x.view(), Mode::train);
        unetpp::combined_loss<float>(unetpp::CombinedLossSpec{}, logits.view(), target.view(),
                                     unetpp::ConstTensorView<float>(), dlogits.view());
        net.backward(dlogits.view());
        adam.step(params);
    }
    std::vector<Tensor<float>> weights;
    for (auto* p : params) weights.push_back(p->value);
    return weights;
}

}  // namespace

TEST_CASE("UNet16 has the Keras tutorial's 1,941,105 parameters with readable names",
          "[unet][params]") {
    UNet<float> net(UNetConfig::unet16());
    REQUIRE(net.parameter_count() == 1941105);
    auto params = net.parameters();
    REQUIRE(params.size() == 46);  // 23 convolutions (incl. 4 transposed, 1 head), weight + bias
    REQUIRE(params.front()->name == "enc1.conv1.weight");
    REQUIRE(params[2]->name == "enc1.conv2.weight");
    REQUIRE(params[16]->name == "bottleneck.conv1.weight");
    REQUIRE(params[20]->name == "dec4.up.weight");
    REQUIRE(params[20]->value.shape() == Shape{256, 128, 2, 2});
    REQUIRE(params[22]->name == "dec4.conv1.weight");
    REQUIRE(params[22]->value.shape() == Shape{128, 256, 3, 3});
    REQUIRE(params.back()->name == "head.bias");
    // 1.516 GFLOP per 128x128 forward (multiply-adds counted twice, convolutions only)
    REQUIRE(net.forward_flops(128, 128) == Approx(1.516e9).epsilon(0.002));
}

TEST_CASE("parameter names carry batch norm statistics and bilinear up-convolutions",
          "[unet][params]") {
    UNetConfig config;
    config.depth = 2;
    config.base_width = 4;
    config.batch_norm = true;
    config.upsample = unetpp::UpsampleKind::bilinear_conv;
    UNet<float> net(config);
    auto params = net.parameters();
    std::vector<std::string> names;
    for (auto* p : params) names.push_back(p->name);
    REQUIRE(names[0] == "enc1.conv1.weight");
    REQUIRE(names[2] == "enc1.bn1.weight");
    REQUIRE(names[4] == "enc1.bn1.running_mean");
    REQUIRE(names[5] == "enc1.bn1.running_var");
    REQUIRE(std::find(names.begin(), names.end(), "dec2.up.conv.weight") != names.end());
    for (std::size_t i = 0; i < names.size(); ++i) {
        for (std::size_t j = i + 1; j < names.size(); ++j) REQUIRE(names[i] != names[j]);
    }
}

TEST_CASE("a small U-Net with batch norm backward matches finite differences through pad/crop",
          "[unet][grad]") {
    OneThread one_thread;
    // ELU keeps the network differentiable everywhere: with ReLU, perturbing any of the ~7,000
    // weights by 1e-6 can push a pre-activation across 0 and spoil the difference quotient.
    UNetConfig config;
    config.in_channels = 2;
    config.depth = 2;
    config.base_width = 4;
    config.batch_norm = true;
    config.activation = unetpp::ActivationKind::elu;
    UNet<double> net(config);
    check_unet_gradients(net, Shape{1, 2, 10, 13}, 1);
}

TEST_CASE("a bilinear-upsampling U-Net backward matches finite differences for a batch of 2",
          "[unet][grad]") {
    OneThread one_thread;
    UNetConfig config;
    config.in_channels = 1;
    config.out_channels = 2;
    config.depth = 2;
    config.base_width = 2;
    config.upsample = unetpp::UpsampleKind::bilinear_conv;
    config.activation = unetpp::ActivationKind::elu;
    UNet<double> net(config);
    check_unet_gradients(net, Shape{2, 1, 5, 9}, 2);
}

TEST_CASE("reflect padding folds back and forth for any pad", "[unet][pad]") {
    using unetpp::detail::reflect_index;
    SECTION("L = 4") {
        const int64_t expect[] = {3, 2, 1, 0, 1, 2, 3, 2, 1, 0};  // i = -3 .. 6
        for (int64_t i = -3; i <= 6; ++i) REQUIRE(reflect_index(i, 4) == expect[i + 3]);
    }
    SECTION("L = 1 replicates") {
        for (int64_t i = -5; i <= 5; ++i) REQUIRE(reflect_index(i, 1) == 0);
    }
}

TEST_CASE("a small U-Net learns to segment noisy synthetic disks", "[unet][train]") {
    OneThread one_thread;
    UNetConfig config;
    config.in_channels = 1;
    config.depth = 2;
    config.base_width = 8;
    config.seed = 3;
    UNet<float> net(config);
    unetpp::Adam<float> adam(unetpp::AdamSpec{});
    adam.set_lr(3e-3);
    unetpp::CombinedLossSpec loss_spec;
    auto params = net.parameters();

    unetpp::Rng rng(17);
    Tensor<float> images, masks, dlogits({8, 1, 32, 32});
    double first = 0, last = 0;
    constexpr int kSteps = 120;
    for (int step = 0; step < kSteps; ++step) {
        make_disks(rng, 8, 32, images, masks);
        const Tensor<float>& logits = net.forward(images.view(), Mode::train);
        auto value = unetpp::combined_loss<float>(loss_spec, logits.view(), masks.view(),
                                                  unetpp::ConstTensorView<float>(),
                                                  dlogits.view());
        net.backward(dlogits.view());
        adam.step(params);
        if (step == 0) first = value.total;
        last = value.total;
    }
    // Held-out images: BCE + Dice of a trained model; an untrained one starts near 0.69 + 0.6.
    make_disks(rng, 8, 32, images, masks);
    auto held_out = unetpp::combined_loss_value<float>(
        loss_spec, net.forward(images.view(), Mode::infer).view(), masks.view());
    INFO("first " << first << " last " << last << " held-out bce " << held_out.bce << " dice "
                  << held_out.dice);
    REQUIRE(first > 1.0);
    REQUIRE(held_out.total < 0.25);
    REQUIRE(held_out.bce < 0.1);
}

TEST_CASE("training from a fixed seed gives bit-identical weights on 1 and 2 threads",
          "[unet][determinism]") {
    UNetConfig config;
    config.depth = 2;
    config.base_width = 4;
    config.batch_norm = true;
    config.dropout = 0.2;
    auto train = [&](int threads) {
        unetpp::set_num_threads(threads);
        UNet<float> net(config);
        unetpp::Rng rng(5);
        Tensor<float> x = random_tensor<float>(Shape{3, 3, 21, 19}, rng);
        auto weights = train_three_steps(net, x, rng);
        unetpp::set_num_threads(0);
        return weights;
    };
    auto one = train(1), two = train(2);
    REQUIRE(one.size() == two.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
        REQUIRE(unetpp::tensor_max_abs_diff(one[i], two[i]) == 0.0f);
    }
}

TEST_CASE("fused ReLUs train to the same bits as the layer-by-layer network",
          "[unet][fusion]") {
    OneThread one_thread;
    UNetConfig config;
    config.depth = 2;
    config.base_width = 4;
    config.dropout = 0.2;  // the fused ReLU's output then feeds a dropout
    // without batch norm the ReLUs go into the convolutions, with it into the batch norms
    config.batch_norm = GENERATE(false, true);
    INFO("batch_norm " << config.batch_norm);
    auto train = [&](bool fusion) {
        UNet<float> net(config);
        net.set_fusion(fusion);
        unetpp::Rng rng(8);
        Tensor<float> x = random_tensor<float>(Shape{2, 3, 37, 19}, rng);  // direct and GEMM
        auto out = train_three_steps(net, x, rng);
        out.push_back(net.forward(x.view(), Mode::infer));
        return out;
    };
    auto fused = train(true), plain = train(false);
    REQUIRE(fused.size() == plain.size());
    for (std::size_t i = 0; i + 1 < fused.size(); ++i) {
        INFO("parameter tensor " << i);
        REQUIRE(unetpp::tensor_max_abs_diff(fused[i], plain[i]) == 0.0f);
    }
    // inference: the same bits without batch norm; with it, folded into the weights, the same
    // up to rounding (the next test checks that closely)
    const float logit_diff = unetpp::tensor_max_abs_diff(fused.back(), plain.back());
    if (config.batch_norm) REQUIRE(logit_diff <= 1e-4f);
    else REQUIRE(logit_diff == 0.0f);
}

TEST_CASE("inference with batch norm folded into the convolutions matches the layers in turn",
          "[unet][fusion]") {
    OneThread one_thread;
    UNetConfig config;
    config.in_channels = 2;
    config.out_channels = 2;
    config.depth = 2;
    config.base_width = 8;
    config.batch_norm = true;
    UNet<float> net(config);
    // statistics and affine parameters far from their initial 0 / 1
    unetpp::Rng rng(9);
    for (auto* p : net.parameters()) {
        const std::string& n = p->name;
        auto ends = [&](const char* tail) {
            const std::string t(tail);
            return n.size() >= t.size() && n.compare(n.size() - t.size(), t.size(), t) == 0;
        };
        const bool bn = n.find(".bn") != std::string::npos;
        for (float& v : p->value) {
            if (ends(".running_var")) v = float(rng.uniform(0.3, 3.0));
            else if (ends(".running_mean")) v = float(rng.uniform(-0.5, 0.5));
            else if (bn && ends(".weight")) v = float(rng.uniform(0.5, 1.5));
            else if (bn && ends(".bias")) v = float(rng.uniform(-0.3, 0.3));
        }
    }
    Tensor<float> x = random_tensor<float>(Shape{1, 2, 45, 52}, rng);
    const Tensor<float> fused = net.forward(x.view(), Mode::infer);
    net.set_fusion(false);
    const Tensor<float> plain = net.forward(x.view(), Mode::infer);
    double scale = 0;
    for (float v : plain) scale = std::max(scale, double(std::abs(v)));
    REQUIRE(scale > 0.1);
    REQUIRE(unetpp::tensor_max_abs_diff(fused, plain) <= 1e-4 * scale);
    REQUIRE(unetpp::tensor_max_abs_diff(fused, plain) > 0.0f);  // the folded path really ran
}

TEST_CASE("any input size works and the logits keep it", "[unet][shape]") {
    UNetConfig config;
    config.depth = 3;
    config.base_width = 2;
    UNet<float> net(config);
    for (auto s :
         {Shape{1, 3, 1, 1}, Shape{2, 3, 7, 17}, Shape{1, 3, 33, 8}, Shape{3, 3, 16, 16}}) {
        Tensor<float> x(s);
        x.fill(0.5f);
        const auto& logits = net.forward(x.view(), Mode::infer);
        REQUIRE(logits.shape() == Shape{s[0], 1, s[2], s[3]});
        const auto& prob = net.predict_probabilities(x.view());
        for (float p : prob) REQUIRE((p > 0.0f && p < 1.0f));
    }
}

TEST_CASE("wrong input channels and bad configs are refused with a message naming the culprit",
          "[unet][errors]") {
    UNet<float> net(UNetConfig::unet16());
    Tensor<float> x({1, 4, 16, 16});
    REQUIRE_THROWS_WITH(net.forward(x.view(), Mode::train),
                        Catch::Contains("conv2d \"enc1.conv1\": input has 4 channels, "
                                        "weights expect 3"));
    Tensor<float> ok({1, 3, 16, 16}), dlogits({1, 1, 16, 16});
    net.forward(ok.view(), Mode::infer);
    REQUIRE_THROWS_WITH(net.backward(dlogits.view()), Catch::Contains("Mode::infer"));

    UNetConfig bad;
    bad.depth = 0;
    REQUIRE_THROWS_WITH(UNet<float>(bad), Catch::Contains("depth = 0"));
    bad = UNetConfig{};
    bad.dropout = 1.0;
    REQUIRE_THROWS_WITH(UNet<float>(bad), Catch::Contains("dropout"));
}

TEST_CASE("UNetConfig round-trips through its text form and rejects unknown keys",
          "[unet][config]") {
    UNetConfig c;
    c.in_channels = 1;
    c.out_channels = 2;
    c.depth = 3;
    c.base_width = 8;
    c.batch_norm = true;
    c.dropout = 0.15;
    c.upsample = unetpp::UpsampleKind::bilinear_conv;
    c.activation = unetpp::ActivationKind::elu;
    c.seed = 99;
    UNetConfig back = UNetConfig::parse(c.to_string());
    REQUIRE(back.to_string() == c.to_string());
    REQUIRE(back.same_architecture(c));
    REQUIRE_FALSE(back.same_architecture(UNetConfig::unet16()));
    REQUIRE_THROWS_WITH(UNetConfig::parse("depth=3 widht=8"), Catch::Contains("widht"));
    REQUIRE_THROWS_WITH(UNetConfig::parse("depth=three"), Catch::Contains("three"));
    REQUIRE_THROWS_WITH(UNetConfig::parse("upsample=nearest"), Catch::Contains("nearest"));
}

TEST_CASE("buffers are planned once per shape and keep their storage across steps",
          "[unet][memory]") {
    UNetConfig config;
    config.depth = 2;
    config.base_width = 4;
    config.batch_norm = true;
    UNet<float> net(config);
    Tensor<float> x({2, 3, 16, 16}), dlogits({2, 1, 16, 16}), small({1, 3, 8, 8});
    const float* logits_data = net.forward(x.view(), Mode::train).data();
    net.backward(dlogits.view());
    std::vector<const float*> grads;
    for (auto* p : net.parameters()) grads.push_back(p->grad.data());

    // the same shape again, then a smaller one and back: no storage moves
    net.forward(x.view(), Mode::train);
    net.backward(dlogits.view());
    REQUIRE(net.forward(small.view(), Mode::infer).data() == logits_data);
    REQUIRE(net.forward(x.view(), Mode::train).data() == logits_data);
    net.backward(dlogits.view());
    auto params = net.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) REQUIRE(params[i]->grad.data() == grads[i]);
}

TEST_CASE("inference allocates no gradient buffers and steady-state steps allocate nothing",
          "[unet][memory]") {
    for (bool batch_norm : {false, true}) {
        INFO("batch norm " << batch_norm);
        UNetConfig config;
        config.depth = 2;
        config.base_width = 4;
        config.batch_norm = batch_norm;
        UNet<float> net(config);
        Tensor<float> x({2, 3, 16, 16}), dlogits({2, 1, 16, 16});
        net.forward(x.view(), Mode::infer);
        const int64_t infer_bytes = net.buffer_bytes();
        REQUIRE(infer_bytes > 0);

        net.forward(x.view(), Mode::train);
        net.backward(dlogits.view());
        const int64_t train_bytes = net.buffer_bytes();
        // gradients double the activations at least, and batch norm keeps its conv outputs
        REQUIRE(train_bytes >= 2 * infer_bytes);

        // further steps and inferences at that shape, or at a smaller one, allocate nothing
        Tensor<float> small({1, 3, 8, 8});
        for (int step = 0; step < 2; ++step) {
            net.forward(x.view(), Mode::train);
            net.backward(dlogits.view());
            net.forward(small.view(), Mode::infer);
        }
        REQUIRE(net.buffer_bytes() == train_bytes);
    }
}
