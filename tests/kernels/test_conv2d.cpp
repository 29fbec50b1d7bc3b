// The convolution kernels (GEMM lowering, direct 3x3) against the direct reference loops, against central finite
// differences in double, for its gradient contract, thread-count independence and shape errors.
#include <catch2/catch.hpp>

#include <support/gradcheck.hpp>
#include <unetpp/kernels/activation.hpp>
#include <unetpp/kernels/conv2d.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

using unetpp::Conv2dSpec;
using unetpp::Shape;
using unetpp::Tensor;
using unetpp_test::random_tensor;

// Float sums of up to ~300 products of values in [-1, 1) summed in another order (GEMM blocks,
// FMA): differences stay around 1e-5 relative to the sum's size; 1e-4 absolute + relative holds.
constexpr float kFloatTolerance = 1e-4f;

struct Case {
    int64_t N, C, K, H, W, R, S, stride, pad;
};

std::string describe(const Case& t) {
    return unetpp::detail::concat("N=", t.N, " C=", t.C, " K=", t.K, " H=", t.H, " W=", t.W,
                                  " R=", t.R, " S=", t.S, " stride=", t.stride, " pad=", t.pad);
}

Conv2dSpec spec_of(const Case& t) { return Conv2dSpec{t.C, t.K, t.R, t.S, t.stride, t.pad}; }

Shape y_shape(const Case& t) {
    Conv2dSpec s = spec_of(t);
    return Shape{t.N, t.K, s.out_h(t.H), s.out_w(t.W)};
}

// Requires |a - b| <= tol * (1 + |b|) everywhere; reports the case and first bad index.
template <class T>
void require_close(const std::string& what, const Case& t, const Tensor<T>& a, const Tensor<T>& b,
                   T tol) {
    REQUIRE(a.shape() == b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) {
        if (!(std::abs(a[i] - b[i]) <= tol * (1 + std::abs(b[i])))) {
            FAIL(what << " " << describe(t) << ": first bad flat index " << i << " of "
                      << a.shape().str() << ": fast " << a[i] << ", reference " << b[i]);
        }
    }
}

const Case kCases[] = {
    {2, 3, 16, 9, 7, 3, 3, 1, 1},    // first U-Net layer, non-square
    {1, 17, 33, 8, 8, 3, 3, 1, 1},   // awkward channel counts, batch 1
    {3, 33, 17, 5, 6, 3, 3, 1, 1},   // more images than groups of the weight gradient
    {5, 1, 3, 7, 3, 3, 3, 1, 1},     // one input channel
    {2, 17, 7, 6, 5, 1, 1, 1, 0},    // pointwise
    {2, 3, 5, 11, 9, 5, 5, 1, 2},    // 5x5 pad 2
    {2, 7, 3, 9, 8, 3, 3, 2, 1},     // stride 2
    {1, 3, 17, 7, 9, 3, 3, 1, 0},    // pad 0
    {2, 5, 4, 10, 7, 3, 2, 2, 0},    // non-square kernel, stride 2, pad 0
    {1, 4, 6, 5, 5, 1, 1, 2, 1},     // 1x1 with stride and pad
    {2, 16, 32, 20, 20, 3, 3, 1, 1}, // several column strips and K blocks
    {2, 5, 9, 6, 33, 3, 3, 1, 1},    // direct 3x3: masked row tail, a 1-channel K block
    {1, 64, 11, 20, 33, 3, 3, 1, 1}, // direct 3x3: several row bands of one image
    {3, 3, 16, 17, 16, 3, 3, 1, 1},  // direct 3x3: exactly one vector per row
    {2, 5, 16, 9, 18, 3, 3, 1, 1},   // direct 3x3 weight gradient, 16 outputs, few inputs
    {2, 16, 16, 7, 130, 3, 3, 1, 1}, // weight gradient with channels in the lanes: blocks of 2
                                     // and 3 inputs, tiles of one row
    {3, 20, 32, 19, 16, 3, 3, 1, 1}, // ... two output blocks, tiles of 8 rows, a 3-row tail
    {3, 20, 19, 7, 8, 3, 3, 1, 1},   // 8 wide, two rows a vector: odd H (last vector half
                                     // masked), vector groups spanning images, a 3-channel block
    {5, 32, 16, 8, 8, 3, 3, 1, 1},   // 8 wide, and the lanes weight gradient at 8 wide
    {2, 16, 32, 3, 5, 3, 3, 1, 1},   // the lanes weight gradient on rows narrower than a vector
    {4, 16, 16, 1, 8, 3, 3, 1, 1},   // 8 wide, one row: every vector half masked
    {2, 16, 2, 13, 40, 3, 3, 1, 1},  // K <= 3: 8 vectors a call (39 an image), a 7-vector tail
    {3, 2, 3, 11, 8, 3, 3, 1, 1},    // K <= 3 at 8 wide: 6 pair vectors an image, groups of 8
    // AVX2's 8-lane kernel: blocks of 4 output channels, tiles of 3 vectors, smaller tiles of
    // more vectors for blocks of 1-3 channels
    {2, 7, 6, 5, 9, 3, 3, 1, 1},     // a block of 4 and one of 2; a full vector and 1-lane tail
    {1, 3, 3, 6, 15, 3, 3, 1, 1},    // K = 3: 4 vectors a call across rows, 7-lane tail
    {2, 9, 1, 7, 23, 3, 3, 1, 1},    // K = 1: 8 vectors a call, a 7-lane tail
    {2, 4, 13, 4, 8, 3, 3, 1, 1},    // 8 wide: one vector a row, blocks of 4, 4, 4 and 1
};

