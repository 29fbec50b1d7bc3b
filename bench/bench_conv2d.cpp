// BM_conv2d_*: the three directions of a convolution on the UNet16 3x3 layers at batch 16, at 1
// and 2 threads, with GFLOP/s and fraction of the measured FMA peak, next to an im2col + Eigen GEMM
// forward; a table at the end gives the ours / Eigen ratio.
//
// Run the U-Net sweep:     bench_conv2d [--benchmark_min_time=0.05] [--benchmark_filter=...]
//                                       [--algo all]  (adds the forward of each algorithm)
// Run one shape of yours:  bench_conv2d --shape N,C,K,H,W,R,stride,pad [--threads 2]
//                                       [--algo all|fast|gemm|direct|reference|eigen]
// Algorithms: fast = what conv2d_forward picks (and the backward passes), gemm = the im2col +
// packed GEMM lowering, direct = the direct 3x3 kernel (3x3 stride 1 pad 1 on AVX-512 only),
// reference = the scalar loops (slow: only with --shape), eigen = im2col + Eigen's GEMM.
#include <Eigen/Core>

#include <benchmark/benchmark.h>

#include <unetpp/kernels/conv2d.hpp>
#include <unetpp/random.hpp>

#include "peak.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using unetpp::Conv2dSpec;
using unetpp::Shape;
using unetpp::Tensor;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct ConvShape {
    int64_t N = 16, C = 16, K = 16, H = 128, W = 128, R = 3, stride = 1, pad = 1;
};

// Inputs and outputs of one convolution, filled once.
struct ConvData {
    Conv2dSpec spec;
    Tensor<float> x, w, b, y, dy, dx, dw, db;

    explicit ConvData(const ConvShape& s) : spec{s.C, s.K, s.R, s.R, s.stride, s.pad} {
        unetpp::Rng rng(3);
        x = Tensor<float>(Shape{s.N, s.C, s.H, s.W});
        w = Tensor<float>(Shape{s.K, s.C, s.R, s.R});
        b = Tensor<float>(Shape{s.K});
        Shape ys{s.N, s.K, spec.out_h(s.H), spec.out_w(s.W)};
        y = Tensor<float>(ys);
        dy = Tensor<float>(ys);
        dx = Tensor<float>(x.shape());
        dw = Tensor<float>(w.shape());
        db = Tensor<float>(b.shape());
        unetpp::init_uniform(x, rng, -1, 1);
        unetpp::init_uniform(w, rng, -0.1, 0.1);
        unetpp::init_uniform(dy, rng, -1, 1);
    }
    // 2 * N * K * OH * OW * C * R * S: the same count for all three directions.
    double flops() const {
        return 2.0 * double(y.numel()) * double(spec.C * spec.R * spec.S);
    }
};

enum class Direction { kForward, kBackwardData, kBackwardWeight };
enum class Algo { kFast, kGemm, kDirect, kReference, kEigen };

const char* algo_suffix(Algo a) {
    switch (a) {
        case Algo::kGemm: return "_gemm";
        case Algo::kDirect: return "_direct";
        case Algo::kReference: return "_reference";
        case Algo::kEigen: return "_eigen";
        default: return "";
    }
}

const char* direction_name(Direction d) {
    switch (d) {
        case Direction::kForward: return "forward";
        case Direction::kBackwardData: return "backward_data";
        default: return "backward_weight";
    }
}

// im2col + Eigen GEMM forward, image by image; Eigen threads its GEMM as configured.
void eigen_forward(ConvData& d) {
    const auto& s = d.spec;
    const unetpp::detail::ConvGeometry g(s, d.x.h(), d.x.w());
    const int64_t crs = s.C * s.R * s.S, pixels = g.OH * g.OW;
    static std::vector<float> col;
    col.resize(crs * pixels);
    Eigen::Map<const RowMatrix> w(d.w.data(), s.K, crs);
    Eigen::Map<const RowMatrix> cols(col.data(), crs, pixels);
    for (int64_t n = 0; n < d.x.n(); ++n) {
        unetpp::detail::im2col(s, g, d.x.data() + n * s.C * g.H * g.W, col.data());
        Eigen::Map<RowMatrix> y(d.y.data() + n * s.K * pixels, s.K, pixels);
        y.noalias() = w * cols;
        for (int64_t k = 0; k < s.K; ++k) y.row(k).array() += d.b[k];
    }
}

void run_once(ConvData& d, Direction dir, Algo algo) {
    auto& s = d.spec;
    if (algo == Algo::kEigen) {
        eigen_forward(d);
    } else if (algo == Algo::kGemm) {
        unetpp::conv2d_forward_gemm<float>(s, d.x, d.w, d.b.data(), d.y);
    } else if (algo == Algo::kDirect) {
        unetpp::conv2d_forward_direct<float>(s, d.x, d.w, d.b.data(), d.y);
    } else if (dir == Direction::kForward) {
        if (algo == Algo::kFast) unetpp::conv2d_forward<float>(s, d.x, d.w, d.b.data(), d.y);
        else unetpp::conv2d_forward_reference<float>(s, d.x, d.w, d.b.data(), d.y);
    } else if (dir == Direction::kBackwardData) {
        if (algo == Algo::kFast) unetpp::conv2d_backward_data<float>(s, d.dy, d.w, d.dx);
        else unetpp::conv2d_backward_data_reference<float>(s, d.dy, d.w, d.dx);
    } else {
        if (algo == Algo::kFast) {
            unetpp::conv2d_backward_weight<float>(s, d.x, d.dy, d.dw, d.db.data());
        } else {
            unetpp::conv2d_backward_weight_reference<float>(s, d.x, d.dy, d.dw, d.db.data());
        }
    }
}

