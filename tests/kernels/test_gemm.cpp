// The packed GEMM against the plain triple loop, on awkward sizes, transposes, accumulation,
// padded leading dimensions and 1 vs 2 threads.
#include <catch2/catch.hpp>

#include <unetpp/kernels/gemm.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

// Float sums of up to a few hundred products of values in [-1, 1) in a different order (K
// blocks, FMA): the difference stays within a few ulp of the sum's magnitude, ~1e-4 absolute.
constexpr float kFloatTolerance = 2e-4f;
// Double sums in a different order: rounding only, far below any indexing error.
constexpr double kDoubleTolerance = 1e-12;

template <class T>
std::vector<T> random_vector(int64_t n, unetpp::Rng& rng) {
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<T>(rng.uniform(-1, 1));
    return v;
}

std::string describe(const unetpp::GemmSpec& s) {
    return unetpp::detail::concat("M=", s.M, " N=", s.N, " K=", s.K, " lda=", s.lda, " ldb=",
                                  s.ldb, " ldc=", s.ldc, " trans_a=", s.trans_a, " trans_b=",
                                  s.trans_b, " accumulate=", s.accumulate);
}

// Runs gemm and gemm_reference on the same random inputs; fails at the first bad element.
template <class T>
void check_gemm(const unetpp::GemmSpec& s, T tolerance, unetpp::Rng& rng) {
    int64_t a_rows = s.trans_a ? s.K : s.M, b_rows = s.trans_b ? s.N : s.K;
    auto a = random_vector<T>(a_rows * s.lda, rng);
    auto b = random_vector<T>(b_rows * s.ldb, rng);
    auto c = random_vector<T>(s.M * s.ldc, rng);
    auto expected = c;
    unetpp::gemm(s, a.data(), b.data(), c.data());
    unetpp::gemm_reference(s, a.data(), b.data(), expected.data());
    for (int64_t i = 0; i < s.M * s.ldc; ++i) {
        if (!(std::abs(c[i] - expected[i]) <= tolerance)) {
            FAIL(describe(s) << ": first bad element at row " << i / s.ldc << " column "
                             << i % s.ldc << ": gemm " << c[i] << ", reference " << expected[i]);
        }
    }
}

unetpp::GemmSpec make_spec(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool acc,
                           int64_t pad) {
    unetpp::GemmSpec s;
    s.M = M, s.N = N, s.K = K, s.trans_a = ta, s.trans_b = tb, s.accumulate = acc;
    s.lda = (ta ? M : K) + pad;
    s.ldb = (tb ? K : N) + pad;
    s.ldc = N + pad;
    return s;
}

}  // namespace

TEST_CASE("gemm matches the reference on awkward sizes, transposes and leading dimensions",
          "[gemm]") {
    unetpp::Rng rng(11);
    const int64_t sizes[] = {1, 3, 7, 17, 33};
    for (int64_t M : sizes)
        for (int64_t N : sizes)
            for (int64_t K : sizes)
                for (int flags = 0; flags < 8; ++flags) {
                    bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
                    int64_t pad = (M + N + K + flags) % 3 == 0 ? 5 : 0;
                    check_gemm<float>(make_spec(M, N, K, ta, tb, acc, pad), kFloatTolerance, rng);
                }
}

TEST_CASE("gemm matches the reference across K blocks and many column strips", "[gemm]") {
    unetpp::Rng rng(12);
    for (int flags = 0; flags < 8; ++flags) {
        bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
        check_gemm<float>(make_spec(37, 161, 600, ta, tb, acc, flags % 2 ? 3 : 0), 1e-3f, rng);
        check_gemm<float>(make_spec(100, 64, 290, ta, tb, acc, 0), 1e-3f, rng);
    }
}

TEST_CASE("gemm with few outputs and a long K matches the reference", "[gemm]") {
    // the dot-product path on AVX-512 (A * B^T, M * N <= 1024, K >= 1024), with K tails, tile
    // remainders and padded rows; the other transposes of the same shapes take the packed path
    unetpp::Rng rng(16);
    const int64_t shapes[][3] = {{16, 27, 1024}, {5, 7, 1037}, {1, 1, 1500}, {13, 64, 1030},
                                 {32, 32, 2048}, {4, 6, 1031}};
    for (const auto& sh : shapes) {
        for (int flags = 0; flags < 8; ++flags) {
            bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
            check_gemm<float>(make_spec(sh[0], sh[1], sh[2], ta, tb, acc, flags % 3 == 0 ? 3 : 0),
                              2e-3f, rng);
        }
    }
}

