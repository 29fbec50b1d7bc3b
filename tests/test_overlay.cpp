// Label outlines drawn over an image.
#include <catch2/catch.hpp>

#include <set>
#include <unetpp/post/overlay.hpp>

using unetpp::LabelMap;
using unetpp::Tensor;

TEST_CASE("overlay colours outline pixels and keeps the rest of a gray image", "[overlay]") {
    // A 3x3 object in the middle of a 5x5 image: its 8 border pixels touch the background, the
    // centre does not.
    LabelMap labels(5, 5);
    for (int64_t y = 1; y < 4; ++y)
        for (int64_t x = 1; x < 4; ++x) labels.at(y, x) = 2;
    Tensor<float> gray({5, 5});
    gray.fill(0.5f);
    auto rgb = unetpp::overlay_outlines(unetpp::OverlaySpec{}, gray, labels);
    REQUIRE(rgb.size() == 5 * 5 * 3);
    auto colour = unetpp::overlay_colour(2);
    for (int64_t y = 0; y < 5; ++y) {
        for (int64_t x = 0; x < 5; ++x) {
            bool outline = labels.at(y, x) == 2 && !(y == 2 && x == 2);
            for (int c = 0; c < 3; ++c) {
                INFO("y=" << y << " x=" << x << " c=" << c);
                REQUIRE(int(rgb[(y * 5 + x) * 3 + c]) == (outline ? int(colour[c]) : 128));
            }
        }
    }
}

TEST_CASE("overlay outlines both sides of two touching labels and reads RGB", "[overlay]") {
    LabelMap labels(1, 4);
    labels.labels = {1, 1, 2, 2};
    Tensor<float> rgb_image({3, 1, 4});
    for (int64_t x = 0; x < 4; ++x) rgb_image[0 * 4 + x] = 1.0f;  // red everywhere
    auto rgb = unetpp::overlay_outlines(unetpp::OverlaySpec{}, rgb_image, labels);
    REQUIRE(rgb[0] == 255);
    REQUIRE(rgb[1] == 0);
    auto c1 = unetpp::overlay_colour(1), c2 = unetpp::overlay_colour(2);
    REQUIRE(rgb[3] == c1[0]);
    REQUIRE(rgb[6 + 1] == c2[1]);
    REQUIRE(rgb[9] == 255);
}

TEST_CASE("overlay colours of the first labels are distinct", "[overlay]") {
    std::set<std::array<uint8_t, 3>> seen;
    for (int32_t k = 1; k <= 50; ++k) seen.insert(unetpp::overlay_colour(k));
    REQUIRE(seen.size() == 50);
}

TEST_CASE("overlay rejects images that do not fit the labels", "[overlay][errors]") {
    LabelMap labels(4, 5);
    REQUIRE_THROWS_AS(unetpp::overlay_outlines({}, Tensor<float>({5, 4}), labels),
                      unetpp::ShapeError);
    REQUIRE_THROWS_AS(unetpp::overlay_outlines({}, Tensor<float>({2, 4, 5}), labels),
                      unetpp::ShapeError);
    REQUIRE_NOTHROW(unetpp::overlay_outlines({}, Tensor<float>({4, 4, 5}), labels));
}
