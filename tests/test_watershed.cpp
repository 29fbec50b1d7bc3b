// Marker-controlled watershed by priority flood.
#include <catch2/catch.hpp>

#include <cmath>
#include <unetpp/post/morphology.hpp>
#include <unetpp/post/watershed.hpp>

using unetpp::LabelMap;
using unetpp::Tensor;

namespace {

struct Disk {
    double cy, cx, r;
    bool contains(int64_t y, int64_t x) const {
        return (y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r;
    }
};

}  // namespace

TEST_CASE("watershed separates two touching disks along the neck", "[watershed]") {
    // Disks of radius 9 with centres 16 apart overlap in a lens; the neck is at x = 20.
    const int64_t h = 33, w = 41;
    Disk a{16, 12, 9}, b{16, 28, 9};
    LabelMap mask(h, w), markers(h, w);
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) mask.at(y, x) = a.contains(y, x) || b.contains(y, x);
    for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
            markers.at(16 + dy, 12 + dx) = 1;
            markers.at(16 + dy, 28 + dx) = 2;
        }
    Tensor<float> elevation = unetpp::morphology_distance(mask);
    for (float& v : elevation) v = -v;

    LabelMap out = unetpp::watershed_flood(elevation, markers, mask);
    int64_t own = 0, total = 0;
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t v = out.at(y, x);
            if (mask.at(y, x) == 0) {
                REQUIRE(v == 0);
                continue;
            }
            REQUIRE(v != 0);
            if (x == 20) continue;  // on the neck either label is right
            ++total;
            own += v == (x < 20 ? 1 : 2);
        }
    }
    INFO("pixels on their own side: " << own << " of " << total);
    REQUIRE(own >= total * 98 / 100);
}

TEST_CASE("watershed on a flat strip splits halfway, first-inserted marker first",
          "[watershed]") {
    // Flat elevation: the flood alternates between the two seeds, pixel 0's seed was inserted
    // first, so it takes the middle pixel 3.
    LabelMap mask(1, 7), markers(1, 7);
    for (int32_t& v : mask.labels) v = 1;
    markers.labels[0] = 1;
    markers.labels[6] = 2;
    Tensor<float> flat({1, 7});
    LabelMap out = unetpp::watershed_flood(flat, markers, mask);
    REQUIRE(out.labels == std::vector<int32_t>{1, 1, 1, 1, 2, 2, 2});
}

TEST_CASE("watershed divides at the ridge of the elevation", "[watershed]") {
    // Basins at both ends, ridge at index 5. Pixels are labelled when first pushed: popping in
    // elevation order reaches 4 (elevation 3) before 6 (elevation 4), so the left flood pushes
    // the ridge pixel 5 first and it joins the left basin.
    LabelMap mask(1, 9), markers(1, 9);
    for (int32_t& v : mask.labels) v = 1;
    markers.labels[0] = 1;
    markers.labels[8] = 2;
    Tensor<float> elev({1, 9});
    float values[9] = {0, 1, 2, 3, 3, 9, 4, 1, 0};
    for (int i = 0; i < 9; ++i) elev[i] = values[i];
    LabelMap out = unetpp::watershed_flood(elev, markers, mask);
    REQUIRE(out.labels == std::vector<int32_t>{1, 1, 1, 1, 1, 1, 2, 2, 2});
}

TEST_CASE("watershed leaves pixels without a path to a marker at 0", "[watershed]") {
    // mask: two separate segments; marker only in the first; markers off the mask are ignored.
    LabelMap mask(1, 7), markers(1, 7);
    mask.labels = {1, 1, 0, 1, 1, 0, 0};
    markers.labels = {0, 3, 0, 0, 0, 0, 5};
    Tensor<float> flat({1, 7});
    LabelMap out = unetpp::watershed_flood(flat, markers, mask);
    REQUIRE(out.labels == std::vector<int32_t>{3, 3, 0, 0, 0, 0, 0});
}

TEST_CASE("watershed rejects mismatched sizes, NaN and negative markers",
          "[watershed][errors]") {
    LabelMap mask(2, 3), markers(2, 3);
    REQUIRE_THROWS_AS(unetpp::watershed_flood(Tensor<float>({3, 2}), markers, mask),
                      unetpp::ShapeError);
    REQUIRE_THROWS_AS(unetpp::watershed_flood(Tensor<float>({2, 3}), LabelMap(3, 2), mask),
                      unetpp::ShapeError);
    Tensor<float> nan({2, 3});
    nan[4] = std::nanf("");
    REQUIRE_THROWS_WITH(unetpp::watershed_flood(nan, markers, mask),
                        Catch::Matchers::Contains("NaN at (1, 1)"));
    markers.labels[2] = -1;
    REQUIRE_THROWS_AS(unetpp::watershed_flood(Tensor<float>({2, 3}), markers, mask),
                      unetpp::Error);
}
