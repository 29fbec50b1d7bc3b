// Small-object removal, hole filling, 3x3 erosion and dilation, Euclidean distance transform.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <unetpp/post/morphology.hpp>
#include <unetpp/random.hpp>

using unetpp::LabelMap;

namespace {

LabelMap from_rows(const std::vector<std::vector<int32_t>>& rows) {
    LabelMap m(int64_t(rows.size()), int64_t(rows[0].size()));
    for (int64_t y = 0; y < m.height; ++y)
        for (int64_t x = 0; x < m.width; ++x) m.at(y, x) = rows[y][x];
    return m;
}

}  // namespace

TEST_CASE("remove_small drops objects below the size and keeps the rest", "[morphology]") {
    LabelMap labels = from_rows({{1, 1, 0, 2}, {1, 0, 0, 0}, {3, 3, 3, 3}});
    LabelMap out = unetpp::morphology_remove_small(labels, 3);
    REQUIRE(out.labels == std::vector<int32_t>{1, 1, 0, 0, 1, 0, 0, 0, 3, 3, 3, 3});
    REQUIRE(unetpp::morphology_remove_small(labels, 1).labels == labels.labels);
}

TEST_CASE("fill_holes fills enclosed background of one object only", "[morphology]") {
    // Object 1 is a ring around a 2-pixel hole; object 2 touches the border with a notch open to
    // the border (not a hole); the background pocket between objects 1 and 3 is left alone.
    LabelMap labels = from_rows({{1, 1, 1, 1, 0, 2, 0},
                                 {1, 0, 0, 1, 0, 2, 2},
                                 {1, 1, 1, 1, 0, 0, 0},
                                 {0, 0, 0, 0, 0, 0, 0},
                                 {3, 3, 3, 1, 1, 1, 0},
                                 {3, 0, 0, 0, 0, 1, 0},
                                 {3, 3, 3, 1, 1, 1, 0}});
    LabelMap out = unetpp::morphology_fill_holes(labels);
    LabelMap expected = labels;
    expected.at(1, 1) = 1;
    expected.at(1, 2) = 1;
    REQUIRE(out.labels == expected.labels);
}

TEST_CASE("erosion peels one pixel and keeps objects at the image border", "[morphology]") {
    // A 5x5 square filling a 5x6 image: erosion clips the neighbourhood to the image, so only
    // the column next to the background (x = 4) goes and the rest survives.
    LabelMap mask(5, 6);
    for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 5; ++x) mask.at(y, x) = 1;
    LabelMap eroded = unetpp::morphology_erode(mask);
    for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 6; ++x) REQUIRE(eroded.at(y, x) == (x < 4 ? 1 : 0));
    // Touching labels erode apart along their common edge.
    LabelMap two = from_rows({{1, 1, 1, 2, 2, 2}, {1, 1, 1, 2, 2, 2}, {1, 1, 1, 2, 2, 2}});
    REQUIRE(unetpp::morphology_erode(two).labels ==
            std::vector<int32_t>{1, 1, 0, 0, 2, 2, 1, 1, 0, 0, 2, 2, 1, 1, 0, 0, 2, 2});
}

TEST_CASE("dilation grows a pixel into its 3x3 neighbourhood", "[morphology]") {
    LabelMap mask(3, 4);
    mask.at(0, 0) = 7;
    LabelMap out = unetpp::morphology_dilate(mask);
    REQUIRE(out.labels == std::vector<int32_t>{1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("distance transform matches brute force on random masks", "[morphology][distance]") {
    unetpp::Rng rng(7);
    for (int64_t h : {1, 3, 7, 17}) {
        for (int64_t w : {1, 3, 33}) {
            LabelMap mask(h, w);
            for (int32_t& v : mask.labels) v = rng.uniform() < 0.8;
            mask.labels[0] = 0;  // at least one background pixel
            auto dist = unetpp::morphology_distance(mask);
            for (int64_t y = 0; y < h; ++y) {
                for (int64_t x = 0; x < w; ++x) {
                    double best = std::numeric_limits<double>::infinity();
                    for (int64_t by = 0; by < h; ++by)
                        for (int64_t bx = 0; bx < w; ++bx)
                            if (mask.at(by, bx) == 0)
                                best = std::min(best, std::hypot(double(y - by), double(x - bx)));
                    INFO("h=" << h << " w=" << w << " y=" << y << " x=" << x);
                    REQUIRE(dist[y * w + x] == Approx(best).epsilon(1e-6));
                }
            }
        }
    }
}

TEST_CASE("distance transform of a mask without background is bounded by the diagonal",
          "[morphology][distance]") {
    LabelMap full(3, 4);
    for (int32_t& v : full.labels) v = 1;
    auto dist = unetpp::morphology_distance(full);
    for (float v : dist) REQUIRE(v == Approx(5.0f));
}