// 3x3 stride-1 pad-1 shapes for the direct kernel alone, which takes any width.
const Case kDirectCases[] = {
    {1, 1, 1, 1, 1, 3, 3, 1, 1},   {2, 3, 7, 5, 2, 3, 3, 1, 1},  {1, 17, 3, 3, 31, 3, 3, 1, 1},
    {2, 8, 16, 9, 48, 3, 3, 1, 1}, {1, 2, 13, 4, 17, 3, 3, 1, 1},
    {1, 64, 5, 13, 300, 3, 3, 1, 1},  // wide rows: four bands of at most 4 rows
    {2, 5, 9, 5, 8, 3, 3, 1, 1},      // two rows a vector
};

}  // namespace

TEST_CASE("conv2d fast paths match the reference loops", "[conv2d]") {
    unetpp::Rng rng(21);
    for (const Case& t : kCases) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto b = random_tensor<float>(Shape{t.K}, rng);
        auto dy = random_tensor<float>(y_shape(t), rng);

        // 1. forward
        Tensor<float> y(y_shape(t)), y_ref(y_shape(t));
        unetpp::conv2d_forward<float>(s, x, w, b.data(), y);
        unetpp::conv2d_forward_reference<float>(s, x, w, b.data(), y_ref);
        require_close("forward", t, y, y_ref, kFloatTolerance);

        // 2. input gradient, added onto the same starting values
        auto dx = random_tensor<float>(x.shape(), rng);
        Tensor<float> dx_ref = dx;
        unetpp::conv2d_backward_data<float>(s, dy, w, dx);
        unetpp::conv2d_backward_data_reference<float>(s, dy, w, dx_ref);
        require_close("backward_data", t, dx, dx_ref, kFloatTolerance);
        // GradWrite::assign ignores what dx held (NaN here) and gives the values added to 0
        Tensor<float> dx_assigned(x.shape()), dx_added(x.shape());
        dx_assigned.fill(std::nanf(""));
        unetpp::conv2d_backward_data<float>(s, dy, w, dx_assigned, unetpp::GradWrite::assign);
        unetpp::conv2d_backward_data<float>(s, dy, w, dx_added);
        REQUIRE(std::equal(dx_assigned.begin(), dx_assigned.end(), dx_added.begin()));

        // 3. weight and bias gradients
        Tensor<float> dw(w.shape()), dw_ref(w.shape()), db(Shape{t.K}), db_ref(Shape{t.K});
        unetpp::conv2d_backward_weight<float>(s, x, dy, dw, db.data());
        unetpp::conv2d_backward_weight_reference<float>(s, x, dy, dw_ref, db_ref.data());
        require_close("backward_weight", t, dw, dw_ref, kFloatTolerance);
        require_close("backward_bias", t, db, db_ref, kFloatTolerance);
    }
}

