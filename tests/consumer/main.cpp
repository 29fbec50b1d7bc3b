// Builds against the installed headers and checks a tensor works; exits non-zero on failure.
#include <unetpp/unet.hpp>

#include <cstdio>

int main() {
    unetpp::Tensor<float> x({1, 2, 3, 4});
    x.fill(1.5f);
    float total = 0;
    for (float v : x) total += v;
    std::printf("consumer: %lld elements, sum %.1f\n", static_cast<long long>(x.numel()), total);
    return total == 36.0f ? 0 : 1;
}
