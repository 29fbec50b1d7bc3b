// BM_conv_transpose2d: the 2x2 stride-2 transposed convolutions of UNet16's decoder at batch 16,
// forward and both backward passes, at 1 and 2 threads, against the scalar reference kernels
// (one thread), with GFLOP/s and a table of ratios at the end.
//
//   FLOPs per pass = 2 * N * C * K * 4 * H * W     (each input pixel stamps a K x 2 x 2 block)
//   layers (C -> K, H -> 2H): 256->128 8->16, 128->64 16->32, 64->32 32->64, 32->16 64->128
//
// Run: bench_conv_transpose2d [--benchmark_filter=...] [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <unetpp/kernels/conv_transpose2d.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include "peak.hpp"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr int64_t kBatch = 16;

struct Layer {
    int64_t C, K, H;  // input channels, output channels, input side (output side 2H)
};
const std::vector<Layer> kLayers = {{256, 128, 8}, {128, 64, 16}, {64, 32, 32}, {32, 16, 64}};

enum class Pass { kForward, kBackwardData, kBackwardWeight };
const char* pass_name(Pass p) {
    return p == Pass::kForward ? "fwd" : p == Pass::kBackwardData ? "bwd_data" : "bwd_weight";
}

struct Problem {
    unetpp::ConvTranspose2dSpec spec;
    unetpp::Tensor<float> x, w, b, y, dx, dw, db;

    explicit Problem(const Layer& l) : spec{l.C, l.K} {
        unetpp::Rng rng(3);
        x = unetpp::Tensor<float>({kBatch, l.C, l.H, l.H});
        w = unetpp::Tensor<float>({l.C, l.K, 2, 2});
        b = unetpp::Tensor<float>({l.K});
        y = unetpp::Tensor<float>({kBatch, l.K, 2 * l.H, 2 * l.H});
        dx = unetpp::Tensor<float>(x.shape());
        dw = unetpp::Tensor<float>(w.shape());
        db = unetpp::Tensor<float>(b.shape());
        for (auto* t : {&x, &w, &b, &y}) unetpp::init_uniform(*t, rng, -1.0, 1.0);
    }
    double flops() const { return 2.0 * kBatch * spec.C * spec.K * 4 * x.h() * x.w(); }

    void run(Pass pass, bool reference) {
        using namespace unetpp;
        switch (pass) {
            case Pass::kForward:
                if (reference) conv_transpose2d_forward_reference<float>(spec, x, w, b.data(), y);
                else conv_transpose2d_forward<float>(spec, x, w, b.data(), y);
                break;
            case Pass::kBackwardData:  // y serves as dy
                if (reference) conv_transpose2d_backward_data_reference<float>(spec, y, w, dx);
                else conv_transpose2d_backward_data<float>(spec, y, w, dx);
                break;
            case Pass::kBackwardWeight:
                if (reference) {
                    conv_transpose2d_backward_weight_reference<float>(spec, x, y, dw, db.data());
                } else {
                    conv_transpose2d_backward_weight<float>(spec, x, y, dw, db.data());
                }
                break;
        }
    }
};

void bm_conv_transpose2d(benchmark::State& state, Layer layer, Pass pass, int threads,
                         bool reference) {
    Problem p(layer);
    unetpp::set_num_threads(threads);
    for (auto _ : state) {
        p.run(pass, reference);
        benchmark::DoNotOptimize(p.y.data());
        benchmark::DoNotOptimize(p.dx.data());
        benchmark::DoNotOptimize(p.dw.data());
        benchmark::ClobberMemory();
    }
    unetpp::set_num_threads(0);
    state.counters["GFLOPS"] =
        benchmark::Counter(p.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["flops_per_iter"] = p.flops();
}

std::string layer_name(const Layer& l) {
    return std::to_string(l.C) + "x" + std::to_string(l.K) + "x" + std::to_string(l.H);
}

// Console output, then one row per (pass, layer): ours at 1 and 2 threads, the reference, and
// the ratios ours(1 thread) / reference and ours(2 threads) / ours(1 thread).
class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            samples_.add(unetpp_bench::registered_name(run.benchmark_name()), run);
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        const double peak = unetpp_bench::fma_peak_gflops(1);
        std::printf("\nGFLOP/s%s; FP32 FMA peak measured now: %.0f on 1 thread\n",
                    samples_.repetitions() > 1 ? " (best of the repeated runs)" : "", peak);
        std::printf("%-24s %9s %7s %9s %9s %9s %9s\n", "pass/layer (CxKxH)", "ours t1", "%peak",
                    "ours t2", "ref t1", "t1/ref", "t2/t1");
        for (Pass pass : {Pass::kForward, Pass::kBackwardData, Pass::kBackwardWeight}) {
            for (const Layer& l : kLayers) {
                const std::string tail = std::string(pass_name(pass)) + "/" + layer_name(l);
                const double t1 = get("BM_conv_transpose2d/" + tail + "/t1");
                const double t2 = get("BM_conv_transpose2d/" + tail + "/t2");
                const double ref = get("BM_conv_transpose2d_reference/" + tail + "/t1");
                std::printf("%-24s %9.1f %6.1f%% %9.1f %9.2f %9.1f %9.2f\n", tail.c_str(), t1,
                            100.0 * t1 / peak, t2, ref, ref > 0 ? t1 / ref : 0.0,
                            t1 > 0 ? t2 / t1 : 0.0);
            }
        }
    }

private:
    double get(const std::string& name) const { return samples_.best(name); }
    unetpp_bench::GflopsSamples samples_;
};

void register_all() {
    for (Pass pass : {Pass::kForward, Pass::kBackwardData, Pass::kBackwardWeight}) {
        for (const Layer& l : kLayers) {
            const std::string tail = std::string(pass_name(pass)) + "/" + layer_name(l);
            for (int threads : {1, 2}) {
                unetpp_bench::register_benchmark(
                    "BM_conv_transpose2d/" + tail + "/t" + std::to_string(threads),
                    bm_conv_transpose2d, l, pass, threads, false)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
            }
            // The reference is single-threaded: one run is enough.
            unetpp_bench::register_benchmark("BM_conv_transpose2d_reference/" + tail + "/t1",
                                             bm_conv_transpose2d, l, pass, 1, true)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->Iterations(2);
        }
    }
}

}  // namespace

// A custom main in place of BENCHMARK_MAIN(), to print the ratio table after the runs.
int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