TEST_CASE("conv2d GEMM lowering and direct 3x3 kernel each match the reference",
          "[conv2d]") {
    unetpp::Rng rng(25);
    auto check = [&](const Case& t, bool direct) {
        INFO(describe(t) << (direct ? " direct" : " gemm"));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto b = random_tensor<float>(Shape{t.K}, rng);
        Tensor<float> y(y_shape(t)), y_ref(y_shape(t));
        if (direct) {
            unetpp::conv2d_forward_direct<float>(s, x, w, b.data(), y);
        } else {
            unetpp::conv2d_forward_gemm<float>(s, x, w, b.data(), y);
        }
        unetpp::conv2d_forward_reference<float>(s, x, w, b.data(), y_ref);
        require_close(direct ? "forward_direct" : "forward_gemm", t, y, y_ref, kFloatTolerance);
    };
    for (const Case& t : kCases) check(t, false);
    if (!unetpp::conv2d_direct_available<float>()) {
        WARN("no direct 3x3 kernel on this build (" << unetpp::simd::isa_name() << ")");
        Tensor<float> x(Shape{1, 1, 1, 1}), w(Shape{1, 1, 3, 3}), y(Shape{1, 1, 1, 1});
        REQUIRE_THROWS_WITH(
            unetpp::conv2d_forward_direct<float>(spec_of(kDirectCases[0]), x, w, nullptr, y),
            Catch::Contains("use conv2d_forward"));
        return;
    }
    for (const Case& t : kDirectCases) check(t, true);
    for (const Case& t : kCases) {
        if (unetpp::conv2d_direct_applies<float>(spec_of(t))) check(t, true);
    }
}

TEST_CASE("conv2d with a fused ReLU gives the bits of the convolution and then ReLU",
          "[conv2d][relu]") {
    unetpp::Rng rng(26);
    auto check = [&](const Case& t, int path) {  // 0: dispatch, 1: GEMM lowering, 2: direct
        INFO(describe(t) << " path " << path);
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto b = random_tensor<float>(Shape{t.K}, rng);
        Tensor<float> y(y_shape(t)), fused(y_shape(t)), ref(y_shape(t));
        auto run = [&](Tensor<float>& out, unetpp::ConvActivation act) {
            if (path == 0) unetpp::conv2d_forward<float>(s, x, w, b.data(), out, act);
            if (path == 1) unetpp::conv2d_forward_gemm<float>(s, x, w, b.data(), out, act);
            if (path == 2) unetpp::conv2d_forward_direct<float>(s, x, w, b.data(), out, act);
        };
        run(y, unetpp::ConvActivation::none);
        run(fused, unetpp::ConvActivation::relu);
        unetpp::relu_forward_reference<float>(y, y);
        REQUIRE(std::equal(y.begin(), y.end(), fused.begin()));
        // and close to the reference loops followed by ReLU, with some outputs clamped
        unetpp::conv2d_forward_reference<float>(s, x, w, b.data(), ref);
        int64_t clamped = 0;
        for (float& v : ref) {
            clamped += v < 0;
            v = std::max(v, 0.0f);
        }
        if (ref.numel() >= 32) REQUIRE(clamped > 0);  // the clamp was exercised
        require_close("forward relu", t, fused, ref, kFloatTolerance);
    };
    for (const Case& t : kCases) {
        check(t, 0);
        check(t, 1);
        if (unetpp::conv2d_direct_applies<float>(spec_of(t))) check(t, 2);
    }
    for (const Case& t : kDirectCases) {
        if (unetpp::conv2d_direct_available<float>()) check(t, 2);
    }
}

TEST_CASE("conv2d backward data through a ReLU gives the bits of the two steps", "[conv2d]") {
    // relu_output zeroes the input gradient where the ReLU was off: fused into the direct
    // kernel's store, or run after the convolution on the other paths; in both write modes
    unetpp::Rng rng(29);
    auto check = [&](const Case& t) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto dy = random_tensor<float>(y_shape(t), rng);
        auto relu_out = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        for (float& v : relu_out) v = std::max(v, 0.0f);  // about half the gradient gated off
        for (auto write : {unetpp::GradWrite::assign, unetpp::GradWrite::add}) {
            auto start = random_tensor<float>(relu_out.shape(), rng);
            Tensor<float> fused = start, two_steps = start, plain(relu_out.shape());
            unetpp::conv2d_backward_data<float>(s, dy, w, fused, write, relu_out);
            unetpp::conv2d_backward_data<float>(s, dy, w, plain, unetpp::GradWrite::assign);
            unetpp::relu_backward<float>(relu_out, plain, two_steps, write);
            REQUIRE(std::equal(fused.begin(), fused.end(), two_steps.begin()));
        }
    };
    for (const Case& t : kCases) check(t);
    for (const Case& t : kDirectCases) check(t);
    Tensor<float> w(Shape{4, 3, 3, 3}), dy(Shape{1, 4, 5, 5}), dx(Shape{1, 3, 5, 5});
    Tensor<float> wrong(Shape{1, 3, 5, 4});
    REQUIRE_THROWS_WITH(unetpp::conv2d_backward_data<float>(Conv2dSpec{3, 4, 3, 3, 1, 1}, dy, w,
                                                            dx, unetpp::GradWrite::add, wrong),
                        Catch::Contains("relu_output") && Catch::Contains("[1, 3, 5, 4]"));
}

