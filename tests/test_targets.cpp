// Target channels (mask, contour, touching, distance) and the U-Net weight map.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <unetpp/data/targets.hpp>
#include <unetpp/random.hpp>

using unetpp::LabelMap;
using unetpp::Tensor;

namespace {

// Paints label `l` on rows [y0, y1] and columns [x0, x1] (inclusive).
void paint(LabelMap& m, int32_t l, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
    for (int64_t y = y0; y <= y1; ++y) {
        for (int64_t x = x0; x <= x1; ++x) m.at(y, x) = l;
    }
}

// Two 4x4 squares side by side: label 1 on rows 2..5, cols 2..5; label 2 on rows 2..5, cols 6..9.
LabelMap two_touching_squares() {
    LabelMap m(9, 13);
    paint(m, 1, 2, 5, 2, 5);
    paint(m, 2, 2, 5, 6, 9);
    return m;
}

float channel_at(const Tensor<float>& t, int64_t c, int64_t y, int64_t x) {
    return t[(c * t.dim(1) + y) * t.dim(2) + x];
}

// Brute-force Euclidean distance from (y, x) to the nearest pixel with label l.
double brute_distance(const LabelMap& m, int64_t y, int64_t x, int32_t l) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < m.height; ++v) {
        for (int64_t u = 0; u < m.width; ++u) {
            if (m.at(v, u) == l) best = std::min(best, std::hypot(double(v - y), double(u - x)));
        }
    }
    return best;
}

}  // namespace

TEST_CASE("targets of two touching squares: mask, rims and the touching band", "[targets]") {
    LabelMap m = two_touching_squares();
    unetpp::TargetSpec spec;
    spec.contour = true;
    spec.contour_width = 1;
    spec.touching = true;
    spec.touching_radius = 1;
    Tensor<float> t = unetpp::targets_make(spec, m);
    REQUIRE(t.shape() == unetpp::Shape{3, 9, 13});
    for (int64_t y = 0; y < 9; ++y) {
        for (int64_t x = 0; x < 13; ++x) {
            bool in1 = y >= 2 && y <= 5 && x >= 2 && x <= 5;
            bool in2 = y >= 2 && y <= 5 && x >= 6 && x <= 9;
            // the rim of a square is its outermost ring of pixels
            bool rim1 = in1 && (y == 2 || y == 5 || x == 2 || x == 5);
            bool rim2 = in2 && (y == 2 || y == 5 || x == 6 || x == 9);
            // 3x3 windows holding both labels: columns 5 and 6, rows 1 to 6
            bool band = (x == 5 || x == 6) && y >= 1 && y <= 6;
            INFO("y=" << y << " x=" << x);
            REQUIRE(channel_at(t, 0, y, x) == float(in1 || in2));
            REQUIRE(channel_at(t, 1, y, x) == float(rim1 || rim2));
            REQUIRE(channel_at(t, 2, y, x) == float(band));
        }
    }
}

TEST_CASE("a wider contour covers the pixels within that Chebyshev distance", "[targets]") {
    LabelMap m(11, 11);
    paint(m, 1, 1, 9, 1, 9);  // 9x9 square
    unetpp::TargetSpec spec;
    spec.contour_width = 2;
    Tensor<float> t = unetpp::targets_make(spec, m);
    for (int64_t y = 1; y <= 9; ++y) {
        for (int64_t x = 1; x <= 9; ++x) {
            int64_t depth = std::min({y - 1, 9 - y, x - 1, 9 - x});  // 0 on the outer ring
            REQUIRE(channel_at(t, 1, y, x) == float(depth < 2));
        }
    }
}

TEST_CASE("nuclei cut by the image edge get no contour along the edge", "[targets]") {
    LabelMap m(5, 7);
    paint(m, 1, 0, 2, 0, 2);  // 3x3 in the top-left corner
    Tensor<float> t = unetpp::targets_make(unetpp::TargetSpec{}, m);
    // only row 2 and column 2 border the background; rows and columns off the map do not count
    for (int64_t y = 0; y <= 2; ++y) {
        for (int64_t x = 0; x <= 2; ++x) REQUIRE(channel_at(t, 1, y, x) == float(y == 2 || x == 2));
    }
}

TEST_CASE("isolated nuclei give no touching pixels", "[targets]") {
    LabelMap m(17, 17);
    paint(m, 1, 1, 4, 1, 4);
    paint(m, 2, 10, 15, 10, 15);
    unetpp::TargetSpec spec;
    spec.contour = false;
    spec.touching = true;
    spec.touching_radius = 2;
    Tensor<float> t = unetpp::targets_make(spec, m);
    REQUIRE(t.dim(0) == 2);
    for (int64_t p = 0; p < 17 * 17; ++p) REQUIRE(t[17 * 17 + p] == 0.0f);
}

