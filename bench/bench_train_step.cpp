// Whole-model benchmarks of UNet16 (the Keras tutorial's U-Net: in 3, out 1, depth 4, base 16,
// 1,941,105 parameters, 1.516 GFLOP per 128x128 forward):
//   BM_unet16_train_step   forward, BCE on logits, backward, Adam; batch 16 of 3x128x128
//   BM_unet16_infer        forward only (Mode::infer); batch 16 of 3x128x128
//   BM_unet16_infer_large  forward only on one 3x520x696 image (a large DSB 2018 image; padded
//                          to 528x704 inside the model)
//   ..._unfused            the same with UNet::set_fusion(false): every layer on its own, no
//                          ReLU or (inference) batch norm fused into the convolutions
// and the nucleus pipeline's model (1 input and 2 output channels, batch norm):
//   BM_nuclei_train_step   batch 8 of 1x256x256, as nuclei_train trains it
//   BM_nuclei_infer_large  (and _unfused) one 1x520x696 image, as nuclei_predict runs it
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

// The nucleus pipeline's model (examples/nuclei_train defaults): 1 input channel, 2 outputs,
// batch norm after every convolution; trained on batches of 8 crops of 256.
unetpp::UNetConfig nuclei_config() {
    unetpp::UNetConfig c;
    c.in_channels = 1;
    c.out_channels = 2;
    c.batch_norm = true;
    return c;
}

// One training step (forward, BCE, backward, Adam) on batches of N x C x H x W.
void train_step(benchmark::State& state, const unetpp::UNetConfig& config, int64_t N, int64_t H,
                int64_t W, bool fusion) {
    unetpp::set_num_threads(int(state.range(0)));
    const int64_t C = config.in_channels, K = config.out_channels;
    unetpp::UNet<float> net(config);
    net.set_fusion(fusion);
    unetpp::Adam<float> adam;
    auto params = net.parameters();
    Tensor<float> x({N, C, H, W}), target({N, K, H, W}), dlogits({N, K, H, W});
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

// Inference forwards on N x C x H x W.
void infer(benchmark::State& state, const unetpp::UNetConfig& config, int64_t N, int64_t H,
           int64_t W, bool fusion) {
    unetpp::set_num_threads(int(state.range(0)));
    unetpp::UNet<float> net(config);
    net.set_fusion(fusion);
    Tensor<float> x({N, config.in_channels, H, W});
    fill_batch(x, nullptr);
    net.forward(x.view(), Mode::infer);  // warm-up: plans the buffers outside the timing
    for (auto _ : state) {
        const Tensor<float>& logits = net.forward(x.view(), Mode::infer);
        benchmark::DoNotOptimize(logits.data());
    }
    report(state, N, net.forward_flops(H, W));
    unetpp::set_num_threads(0);
}

const unetpp::UNetConfig kUnet16 = unetpp::UNetConfig::unet16();

void BM_unet16_train_step(benchmark::State& s) { train_step(s, kUnet16, 16, 128, 128, true); }
void BM_unet16_infer(benchmark::State& s) { infer(s, kUnet16, 16, 128, 128, true); }
void BM_unet16_infer_large(benchmark::State& s) { infer(s, kUnet16, 1, 520, 696, true); }
// The same with every layer on its own (UNet::set_fusion(false)), for the fusion's gain.
void BM_unet16_train_step_unfused(benchmark::State& s) {
    train_step(s, kUnet16, 16, 128, 128, false);
}
void BM_unet16_infer_large_unfused(benchmark::State& s) { infer(s, kUnet16, 1, 520, 696, false); }
// The nucleus model, as nuclei_train and nuclei_predict run it.
void BM_nuclei_train_step(benchmark::State& s) {
    train_step(s, nuclei_config(), 8, 256, 256, true);
}
void BM_nuclei_infer_large(benchmark::State& s) { infer(s, nuclei_config(), 1, 520, 696, true); }
void BM_nuclei_infer_large_unfused(benchmark::State& s) {
    infer(s, nuclei_config(), 1, 520, 696, false);
}

}  // namespace

#define UNETPP_STEP_BENCH(fn) \
    BENCHMARK(fn)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()
UNETPP_STEP_BENCH(BM_unet16_train_step);
UNETPP_STEP_BENCH(BM_unet16_infer);
UNETPP_STEP_BENCH(BM_unet16_infer_large);
UNETPP_STEP_BENCH(BM_unet16_train_step_unfused);
UNETPP_STEP_BENCH(BM_unet16_infer_large_unfused);
UNETPP_STEP_BENCH(BM_nuclei_train_step);
UNETPP_STEP_BENCH(BM_nuclei_infer_large);
UNETPP_STEP_BENCH(BM_nuclei_infer_large_unfused);

BENCHMARK_MAIN();
