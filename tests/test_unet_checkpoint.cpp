// Saving and loading a UNet with its optimizer; refusing a checkpoint for another architecture.
#include <catch2/catch.hpp>

#include <cstdio>
#include <unistd.h>
#include <string>
#include <unetpp/losses/bce.hpp>
#include <unetpp/model/unet_io.hpp>
#include <unetpp/optim/adam.hpp>

#include "support/gradcheck.hpp"

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;
using unetpp::UNet;
using unetpp::UNetConfig;

namespace {
std::string temp_path(const char* name) {
    return std::string("/tmp/unetpp_test_") + name + "_" + std::to_string(::getpid()) +
           ".safetensors";
}

// One training step on a fixed random batch.
void train_step(UNet<float>& net, unetpp::Adam<float>& adam, uint64_t seed) {
    unetpp::Rng rng(seed);
    Tensor<float> x = unetpp_test::random_tensor<float>(Shape{2, 1, 12, 12}, rng);
    Tensor<float> target({2, 1, 12, 12}), dlogits({2, 1, 12, 12});
    for (int64_t i = 0; i < target.numel(); ++i) target[i] = float(rng.below(2));
    const auto& logits = net.forward(x.view(), Mode::train);
    unetpp::bce_loss<float>(unetpp::BceSpec{}, logits.view(), target.view(), dlogits.view());
    net.backward(dlogits.view());
    adam.step(net.parameters());
}
}  // namespace

TEST_CASE("a saved U-Net and Adam state resume training bit-identically", "[unet][checkpoint]") {
    UNetConfig config;
    config.in_channels = 1;
    config.depth = 2;
    config.base_width = 4;
    config.batch_norm = true;
    const std::string path = temp_path("resume");

    UNet<float> a(config);
    unetpp::Adam<float> adam_a;
    train_step(a, adam_a, 1);
    unetpp::unet_save(path, a, adam_a);
    train_step(a, adam_a, 2);

    UNetConfig other_seed = config;
    other_seed.seed = 1234;  // different initial weights, same architecture
    UNet<float> b(other_seed);
    unetpp::Adam<float> adam_b;
    unetpp::unet_load(path, b, adam_b);
    train_step(b, adam_b, 2);

    auto pa = a.parameters(), pb = b.parameters();
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
        INFO(pa[i]->name);
        REQUIRE(unetpp::tensor_max_abs_diff(pa[i]->value, pb[i]->value) == 0.0f);
    }
    std::remove(path.c_str());
}

TEST_CASE("loading a checkpoint of another architecture is refused, naming both configs",
          "[unet][checkpoint][errors]") {
    UNetConfig config;
    config.depth = 2;
    config.base_width = 4;
    const std::string path = temp_path("arch");
    UNet<float> small(config);
    unetpp::unet_save(path, small);

    UNetConfig wider = config;
    wider.base_width = 8;
    UNet<float> other(wider);
    const float before = other.parameters()[0]->value[0];
    REQUIRE_THROWS_WITH(unetpp::unet_load(path, other),
                        Catch::Contains("different U-Net") && Catch::Contains("base_width=4") &&
                            Catch::Contains("base_width=8"));
    REQUIRE(other.parameters()[0]->value[0] == before);

    const unetpp::Checkpoint ckpt = unetpp::checkpoint_read(path);
    REQUIRE(unetpp::unet_checkpoint_config(ckpt).to_string() == config.to_string());
    std::remove(path.c_str());
}