TEST_CASE("gemm in double matches the reference", "[gemm][double]") {
    unetpp::Rng rng(13);
    for (int flags = 0; flags < 8; ++flags) {
        bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
        check_gemm<double>(make_spec(17, 33, 300, ta, tb, acc, 2), kDoubleTolerance, rng);
        check_gemm<double>(make_spec(3, 7, 1, ta, tb, acc, 0), kDoubleTolerance, rng);
    }
}

TEST_CASE("gemm with K = 0 assigns zero or keeps C when accumulating", "[gemm]") {
    std::vector<float> c = {1, 2, 3, 4};
    unetpp::GemmSpec s;
    s.M = 2, s.N = 2, s.K = 0, s.lda = 1, s.ldb = 2, s.ldc = 2, s.accumulate = true;
    unetpp::gemm<float>(s, nullptr, nullptr, c.data());
    REQUIRE(c == std::vector<float>{1, 2, 3, 4});
    s.accumulate = false;
    unetpp::gemm<float>(s, nullptr, nullptr, c.data());
    REQUIRE(c == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("gemm gives bit-identical results on 1, 2 and 3 threads", "[gemm][threads]") {
    unetpp::Rng rng(14);
    // the same random A, B and starting C through 1 and 2 threads
    auto check = [&](const unetpp::GemmSpec& s) {
        auto a = random_vector<float>((s.trans_a ? s.K : s.M) * s.lda, rng);
        auto b = random_vector<float>((s.trans_b ? s.N : s.K) * s.ldb, rng);
        auto c1 = random_vector<float>(s.M * s.ldc, rng);
        auto c2 = c1;
        unetpp::set_num_threads(1);
        unetpp::gemm(s, a.data(), b.data(), c1.data());
        auto c3 = c2;
        unetpp::set_num_threads(2);
        unetpp::gemm(s, a.data(), b.data(), c2.data());
        unetpp::set_num_threads(3);  // other splits of the strips and row blocks
        unetpp::gemm(s, a.data(), b.data(), c3.data());
        unetpp::set_num_threads(0);
        INFO(describe(s));
        REQUIRE(c1 == c2);
        REQUIRE(c1 == c3);
    };
    for (int flags = 0; flags < 8; ++flags) {
        // flags 4-7: one column strip, so 2 threads split the rows instead
        check(make_spec(45, flags & 4 ? 20 : 300, 520, flags & 1, flags & 2, false, 0));
    }
    // M > N over several strips: 2 threads split the rows, each packing every B panel; and few
    // outputs over a long K (the dot-product path on AVX-512), split by output tiles
    check(make_spec(150, 70, 600, false, false, false, 0));
    check(make_spec(150, 70, 600, true, true, true, 2));
    check(make_spec(16, 27, 3000, false, true, false, 0));
    check(make_spec(9, 40, 1100, false, true, true, 1));
}

TEST_CASE("gemm works inside a parallel_for body", "[gemm][threads]") {
    unetpp::Rng rng(15);
    auto s = make_spec(20, 70, 40, false, false, false, 0);
    auto a = random_vector<float>(s.M * s.lda, rng), b = random_vector<float>(s.K * s.ldb, rng);
    std::vector<float> expected(s.M * s.ldc);
    unetpp::gemm_reference(s, a.data(), b.data(), expected.data());
    std::vector<std::vector<float>> outputs(4, std::vector<float>(s.M * s.ldc));
    unetpp::parallel_for(0, 4, [&](int64_t t) {
        unetpp::gemm(s, a.data(), b.data(), outputs[t].data());
    });
    for (const auto& c : outputs) {
        for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(std::abs(c[i] - expected[i]) < 1e-4f);
    }
}

TEST_CASE("gemm rejects leading dimensions shorter than the rows", "[gemm][errors]") {
    std::vector<float> buf(100);
    unetpp::GemmSpec s;
    s.M = 4, s.N = 5, s.K = 6, s.lda = 5, s.ldb = 5, s.ldc = 5;
    REQUIRE_THROWS_WITH(unetpp::gemm(s, buf.data(), buf.data(), buf.data()),
                        Catch::Contains("lda must be at least 6") && Catch::Contains("got 5"));
    s.lda = 6, s.ldc = 4;
    REQUIRE_THROWS_WITH(unetpp::gemm(s, buf.data(), buf.data(), buf.data()),
                        Catch::Contains("ldc must be at least N=5, got 4"));
    s.ldc = 5, s.M = -1;
    REQUIRE_THROWS_AS(unetpp::gemm(s, buf.data(), buf.data(), buf.data()), unetpp::ShapeError);
}
