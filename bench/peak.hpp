#pragma once
// Shared helpers for the kernel benchmarks: the machine's measured FP32 FMA peak, the U-Net
// layer shapes, GFLOP/s counters, and a reporter that prints ours-vs-Eigen ratios at the end.

#include <benchmark/benchmark.h>

#include <unetpp/parallel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace unetpp_bench {

// One 3x3 convolution of the 16-wide U-Net: input channels, output channels, image side.
struct Layer {
    int64_t C, K, H;
};

// Encoder then decoder 3x3 convolutions of UNet16 (first width 16) on 128x128 inputs.
inline const std::vector<Layer>& unet16_layers() {
    static const std::vector<Layer> layers = {
        {3, 16, 128},  {16, 16, 128}, {16, 32, 64},   {32, 32, 64},  {32, 64, 32},
        {64, 64, 32},  {64, 128, 16}, {128, 128, 16}, {128, 256, 8}, {256, 256, 8},
        {256, 128, 16}, {128, 64, 32}, {64, 32, 64},  {32, 16, 128}};
    return layers;
}

inline std::string layer_name(const Layer& l) {
    return std::to_string(l.C) + "x" + std::to_string(l.K) + "x" + std::to_string(l.H);
}

// FP32 GFLOP/s of a register-only FMA loop on `threads` threads (a multiply-add is 2 FLOPs):
// the peak every kernel is measured against. Uses GCC vector types so the compiler emits the
// widest FMA the build targets.
inline double measure_fma_peak_gflops(int threads) {
    typedef float Vec __attribute__((vector_size(64)));
    constexpr int kChains = 16;         // independent accumulators: hides the FMA latency
    constexpr int64_t kIters = 4000000;
    const double flops_per_thread = 2.0 * kChains * (sizeof(Vec) / sizeof(float)) * kIters;
    double best = 0;
    // start the thread team (and let the clock settle) outside the timing
    unetpp::set_num_threads(threads);
    std::vector<float> warm(threads);
    unetpp::parallel_for(0, threads, [&](int64_t t) { warm[t] = float(t); });
    benchmark::DoNotOptimize(warm.data());
    for (int rep = 0; rep < 7; ++rep) {
        std::vector<float> sink(threads);
        auto start = std::chrono::steady_clock::now();
        unetpp::parallel_for(0, threads, [&](int64_t t) {
            Vec acc[kChains];
            Vec m, a;
            for (int l = 0; l < int(sizeof(Vec) / sizeof(float)); ++l) {
                m[l] = 0.999f;
                a[l] = 0.001f * float(t + 1);
            }
            for (int i = 0; i < kChains; ++i) acc[i] = a * float(i);
            for (int64_t it = 0; it < kIters; ++it) {
                for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * m + a;
            }
            float s = 0;
            for (int i = 0; i < kChains; ++i) s += acc[i][0];
            sink[t] = s;
        });
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        benchmark::DoNotOptimize(sink.data());
        best = std::max(best, threads * flops_per_thread / secs * 1e-9);
    }
    unetpp::set_num_threads(0);
    return best;
}

// The peak for 1 and 2 threads, measured once per process.
inline double fma_peak_gflops(int threads) {
    static std::map<int, double> cache;
    auto it = cache.find(threads);
    if (it != cache.end()) return it->second;
    return cache[threads] = measure_fma_peak_gflops(threads);
}

// Sets GFLOP/s and fraction-of-peak counters for `flops` per iteration on `threads` threads.
inline void set_flop_counters(benchmark::State& state, double flops, int threads) {
    state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["peak_GFLOPS"] = fma_peak_gflops(threads);
    state.counters["flops_per_iter"] = flops;
}

// Console output plus, at the end, a table pairing every "BM_x/rest" with "BM_x_eigen/rest":
// GFLOP/s of both, the fraction of the peak, and the speed ratio ours / Eigen.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            if (run.run_type != Run::RT_Iteration || run.iterations == 0) continue;
            auto flops = run.counters.find("flops_per_iter");
            auto peak = run.counters.find("peak_GFLOPS");
            if (flops == run.counters.end()) continue;
            double secs = run.real_accumulated_time / double(run.iterations);
            Entry e{double(flops->second) * 1e-9 / secs, peak == run.counters.end() ? 0.0 : double(peak->second)};
            results_[run.benchmark_name()] = e;
            order_.push_back(run.benchmark_name());
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\n%-44s %9s %7s %9s %8s\n", "benchmark", "GFLOP/s", "%peak", "Eigen", "ours/Eig");
        for (const std::string& name : order_) {
            if (name.find("_eigen/") != std::string::npos) continue;
            const Entry& e = results_[name];
            std::string eigen = eigen_name(name);
            auto it = results_.find(eigen);
            std::printf("%-44s %9.1f %6.1f%%", name.c_str(), e.gflops,
                        e.peak > 0 ? 100.0 * e.gflops / e.peak : 0.0);
            if (it != results_.end()) {
                std::printf(" %9.1f %8.2f", it->second.gflops, e.gflops / it->second.gflops);
            }
            std::printf("\n");
        }
    }

private:
    struct Entry {
        double gflops = 0, peak = 0;
    };
    static std::string eigen_name(const std::string& name) {
        auto slash = name.find('/');
        if (slash == std::string::npos) return name + "_eigen";
        return name.substr(0, slash) + "_eigen" + name.substr(slash);
    }
    std::map<std::string, Entry> results_;
    std::vector<std::string> order_;
};

}  // namespace unetpp_bench