TEST_CASE("conv2d backward matches finite differences and keeps the gradient contract",
          "[conv2d][grad]") {
    unetpp::Rng rng(22);
    const Case cases[] = {{2, 3, 4, 5, 4, 3, 3, 1, 1}, {1, 2, 3, 7, 6, 3, 3, 2, 1},
                          {2, 3, 2, 4, 5, 1, 1, 1, 0}};
    for (const Case& t : cases) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<double>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto w = random_tensor<double>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto b = random_tensor<double>(Shape{t.K}, rng);
        auto g = random_tensor<double>(y_shape(t), rng);
        Tensor<double> y(y_shape(t));
        auto loss = [&] {
            unetpp::conv2d_forward<double>(s, x, w, b.data(), y);
            return unetpp_test::weighted_sum(g, y);
        };

        // 1. dx: prefilled with noise, backward must add onto it
        auto noise = random_tensor<double>(x.shape(), rng);
        Tensor<double> dx = noise;
        unetpp::conv2d_backward_data<double>(s, g, w, dx);
        tensor_axpy(-1.0, noise, dx);
        unetpp_test::gradient_check("dx", dx, unetpp_test::numeric_gradient(loss, x));

        // 2. dweight and dbias: prefilled with NaN, backward must assign every element
        Tensor<double> dw(w.shape()), db(Shape{t.K});
        unetpp_test::fill_nan(dw);
        unetpp_test::fill_nan(db);
        unetpp::conv2d_backward_weight<double>(s, x, g, dw, db.data());
        unetpp_test::require_no_nan("dweight", dw);
        unetpp_test::require_no_nan("dbias", db);
        unetpp_test::gradient_check("dweight", dw, unetpp_test::numeric_gradient(loss, w));
        unetpp_test::gradient_check("dbias", db, unetpp_test::numeric_gradient(loss, b));
    }
}

TEST_CASE("conv2d gives bit-identical results on 1 and 2 threads", "[conv2d][threads]") {
    unetpp::Rng rng(23);
    const Case cases[] = {{5, 16, 24, 12, 12, 3, 3, 1, 1}, {1, 33, 17, 9, 9, 3, 3, 1, 1},
                          {3, 8, 8, 9, 9, 3, 3, 2, 1}, {2, 64, 11, 20, 33, 3, 3, 1, 1},
                          {3, 5, 32, 9, 18, 3, 3, 1, 1}, {2, 16, 32, 9, 130, 3, 3, 1, 1},
                          {2, 27, 16, 11, 20, 3, 3, 1, 1},   // 3 vs 4 groups
                          {2, 32, 32, 6, 20, 3, 3, 1, 1},    // 11 vs 12 channel blocks
                          {2, 7, 16, 5, 17, 3, 3, 1, 1},     // few channels: 2 groups of 3
                          {9, 24, 16, 8, 8, 3, 3, 1, 1},     // two rows a vector, lanes
                          {3, 16, 16, 7, 5, 3, 3, 1, 1}};    // lanes on narrow rows
    for (const Case& t : cases) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
        auto b = random_tensor<float>(Shape{t.K}, rng);
        auto dy = random_tensor<float>(y_shape(t), rng);
        Tensor<float> y[2], dx[2], dw[2], db[2];
        for (int threads = 1; threads <= 2; ++threads) {
            unetpp::set_num_threads(threads);
            int i = threads - 1;
            y[i] = Tensor<float>(y_shape(t));
            dx[i] = Tensor<float>(x.shape());
            dw[i] = Tensor<float>(w.shape());
            db[i] = Tensor<float>(Shape{t.K});
            unetpp::conv2d_forward<float>(s, x, w, b.data(), y[i]);
            unetpp::conv2d_backward_data<float>(s, dy, w, dx[i]);
            unetpp::conv2d_backward_weight<float>(s, x, dy, dw[i], db[i].data());
        }
        unetpp::set_num_threads(0);
        auto same = [](const Tensor<float>& a, const Tensor<float>& b) {
            return std::equal(a.begin(), a.end(), b.begin());
        };
        REQUIRE(same(y[0], y[1]));
        REQUIRE(same(dx[0], dx[1]));
        REQUIRE(same(dw[0], dw[1]));
        REQUIRE(same(db[0], db[1]));
    }
}

