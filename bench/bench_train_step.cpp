// Whole-model benchmarks of UNet16 (the Keras tutorial's U-Net: in 3, out 1, depth 4, base 16,
// 1,941,105 parameters, 1.516 GFLOP per 128x128 forward):
//   BM_unet16_train_step   forward, BCE on logits, backward, Adam; batch 16 of 3x128x128
//   BM_unet16_infer        forward only (Mode::infer); batch 16 of 3x128x128
//   BM_unet16_infer_large  forward only on one 3x520x696 image (a large DSB 2018 image; padded
//                          to 528x704 inside the model)
// each at 1 and 2 threads (the benchmark argument). Counters: images/s, and GFLOP/s counting the
// forward's convolution FLOPs (x3 for a training step: forward, backward data, backward weight).
// bench/pytorch_train_step.py runs the same step in PyTorch for the ratio.
//
// Run: build/bench/bench_train_step --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <unetpp/losses/bce.hpp>
#include <unetpp/model/unet.hpp>
#include <unetpp/optim/adam.hpp>
#include <unetpp/parallel.hpp>

namespace {

using unetpp::Mode;
using unetpp::Shape;
using unetpp::Tensor;

// A deterministic batch: smooth-ish random images and a random binary target.
void fill_batch(Tensor<float>& x, Tensor<float>* target) {
    unetpp::Rng rng(1);
    unetpp::init_uniform(x, rng, 0.0, 1.0);
    if (target) {
        for (auto& v : *target) v = rng.uniform() < 0.3 ? 1.0f : 0.0f;
    }
}

void report(benchmark::State& state, int64_t images, double flops_per_image) {
    const double n = double(state.iterations()) * double(images);
    state.counters["images/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
    state.counters["GFLOP/s"] =
        benchmark::Counter(n * flops_per_image * 1e-9, benchmark::Counter::kIsRate);
    state.counters["threads"] = double(unetpp::num_threads());
}

void BM_unet16_train_step(benchmark::State& state) {
    unetpp::set_num_threads(int(state.range(0)));
    constexpr int64_t N = 16, H = 128, W = 128;
    unetpp::UNet<float> net(unetpp::UNetConfig::unet16());
    unetpp::Adam<float> adam;
    auto params = net.parameters();
    Tensor<float> x({N, 3, H, W}), target({N, 1, H, W}), dlogits({N, 1, H, W});
    fill_batch(x, &target);
    auto step = [&]() {
        const Tensor<float>& logits = net.forward(x.view(), Mode::train);
        float loss = unetpp::bce_loss<float>(unetpp::BceSpec{}, logits.view(), target.view(),
                                             dlogits.view());
        net.backward(dlogits.view());
        adam.step(params);
        return loss;
    };
    step();  // warm-up: plans the buffers and creates Adam's moments outside the timing
    for (auto _ : state) {
        float loss = step();
        benchmark::DoNotOptimize(loss);
    }
    report(state, N, 3 * net.forward_flops(H, W));
    unetpp::set_num_threads(0);
}

void BM_unet16_infer(benchmark::State& state) {
    unetpp::set_num_threads(int(state.range(0)));
    constexpr int64_t N = 16, H = 128, W = 128;
    unetpp::UNet<float> net(unetpp::UNetConfig::unet16());
    Tensor<float> x({N, 3, H, W});
    fill_batch(x, nullptr);
    net.forward(x.view(), Mode::infer);  // warm-up: plans the buffers outside the timing
    for (auto _ : state) {
        const Tensor<float>& logits = net.forward(x.view(), Mode::infer);
        benchmark::DoNotOptimize(logits.data());
    }
    report(state, N, net.forward_flops(H, W));
    unetpp::set_num_threads(0);
}

void BM_unet16_infer_large(benchmark::State& state) {
    unetpp::set_num_threads(int(state.range(0)));
    constexpr int64_t H = 520, W = 696;
    unetpp::UNet<float> net(unetpp::UNetConfig::unet16());
    Tensor<float> x({1, 3, H, W});
    fill_batch(x, nullptr);
    net.forward(x.view(), Mode::infer);  // warm-up: plans the buffers outside the timing
    for (auto _ : state) {
        const Tensor<float>& logits = net.forward(x.view(), Mode::infer);
        benchmark::DoNotOptimize(logits.data());
    }
    report(state, 1, net.forward_flops(H, W));
    unetpp::set_num_threads(0);
}

}  // namespace

BENCHMARK(BM_unet16_train_step)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet16_infer)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet16_infer_large)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
