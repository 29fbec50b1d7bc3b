#pragma once
// Shared helpers for the kernel benchmarks: the machine's measured FP32 FMA peak, the U-Net
// layer shapes, GFLOP/s counters, and a reporter that prints ours-vs-Eigen ratios at the end
// (the best of the runs, when --benchmark_repetitions repeats them).

#include <benchmark/benchmark.h>

#include <unetpp/parallel.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
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
// the peak every kernel is measured against. Uses GCC vector types of the widest width the build
// targets, and as many accumulators as fit in its registers beside the two operands: 16 of 32
// zmm on AVX-512, 10 of 16 ymm on AVX2 (enough independent chains to hide a 4-5 cycle FMA
// latency on two pipes). A vector wider than the build's registers would be split in two and
// its 16 chains would spill, which once reported a third of the AVX2 peak.
inline double measure_fma_peak_gflops(int threads) {
#if defined(__AVX512F__)
    typedef float Vec __attribute__((vector_size(64)));
    constexpr int kChains = 16;
#elif defined(__AVX__)
    typedef float Vec __attribute__((vector_size(32)));
    constexpr int kChains = 10;
#else
    typedef float Vec __attribute__((vector_size(16)));
    constexpr int kChains = 10;
#endif
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
                // unrolled, so that each accumulator lives in a register, not in memory
#pragma GCC unroll 16
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

// Names in the order the benchmark registered them (register_benchmark below), so that the
// summary tables keep that order when --benchmark_enable_random_interleaving shuffles the runs.
inline std::vector<std::string>& registration_order() {
    static std::vector<std::string> names;
    return names;
}

// benchmark::RegisterBenchmark, remembering the name's place in registration_order().
template <class... Args>
benchmark::internal::Benchmark* register_benchmark(const std::string& name, Args&&... args) {
    registration_order().push_back(name);
    return benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...);
}

// The registered name of a run: its benchmark_name() less the "/iterations:N" and
// "/real_time" that Google Benchmark appends.
inline std::string registered_name(std::string name) {
    for (const char* suffix : {"/iterations:", "/real_time"}) name = name.substr(0, name.find(suffix));
    return name;
}

// GFLOP/s of every finished run, by benchmark name. With --benchmark_repetitions=N (best with
// --benchmark_enable_random_interleaving=true) a name gets N samples; the summary tables then
// report the best, the run least disturbed by the rest of a shared machine, and the median.
class GflopsSamples {
public:
    // Records the run under `name` if it is a measured run with a flops_per_iter counter.
    void add(const std::string& name, const benchmark::BenchmarkReporter::Run& run) {
        using Run = benchmark::BenchmarkReporter::Run;
        if (run.run_type != Run::RT_Iteration || run.iterations == 0) return;
        auto flops = run.counters.find("flops_per_iter");
        if (flops == run.counters.end()) return;
        const double secs = run.real_accumulated_time / double(run.iterations);
        auto& list = samples_[name];
        if (list.empty()) order_.push_back(name);
        list.push_back(double(flops->second) * 1e-9 / secs);
    }
    // 0 for a name that has no sample.
    double best(const std::string& name) const {
        auto it = samples_.find(name);
        return it == samples_.end() ? 0.0 : *std::max_element(it->second.begin(), it->second.end());
    }
    double median(const std::string& name) const {
        auto it = samples_.find(name);
        if (it == samples_.end()) return 0.0;
        std::vector<double> v = it->second;
        std::sort(v.begin(), v.end());
        const std::size_t n = v.size();
        return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    }
    // The most samples any name has.
    std::size_t repetitions() const {
        std::size_t n = 0;
        for (const auto& kv : samples_) n = std::max(n, kv.second.size());
        return n;
    }
    // Names in registration order (registration_order), then any others in the order of their
    // first sample.
    std::vector<std::string> names() const {
        std::map<std::string, std::size_t> rank;
        const auto& reg = registration_order();
        for (std::size_t i = 0; i < reg.size(); ++i) rank.emplace(reg[i], i);
        std::vector<std::string> out = order_;
        auto key = [&](const std::string& n) {
            auto it = rank.find(registered_name(n));
            return it == rank.end() ? reg.size() : it->second;
        };
        std::stable_sort(out.begin(), out.end(),
                         [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
        return out;
    }

private:
    std::map<std::string, std::vector<double>> samples_;
    std::vector<std::string> order_;
};

// Console output plus, at the end, a table pairing every "BM_x/rest" with "BM_x_eigen/rest":
// GFLOP/s of both, the fraction of the peak, and the speed ratio ours / Eigen (best against
// best, and the median beside it when the runs were repeated).
class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            samples_.add(run.benchmark_name(), run);
            auto peak = run.counters.find("peak_GFLOPS");
            if (peak != run.counters.end()) peak_[run.benchmark_name()] = double(peak->second);
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        const bool repeated = samples_.repetitions() > 1;
        if (repeated) {
            std::printf("\nBest of %zu runs of each benchmark (median in the last column)\n",
                        samples_.repetitions());
        }
        std::printf("\n%-44s %9s %7s %9s %8s%s\n", "benchmark", "GFLOP/s", "%peak", "Eigen",
                    "ours/Eig", repeated ? "   median" : "");
        for (const std::string& name : samples_.names()) {
            if (name.find("_eigen/") != std::string::npos) continue;
            const double ours = samples_.best(name), eigen = samples_.best(eigen_name(name));
            const double peak = peak_.count(name) ? peak_.at(name) : 0.0;
            std::printf("%-44s %9.1f %6.1f%%", name.c_str(), ours,
                        peak > 0 ? 100.0 * ours / peak : 0.0);
            if (eigen > 0) {
                std::printf(" %9.1f %8.2f", eigen, ours / eigen);
            } else if (repeated) {
                std::printf(" %9s %8s", "", "");
            }
            if (repeated) std::printf(" %8.1f", samples_.median(name));
            std::printf("\n");
        }
    }

private:
    static std::string eigen_name(const std::string& name) {
        auto slash = name.find('/');
        if (slash == std::string::npos) return name + "_eigen";
        return name.substr(0, slash) + "_eigen" + name.substr(slash);
    }
    GflopsSamples samples_;
    std::map<std::string, double> peak_;
};

}  // namespace unetpp_bench