void bm_conv(benchmark::State& state, std::shared_ptr<ConvData> d, Direction dir, Algo algo,
             int threads) {
    unetpp::set_num_threads(threads);
    Eigen::setNbThreads(threads);
    for (auto _ : state) {
        run_once(*d, dir, algo);
        benchmark::ClobberMemory();
    }
    unetpp::set_num_threads(0);
    Eigen::setNbThreads(0);
    unetpp_bench::set_flop_counters(state, d->flops(), threads);
}

// Registers every direction of `algos` that exists for the shape: gemm, direct and eigen are
// forward-only, direct only where conv2d_direct_applies.
void register_conv(const std::string& shape_name, const ConvShape& shape, int threads,
                   const std::vector<Algo>& algos) {
    auto data = std::make_shared<ConvData>(shape);
    std::string tail = "/" + shape_name + "/t" + std::to_string(threads);
    for (Direction dir : {Direction::kForward, Direction::kBackwardData,
                          Direction::kBackwardWeight}) {
        std::string base = std::string("BM_conv2d_") + direction_name(dir);
        for (Algo algo : algos) {
            const bool forward_only = algo == Algo::kGemm || algo == Algo::kDirect ||
                                      algo == Algo::kEigen;
            if (forward_only && dir != Direction::kForward) continue;
            if (algo == Algo::kDirect && !unetpp::conv2d_direct_applies<float>(data->spec)) {
                continue;
            }
            const std::string name = base + algo_suffix(algo) + tail;
            unetpp_bench::register_benchmark(name, bm_conv, data, dir, algo, threads)
                ->Unit(benchmark::kMillisecond)->UseRealTime();
        }
    }
}

// Removes "--name value" from argv; returns the value or "" when absent.
std::string take_option(int& argc, char** argv, const char* name) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) {
            std::string value = argv[i + 1];
            for (int j = i; j + 2 < argc; ++j) argv[j] = argv[j + 2];
            argc -= 2;
            return value;
        }
    }
    return "";
}

bool parse_shape(const std::string& text, ConvShape& s) {
    std::vector<int64_t> v;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) v.push_back(std::atoll(item.c_str()));
    if (v.size() != 8) return false;
    s = ConvShape{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    for (int64_t x : v) {
        if (x < 0) return false;
    }
    return s.N > 0 && s.C > 0 && s.K > 0 && s.R > 0 && s.stride > 0 && s.H + 2 * s.pad >= s.R &&
           s.W + 2 * s.pad >= s.R;
}

}  // namespace

int main(int argc, char** argv) {
    std::string shape_text = take_option(argc, argv, "--shape");
    std::string threads_text = take_option(argc, argv, "--threads");
    std::string algo = take_option(argc, argv, "--algo");
    const std::vector<std::pair<std::string, Algo>> names = {
        {"fast", Algo::kFast},           {"gemm", Algo::kGemm}, {"direct", Algo::kDirect},
        {"reference", Algo::kReference}, {"eigen", Algo::kEigen}};
    std::vector<Algo> algos;
    for (const auto& [name, a] : names) {
        if (algo.empty() || algo == "all" || algo == name) algos.push_back(a);
    }
    if (algos.empty()) {
        std::fprintf(stderr, "--algo must be all, fast, gemm, direct, reference or eigen, got %s\n",
                     algo.c_str());
        return 1;
    }

    if (!shape_text.empty()) {
        ConvShape s;
        if (!parse_shape(shape_text, s)) {
            std::fprintf(stderr, "--shape wants N,C,K,H,W,R,stride,pad (8 valid integers), got %s\n",
                         shape_text.c_str());
            return 1;
        }
        int threads = threads_text.empty() ? unetpp::num_threads() : std::atoi(threads_text.c_str());
        register_conv(shape_text, s, threads, algos);
    } else {
        // the sweep: fast and Eigen by default, every algorithm but the reference with --algo all
        std::vector<Algo> sweep;
        for (Algo a : algos) {
            if (a == Algo::kReference) continue;
            if (algo.empty() && a != Algo::kFast && a != Algo::kEigen) continue;
            sweep.push_back(a);
        }
        for (const auto& layer : unetpp_bench::unet16_layers()) {
            ConvShape s;
            s.C = layer.C, s.K = layer.K, s.H = s.W = layer.H;
            for (int threads : {1, 2}) {
                if (!threads_text.empty() && threads != std::atoi(threads_text.c_str())) continue;
                register_conv(unetpp_bench::layer_name(layer), s, threads, sweep);
            }
        }
    }

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    unetpp_bench::RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
