// Builds against the installed headers through the umbrella header alone: a tensor, then a tiny
// U-Net's forward pass. Exits non-zero on failure.
#include <unetpp/unet.hpp>

#include <cmath>
#include <cstdio>

int main() {
    unetpp::Tensor<float> x({1, 2, 3, 4});
    x.fill(1.5f);
    float total = 0;
    for (float v : x) total += v;
    std::printf("consumer: %lld elements, sum %.1f\n", static_cast<long long>(x.numel()), total);
    if (total != 36.0f) return 1;

    unetpp::UNetConfig config;
    config.in_channels = 1;
    config.out_channels = 1;
    config.depth = 1;
    config.base_width = 4;
    unetpp::UNet<float> net(config);
    unetpp::Tensor<float> image({1, 1, 10, 12});
    image.fill(0.25f);
    const unetpp::Tensor<float>& p = net.predict_probabilities(image.view());
    std::printf("consumer: U-Net output %s\n", p.shape().str().c_str());
    for (float v : p) {
        if (!(v >= 0.0f && v <= 1.0f)) return 1;
    }
    return p.dim(2) == 10 && p.dim(3) == 12 ? 0 : 1;
}
