// BM_sgemm: unetpp::gemm against Eigen's GEMM on the GEMM shapes a U-Net's 3x3 convolutions
// lower to (one image), at 1 and 2 threads, with GFLOP/s, fraction of the measured FMA peak and
// the ours / Eigen ratio in a table at the end.
//
//   fwd   C[K, H*W]   = W[K, 9C] * col[9C, H*W]       (forward, per image)
//   wgt   C[K, 9C]    = dY[K, H*W] * col[9C, H*W]^T   (weight gradient, per image)
//
// Run: bench_gemm [--benchmark_filter=...] [--benchmark_min_time=0.05]
#include <Eigen/Core>

#include <benchmark/benchmark.h>

#include <unetpp/kernels/gemm.hpp>
#include <unetpp/random.hpp>

#include "peak.hpp"

#include <string>
#include <vector>

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Problem {
    unetpp::GemmSpec spec;
    std::vector<float> a, b, c;
};

Problem make_problem(int64_t M, int64_t N, int64_t K, bool trans_b) {
    Problem p;
    p.spec.M = M, p.spec.N = N, p.spec.K = K, p.spec.trans_b = trans_b;
    p.spec.lda = K, p.spec.ldb = trans_b ? K : N, p.spec.ldc = N;
    unetpp::Rng rng(1);
    p.a.resize(M * K), p.b.resize(K * N), p.c.resize(M * N);
    for (auto& v : p.a) v = float(rng.uniform(-1, 1));
    for (auto& v : p.b) v = float(rng.uniform(-1, 1));
    return p;
}

void bm_sgemm(benchmark::State& state, Problem p, int threads) {
    unetpp::set_num_threads(threads);
    for (auto _ : state) {
        unetpp::gemm(p.spec, p.a.data(), p.b.data(), p.c.data());
        benchmark::DoNotOptimize(p.c.data());
        benchmark::ClobberMemory();
    }
    unetpp::set_num_threads(0);
    unetpp_bench::set_flop_counters(state, 2.0 * p.spec.M * p.spec.N * p.spec.K, threads);
}

void bm_sgemm_eigen(benchmark::State& state, Problem p, int threads) {
    Eigen::setNbThreads(threads);
    const auto& s = p.spec;
    Eigen::Map<const RowMatrix> a(p.a.data(), s.M, s.K);
    Eigen::Map<RowMatrix> c(p.c.data(), s.M, s.N);
    for (auto _ : state) {
        if (s.trans_b) {
            c.noalias() = a * Eigen::Map<const RowMatrix>(p.b.data(), s.N, s.K).transpose();
        } else {
            c.noalias() = a * Eigen::Map<const RowMatrix>(p.b.data(), s.K, s.N);
        }
        benchmark::DoNotOptimize(p.c.data());
        benchmark::ClobberMemory();
    }
    Eigen::setNbThreads(0);
    unetpp_bench::set_flop_counters(state, 2.0 * s.M * s.N * s.K, threads);
}

void register_all() {
    for (const auto& layer : unetpp_bench::unet16_layers()) {
        const int64_t pixels = layer.H * layer.H, crs = 9 * layer.C;
        for (int threads : {1, 2}) {
            for (bool wgt : {false, true}) {
                Problem p = wgt ? make_problem(layer.K, crs, pixels, true)
                                : make_problem(layer.K, pixels, crs, false);
                std::string tail = std::string(wgt ? "wgt/" : "fwd/") +
                                   unetpp_bench::layer_name(layer) + "/t" + std::to_string(threads);
                unetpp_bench::register_benchmark("BM_sgemm/" + tail, bm_sgemm, p, threads)
                    ->Unit(benchmark::kMicrosecond)->UseRealTime();
                unetpp_bench::register_benchmark("BM_sgemm_eigen/" + tail, bm_sgemm_eigen, p,
                                                 threads)
                    ->Unit(benchmark::kMicrosecond)->UseRealTime();
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    unetpp_bench::RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