TEST_CASE("the distance channel is 1/3, 2/3, 1 from rim to centre of a 5x5 square",
          "[targets]") {
    LabelMap m(7, 8);
    paint(m, 3, 1, 5, 2, 6);
    unetpp::TargetSpec spec;
    spec.contour = false;
    spec.distance = true;
    Tensor<float> t = unetpp::targets_make(spec, m);
    for (int64_t y = 0; y < 7; ++y) {
        for (int64_t x = 0; x < 8; ++x) {
            bool in = y >= 1 && y <= 5 && x >= 2 && x <= 6;
            float expected = 0.0f;
            if (in) expected = float(1 + std::min({y - 1, 5 - y, x - 2, 6 - x})) / 3.0f;
            REQUIRE(channel_at(t, 1, y, x) == Approx(expected).margin(1e-6));
        }
    }
}

TEST_CASE("the separable distance transform matches brute force", "[targets][edt]") {
    unetpp::Rng rng(11);
    for (int64_t h : {1, 3, 7, 17}) {
        for (int64_t w : {1, 3, 7, 17}) {
            std::vector<float> grid(static_cast<size_t>(h * w));
            LabelMap features(h, w);
            for (int64_t p = 0; p < h * w; ++p) {
                bool f = rng.uniform() < 0.2 || p == h * w / 2;
                features.labels[size_t(p)] = f ? 1 : 0;
                grid[size_t(p)] = f ? 0.0f : unetpp::detail::kEdtInfinity;
            }
            unetpp::detail::squared_distance_2d(grid.data(), h, w);
            for (int64_t p = 0; p < h * w; ++p) {
                double d = brute_distance(features, p / w, p % w, 1);
                INFO("h=" << h << " w=" << w << " p=" << p);
                REQUIRE(std::sqrt(grid[size_t(p)]) == Approx(d).margin(1e-4));
            }
        }
    }
}

TEST_CASE("the weight map matches the U-Net formula computed by brute force",
          "[targets][weights]") {
    LabelMap m = two_touching_squares();
    paint(m, 3, 7, 8, 11, 12);  // a third, small nucleus in the corner
    unetpp::WeightSpec spec;
    spec.w0 = 10.0;
    spec.sigma = 3.0;  // margin 12 covers the whole 9x13 map: no truncation
    spec.foreground_weight = 2.0;
    spec.background_weight = 0.5;
    Tensor<float> w = unetpp::weight_map_make(spec, m);
    REQUIRE(w.shape() == unetpp::Shape{1, 9, 13});
    for (int64_t y = 0; y < 9; ++y) {
        for (int64_t x = 0; x < 13; ++x) {
            std::vector<double> d = {brute_distance(m, y, x, 1), brute_distance(m, y, x, 2),
                                     brute_distance(m, y, x, 3)};
            std::sort(d.begin(), d.end());
            double s = d[0] + d[1];
            double expected = (m.at(y, x) > 0 ? 2.0 : 0.5) + 10.0 * std::exp(-s * s / 18.0);
            INFO("y=" << y << " x=" << x);
            REQUIRE(w[y * 13 + x] == Approx(expected).epsilon(1e-5));
        }
    }
}

TEST_CASE("the weight map's truncation far from nuclei stays below w0 * exp(-8)",
          "[targets][weights]") {
    LabelMap m(40, 40);
    paint(m, 1, 2, 4, 2, 4);
    paint(m, 2, 2, 4, 6, 8);
    unetpp::WeightSpec spec;
    spec.sigma = 1.0;  // margin 4
    Tensor<float> w = unetpp::weight_map_make(spec, m);
    for (int64_t y = 0; y < 40; ++y) {
        for (int64_t x = 0; x < 40; ++x) {
            double s = brute_distance(m, y, x, 1) + brute_distance(m, y, x, 2);
            double exact = 1.0 + spec.w0 * std::exp(-s * s / 2.0);
            REQUIRE(std::abs(w[y * 40 + x] - exact) <= spec.w0 * std::exp(-8.0) + 1e-5);
        }
    }
}

TEST_CASE("with one nucleus the weight map is the class weights alone", "[targets][weights]") {
    LabelMap m(6, 5);
    paint(m, 1, 1, 3, 1, 2);
    unetpp::WeightSpec spec;
    spec.foreground_weight = 3.0;
    Tensor<float> w = unetpp::weight_map_make(spec, m);
    for (int64_t p = 0; p < 30; ++p) REQUIRE(w[p] == (m.labels[size_t(p)] ? 3.0f : 1.0f));
}

TEST_CASE("targets reject empty maps, negative labels and bad widths", "[targets][errors]") {
    REQUIRE_THROWS_AS(unetpp::targets_make({}, LabelMap()), unetpp::ShapeError);
    LabelMap m(3, 3);
    m.at(1, 1) = -2;
    REQUIRE_THROWS_AS(unetpp::targets_make({}, m), unetpp::Error);
    REQUIRE_THROWS_AS(unetpp::weight_map_make({}, m), unetpp::Error);
    m.at(1, 1) = 1;
    unetpp::TargetSpec bad;
    bad.contour_width = 0;
    REQUIRE_THROWS_AS(unetpp::targets_make(bad, m), unetpp::Error);
    unetpp::WeightSpec no_sigma;
    no_sigma.sigma = 0.0;
    REQUIRE_THROWS_AS(unetpp::weight_map_make(no_sigma, m), unetpp::Error);
}