#if defined(UNETPP_SIMD_AVX512)
TEST_CASE("lanes weight gradient taken in chunks of images gives the bits of one chunk",
          "[conv2d][lanes][threads]") {
    unetpp::Rng rng(31);
    const Case cases[] = {{5, 16, 16, 9, 20, 3, 3, 1, 1}, {7, 19, 32, 8, 8, 3, 3, 1, 1}};
    for (const Case& t : cases) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto dy = random_tensor<float>(y_shape(t), rng);
        Tensor<float> ref(Shape{t.K, t.C, 3, 3}), db(Shape{t.K});
        unetpp::conv2d_backward_weight_reference<float>(s, x, dy, ref, db.data());
        Tensor<float> whole(ref.shape());
        std::vector<float> sums_whole(size_t(t.N * t.K));
        unetpp::detail::conv2d_direct_backward_weight_lanes(s, t.N, t.H, t.W, x.data(), dy.data(),
                                                            whole.data(), sums_whole.data());
        require_close("lanes weight gradient", t, whole, ref, kFloatTolerance);
        // chunk_bytes 1: one image per thread per chunk, on 1 and 2 threads
        for (int threads = 1; threads <= 2; ++threads) {
            unetpp::set_num_threads(threads);
            REQUIRE(unetpp::detail::conv2d_direct_lanes_chunk(t.N, 1000, threads, 1) == threads);
            Tensor<float> chunked(ref.shape());
            std::vector<float> sums(size_t(t.N * t.K));
            unetpp::detail::conv2d_direct_backward_weight_lanes(
                s, t.N, t.H, t.W, x.data(), dy.data(), chunked.data(), sums.data(), 1);
            REQUIRE(std::equal(chunked.begin(), chunked.end(), whole.begin()));
            REQUIRE(sums == sums_whole);
        }
        unetpp::set_num_threads(0);
    }
    // chunks: a multiple of the thread count within the budget, at least one image a thread
    REQUIRE(unetpp::detail::conv2d_direct_lanes_chunk(16, 100, 2, 550) == 4);
    REQUIRE(unetpp::detail::conv2d_direct_lanes_chunk(16, 100, 1, 550) == 5);
    REQUIRE(unetpp::detail::conv2d_direct_lanes_chunk(3, 100, 2, 1 << 20) == 3);
    REQUIRE(unetpp::detail::conv2d_direct_lanes_chunk(1, 100, 2, 1) == 1);
}

TEST_CASE("lanes weight gradient splits its channels evenly and keeps the bits on 1-4 threads",
          "[conv2d][lanes][threads]") {
    // every split is valid (blocks of 2-3 channels, groups of at most 4 blocks) and, with
    // several threads, balanced where the channels allow it
    for (int64_t C : {4, 5, 7, 16, 20, 27, 32, 64, 128, 256}) {
        for (int64_t k_blocks : {1, 2, 4, 16}) {
            for (int64_t threads : {1, 2, 3, 4}) {
                INFO("C=" << C << " k_blocks=" << k_blocks << " threads=" << threads);
                const auto sp = unetpp::detail::conv2d_direct_lanes_split(C, k_blocks, threads);
                REQUIRE(sp.groups >= 1);
                REQUIRE(sp.groups <= sp.c_blocks);
                for (int64_t b = 0; b < sp.c_blocks; ++b) {
                    const int64_t n = (b + 1) * C / sp.c_blocks - b * C / sp.c_blocks;
                    REQUIRE(n >= 2);
                    REQUIRE(n <= 3);
                }
                if (threads == 1) REQUIRE(sp.groups * 4 >= sp.c_blocks);
            }
        }
    }
    // 32 channels on 2 threads: 12 blocks in 4 groups of 8 channels (11 blocks in 3 groups of
    // 8, 12 and 12 on 1 thread)
    REQUIRE(unetpp::detail::conv2d_direct_lanes_split(32, 2, 2).c_blocks == 12);
    REQUIRE(unetpp::detail::conv2d_direct_lanes_split(32, 2, 2).groups == 4);
    REQUIRE(unetpp::detail::conv2d_direct_lanes_split(32, 2, 1).c_blocks == 11);
    // the same bits whatever the split
    unetpp::Rng rng(32);
    const Case cases[] = {{3, 32, 32, 6, 20, 3, 3, 1, 1}, {2, 27, 16, 5, 17, 3, 3, 1, 1},
                          {2, 7, 48, 4, 18, 3, 3, 1, 1}};
    for (const Case& t : cases) {
        INFO(describe(t));
        Conv2dSpec s = spec_of(t);
        auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
        auto dy = random_tensor<float>(y_shape(t), rng);
        Tensor<float> one(Shape{t.K, t.C, 3, 3});
        unetpp::set_num_threads(1);
        unetpp::detail::conv2d_direct_backward_weight_lanes(s, t.N, t.H, t.W, x.data(), dy.data(),
                                                            one.data());
        for (int threads = 2; threads <= 4; ++threads) {
            unetpp::set_num_threads(threads);
            Tensor<float> many(one.shape());
            unetpp::detail::conv2d_direct_backward_weight_lanes(s, t.N, t.H, t.W, x.data(),
                                                                dy.data(), many.data());
            REQUIRE(std::equal(many.begin(), many.end(), one.begin()));
        }
        unetpp::set_num_threads(0);
    }
}
#endif

