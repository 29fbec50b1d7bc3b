// Vector primitives against plain loops on awkward lengths.
#include <catch2/catch.hpp>

#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>
#include <unetpp/simd/simd.hpp>

#include <vector>

namespace {
// Float sums of up to 100 products of values in [-1, 1): reordering changes them by a few ulp.
constexpr float kReorderTolerance = 1e-5f;
}

TEST_CASE("simd primitives match scalar loops on lengths that are not multiples of the width",
          "[simd]") {
    unetpp::Rng rng(7);
    for (int64_t n : {0, 1, 3, 7, 15, 16, 17, 33, 100}) {
        INFO("isa " << unetpp::simd::isa_name() << " n " << n);
        std::vector<float> x(n), y(n), out(n);
        for (auto& v : x) v = float(rng.uniform(-1, 1));
        for (auto& v : y) v = float(rng.uniform(-1, 1));

        float ref_dot = 0, ref_sum = 0;
        for (int64_t i = 0; i < n; ++i) {
            ref_dot += x[i] * y[i];
            ref_sum += x[i];
        }
        REQUIRE(std::abs(unetpp::simd::dot(n, x.data(), y.data()) - ref_dot) < kReorderTolerance);
        REQUIRE(std::abs(unetpp::simd::sum(n, x.data()) - ref_sum) < kReorderTolerance);

        std::vector<float> z = y;
        unetpp::simd::axpy(n, 0.5f, x.data(), z.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(z[i] == Approx(y[i] + 0.5f * x[i]).margin(1e-6));

        unetpp::simd::add(n, x.data(), y.data(), out.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(out[i] == x[i] + y[i]);

        unetpp::simd::max_scalar(n, x.data(), 0.0f, out.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(out[i] == std::max(x[i], 0.0f));

        z = x;
        unetpp::simd::scale(n, -2.0f, z.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(z[i] == -2.0f * x[i]);

        z = x;
        unetpp::simd::add_scalar(n, 1.25f, z.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(z[i] == x[i] + 1.25f);
    }
}

TEST_CASE("parallel_for visits every index once and rethrows a body's exception", "[parallel]") {
    std::vector<int> hits(1000, 0);
    unetpp::parallel_for(0, 1000, [&](int64_t i) { hits[i] += 1; });
    for (int h : hits) REQUIRE(h == 1);
    REQUIRE_THROWS_AS(unetpp::parallel_for(0, 10,
                                           [&](int64_t i) {
                                               if (i == 7) throw unetpp::Error("seven");
                                           }),
                      unetpp::Error);
    std::vector<int> chunk_hits(37, 0);
    unetpp::parallel_chunks(37, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) chunk_hits[i] += 1;
    });
    for (int h : chunk_hits) REQUIRE(h == 1);
}
