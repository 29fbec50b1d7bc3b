// Parallel fill: every element set, on sizes around the block size and with 1 and 2 threads.
#include <catch2/catch.hpp>

#include <unetpp/kernels/fill.hpp>
#include <unetpp/parallel.hpp>

#include <vector>

TEST_CASE("fill_parallel sets every element and nothing past the end", "[fill]") {
    const int64_t block = unetpp::detail::kElementwiseBlock;
    for (int threads = 1; threads <= 2; ++threads) {
        unetpp::set_num_threads(threads);
        for (int64_t count : {int64_t(0), int64_t(1), block - 1, block, block + 1,
                              3 * block + 17}) {
            INFO("count " << count << ", threads " << threads);
            std::vector<float> buffer(size_t(count) + 8, -1.0f);
            unetpp::fill_parallel(buffer.data(), count, 2.5f);
            for (int64_t i = 0; i < count; ++i) REQUIRE(buffer[size_t(i)] == 2.5f);
            for (int64_t i = count; i < count + 8; ++i) REQUIRE(buffer[size_t(i)] == -1.0f);
        }
    }
    unetpp::set_num_threads(0);
}

TEST_CASE("zero_parallel zeroes a tensor", "[fill]") {
    unetpp::Tensor<double> t({3, 5, 130, 170});
    t.fill(7.0);
    unetpp::zero_parallel(t);
    for (double v : t) REQUIRE(v == 0.0);
}
