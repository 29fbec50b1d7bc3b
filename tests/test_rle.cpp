// Run-length encoding in the competition's column-major, 1-indexed format.
#include <catch2/catch.hpp>

#include <string>
#include <unetpp/post/rle.hpp>
#include <unetpp/random.hpp>

using unetpp::LabelMap;

namespace {

LabelMap from_rows(const std::vector<std::vector<int32_t>>& rows) {
    LabelMap m(int64_t(rows.size()), int64_t(rows.empty() ? 0 : rows[0].size()));
    for (int64_t y = 0; y < m.height; ++y)
        for (int64_t x = 0; x < m.width; ++x) m.at(y, x) = rows[y][x];
    return m;
}

}  // namespace

TEST_CASE("rle of a 3x3 mask lists column-major 1-indexed runs", "[rle]") {
    // Pixel numbers:   1 4 7     mask: 1 1 0
    //                  2 5 8           0 1 0
    //                  3 6 9           0 0 1
    // On pixels: 1, 4, 5, 9 -> runs (1,1), (4,2), (9,1).
    LabelMap mask = from_rows({{1, 1, 0}, {0, 1, 0}, {0, 0, 1}});
    REQUIRE(unetpp::rle_encode_mask(mask) == "1 1 4 2 9 1");
    REQUIRE(unetpp::rle_decode("1 1 4 2 9 1", 3, 3).labels == mask.labels);
}

TEST_CASE("rle runs continue from the bottom of one column to the top of the next", "[rle]") {
    // 2x3, pixels 1 3 5 / 2 4 6; on: (1,0), (0,1), (1,1), (0,2) = pixels 2, 3, 4, 5 -> "2 4".
    LabelMap mask = from_rows({{0, 1, 1}, {1, 1, 0}});
    REQUIRE(unetpp::rle_encode_mask(mask) == "2 4");
}

TEST_CASE("rle of one label ignores the other labels", "[rle]") {
    // pixels 1 3 / 2 4; label 2 at pixels 3 and 4, label 1 at pixel 1.
    LabelMap labels = from_rows({{1, 2}, {0, 2}});
    REQUIRE(unetpp::rle_encode_label(labels, 2) == "3 2");
    REQUIRE(unetpp::rle_encode_label(labels, 1) == "1 1");
    REQUIRE(unetpp::rle_encode_label(labels, 3).empty());
}

TEST_CASE("rle decode of an empty string is an empty mask", "[rle]") {
    LabelMap m = unetpp::rle_decode("", 4, 5);
    REQUIRE(m.height == 4);
    REQUIRE(m.width == 5);
    REQUIRE(m.max_label() == 0);
    REQUIRE(unetpp::rle_encode_mask(m).empty());
}

TEST_CASE("rle round trips random masks of awkward sizes", "[rle]") {
    unetpp::Rng rng(17);
    for (int64_t h : {1, 3, 7, 17, 33}) {
        for (int64_t w : {1, 3, 7, 17}) {
            for (double density : {0.1, 0.5, 0.9}) {
                LabelMap mask(h, w);
                for (int32_t& v : mask.labels) v = rng.uniform() < density;
                std::string text = unetpp::rle_encode_mask(mask);
                INFO("h=" << h << " w=" << w << " density=" << density << " rle=" << text);
                REQUIRE(unetpp::rle_decode(text, h, w).labels == mask.labels);
            }
        }
    }
}

TEST_CASE("rle decode accepts extra spaces and touching runs", "[rle]") {
    LabelMap m = unetpp::rle_decode("  1 2   3 1 ", 2, 2);
    REQUIRE(m.labels == std::vector<int32_t>{1, 1, 1, 0});  // pixels 1,2,3: (0,0),(1,0),(0,1)
}

TEST_CASE("rle decode rejects malformed encodings naming the value", "[rle][errors]") {
    using Catch::Matchers::Contains;
    SECTION("odd count") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("1 2 5", 3, 3), Contains("odd") && Contains("5"));
    }
    SECTION("non-numeric") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("1 x2", 3, 3), Contains("x2"));
        REQUIRE_THROWS_WITH(unetpp::rle_decode("-1 2", 3, 3), Contains("-1"));
    }
    SECTION("start below 1") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("0 2", 3, 3), Contains("start \"0\""));
    }
    SECTION("zero length") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("3 0", 3, 3), Contains("length \"0\""));
    }
    SECTION("past the last pixel") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("8 3", 3, 3), Contains("8 3") && Contains("10"));
    }
    SECTION("overlapping runs") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("1 3 3 1", 3, 3), Contains("start 3"));
    }
    SECTION("decreasing runs") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("5 1 2 1", 3, 3), Contains("start 2"));
    }
    SECTION("huge number") {
        REQUIRE_THROWS_WITH(unetpp::rle_decode("1 99999999999999999999", 3, 3),
                            Contains("99999999999999999999"));
    }
}