TEST_CASE("conv2d works inside a parallel_for body", "[conv2d][threads]") {
    unetpp::Rng rng(24);
    Case t{2, 4, 5, 6, 6, 3, 3, 1, 1};
    Conv2dSpec s = spec_of(t);
    auto x = random_tensor<float>(Shape{t.N, t.C, t.H, t.W}, rng);
    auto w = random_tensor<float>(Shape{t.K, t.C, t.R, t.S}, rng);
    Tensor<float> y_ref(y_shape(t));
    unetpp::conv2d_forward_reference<float>(s, x, w, nullptr, y_ref);
    std::vector<Tensor<float>> ys(3, Tensor<float>(y_shape(t)));
    unetpp::parallel_for(0, 3, [&](int64_t i) {
        unetpp::conv2d_forward<float>(s, x, w, nullptr, ys[i]);
    });
    for (const auto& y : ys) require_close("forward in parallel_for", t, y, y_ref, kFloatTolerance);
}

TEST_CASE("conv2d rejects bad shapes naming expected and actual", "[conv2d][errors]") {
    Conv2dSpec s{64, 8, 3, 3, 1, 1};
    Tensor<float> x(Shape{1, 32, 8, 8}), w(Shape{8, 64, 3, 3}), y(Shape{1, 8, 8, 8});
    REQUIRE_THROWS_WITH(unetpp::conv2d_forward<float>(s, x, w, nullptr, y),
                        Catch::Contains("input has 32 channels, spec/weights expect 64"));

    Tensor<float> x64(Shape{1, 64, 8, 8}), w_bad(Shape{8, 64, 5, 5});
    REQUIRE_THROWS_WITH(unetpp::conv2d_forward<float>(s, x64, w_bad, nullptr, y),
                        Catch::Contains("[8, 64, 3, 3]") && Catch::Contains("[8, 64, 5, 5]"));

    Tensor<float> y_bad(Shape{1, 8, 6, 6});
    REQUIRE_THROWS_WITH(unetpp::conv2d_forward<float>(s, x64, w, nullptr, y_bad),
                        Catch::Contains("[1, 8, 6, 6]") && Catch::Contains("expected [1, 8, 8, 8]"));
    REQUIRE_THROWS_WITH(unetpp::conv2d_backward_data<float>(s, y_bad, w, x64),
                        Catch::Contains("dy") && Catch::Contains("expected [1, 8, 8, 8]"));
    Tensor<float> dw_bad(Shape{8, 32, 3, 3});
    REQUIRE_THROWS_WITH(unetpp::conv2d_backward_weight<float>(s, x64, y, dw_bad, nullptr),
                        Catch::Contains("[8, 64, 3, 3]") && Catch::Contains("[8, 32, 3, 3]"));

    Conv2dSpec bad_stride{64, 8, 3, 3, 0, 1};
    REQUIRE_THROWS_WITH(unetpp::conv2d_forward<float>(bad_stride, x64, w, nullptr, y),
                        Catch::Contains("stride=0"));
}
