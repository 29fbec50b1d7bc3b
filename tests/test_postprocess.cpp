// From nucleus and boundary probabilities to separate nuclei.
#include <catch2/catch.hpp>

#include <string>
#include <vector>
#include <unetpp/post/connected_components.hpp>
#include <unetpp/post/metric.hpp>
#include <unetpp/post/postprocess.hpp>

using unetpp::LabelMap;
using unetpp::PostprocessConfig;
using unetpp::Tensor;

namespace {

struct Disk {
    double cy, cx, r;
};

// Instance labels of disks, each pixel going to the nearest centre among the disks holding it.
LabelMap disks_truth(int64_t h, int64_t w, const std::vector<Disk>& disks) {
    LabelMap truth(h, w);
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            double best = 1e30;
            for (size_t k = 0; k < disks.size(); ++k) {
                double d2 = (y - disks[k].cy) * (y - disks[k].cy) +
                            (x - disks[k].cx) * (x - disks[k].cx);
                if (d2 <= disks[k].r * disks[k].r && d2 < best) {
                    best = d2;
                    truth.at(y, x) = int32_t(k + 1);
                }
            }
        }
    }
    return truth;
}

// A {2, H, W} network output idealised from the truth: channel 0 is 0.95 on nuclei and 0.05
// elsewhere; channel 1 is 0.9 on each nucleus pixel with a 3x3 neighbour of another label
// (contours and the seam between touching nuclei) and 0.05 elsewhere.
Tensor<float> probs_from(const LabelMap& truth) {
    const int64_t h = truth.height, w = truth.width;
    Tensor<float> probs({2, h, w});
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t v = truth.at(y, x);
            bool edge = false;
            for (int64_t dy = -1; dy <= 1; ++dy)
                for (int64_t dx = -1; dx <= 1; ++dx) {
                    int64_t ny = y + dy, nx = x + dx;
                    bool inside = ny >= 0 && ny < h && nx >= 0 && nx < w;
                    if (inside && truth.at(ny, nx) != v) edge = true;
                }
            probs[y * w + x] = v != 0 ? 0.95f : 0.05f;
            probs[h * w + y * w + x] = v != 0 && edge ? 0.9f : 0.05f;
        }
    }
    return probs;
}

// Requires the labels present to be exactly 1..max_label.
void require_consecutive(const LabelMap& labels) {
    int32_t n = labels.max_label();
    REQUIRE(unetpp::labels_count(labels) == n);
}

}  // namespace

TEST_CASE("postprocess splits two touching disks using the boundary channel", "[postprocess]") {
    LabelMap truth = disks_truth(41, 47, {{20, 14, 10}, {20, 32, 10}});
    Tensor<float> probs = probs_from(truth);
    LabelMap out = unetpp::postprocess_probs(PostprocessConfig{}, probs);
    REQUIRE(out.max_label() == 2);
    require_consecutive(out);
    unetpp::ImageScore s = unetpp::metric_image(truth, out);
    INFO("score " << s.score);
    REQUIRE(s.thresholds[0].tp == 2);
    REQUIRE(s.score >= 0.8);
    for (int64_t p = 0; p < truth.size(); ++p) {
        REQUIRE((out.labels[p] != 0) == (truth.labels[p] != 0));
    }
}

TEST_CASE("postprocess keeps a single disk as one object", "[postprocess]") {
    LabelMap truth = disks_truth(33, 33, {{16, 16, 11}});
    Tensor<float> probs = probs_from(truth);
    LabelMap out = unetpp::postprocess_probs(PostprocessConfig{}, probs);
    REQUIRE(out.max_label() == 1);
    REQUIRE(unetpp::metric_image(truth, out).score == 1.0);
}

TEST_CASE("postprocess without a boundary channel splits disks at a narrow neck",
          "[postprocess]") {
    // Centres 20 apart with radius 10: the disks meet in a neck about one pixel wide.
    LabelMap truth = disks_truth(41, 51, {{20, 15, 10}, {20, 35, 10}});
    Tensor<float> probs = probs_from(truth);
    PostprocessConfig config;
    config.boundary_channel = -1;
    LabelMap out = unetpp::postprocess_probs(config, probs);
    REQUIRE(out.max_label() == 2);
    REQUIRE(unetpp::metric_image(truth, out).thresholds[0].tp == 2);
}

TEST_CASE("postprocess keeps nuclei too thin for a distance marker", "[postprocess]") {
    // A 2-pixel-wide bar: no pixel lies 3 px from the background, so no marker; keep_unmarked
    // turns the whole component into an object, and turning it off drops it.
    Tensor<float> nucleus({9, 17});
    for (int64_t x = 2; x < 15; ++x) {
        nucleus[4 * 17 + x] = 0.9f;
        nucleus[5 * 17 + x] = 0.9f;
    }
    PostprocessConfig config;
    REQUIRE(unetpp::postprocess_run(config, nucleus).max_label() == 1);
    config.keep_unmarked = false;
    REQUIRE(unetpp::postprocess_run(config, nucleus).max_label() == 0);
}

TEST_CASE("postprocess removes small objects and fills holes", "[postprocess]") {
    // A ring of outer radius 8 around a hole of radius 2, plus a 2x2 speck far away.
    const int64_t h = 25, w = 33;
    Tensor<float> nucleus({h, w}), boundary({h, w});
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            double d2 = (y - 12.0) * (y - 12.0) + (x - 12.0) * (x - 12.0);
            nucleus[y * w + x] = d2 <= 64 && d2 > 4 ? 0.9f : 0.1f;
        }
    }
    for (int64_t y = 2; y < 4; ++y)
        for (int64_t x = 28; x < 30; ++x) nucleus[y * w + x] = 0.9f;
    LabelMap out = unetpp::postprocess_run(PostprocessConfig{}, nucleus, boundary);
    REQUIRE(out.max_label() == 1);
    REQUIRE(out.at(12, 12) == 1);  // hole filled
    REQUIRE(out.at(2, 28) == 0);   // speck removed

    PostprocessConfig keep;
    keep.min_object_size = 0;
    keep.min_marker_size = 0;
    keep.fill_holes = false;
    LabelMap raw = unetpp::postprocess_run(keep, nucleus, boundary);
    REQUIRE(raw.max_label() == 2);
    REQUIRE(raw.at(12, 12) == 0);
    REQUIRE(raw.at(2, 28) == 1);  // the speck's first pixel (row 2) precedes the ring's (row 4)
    REQUIRE(raw.at(12, 6) == 2);
}

TEST_CASE("postprocess accepts {1, C, H, W} and rejects bad shapes", "[postprocess][errors]") {
    LabelMap truth = disks_truth(21, 23, {{10, 11, 7}});
    Tensor<float> probs = probs_from(truth);
    Tensor<float> batched({1, 2, 21, 23});
    std::copy(probs.begin(), probs.end(), batched.begin());
    REQUIRE(unetpp::postprocess_probs(PostprocessConfig{}, batched).max_label() == 1);

    Tensor<float> one_channel({1, 21, 23});
    REQUIRE_THROWS_WITH(unetpp::postprocess_probs(PostprocessConfig{}, one_channel),
                        Catch::Matchers::Contains("boundary_channel = -1"));
    PostprocessConfig no_nucleus;  // no hint to drop a channel the pipeline cannot do without
    no_nucleus.nucleus_channel = 5;
    REQUIRE_THROWS_WITH(unetpp::postprocess_probs(no_nucleus, probs),
                        Catch::Matchers::Contains("nucleus channel 5 out of range") &&
                            !Catch::Matchers::Contains("channel = -1"));
    REQUIRE_THROWS_AS(unetpp::postprocess_probs(PostprocessConfig{}, Tensor<float>({21, 23})),
                      unetpp::ShapeError);
    REQUIRE_THROWS_AS(unetpp::postprocess_run(PostprocessConfig{}, Tensor<float>({21, 23}),
                                              Tensor<float>({21, 22})),
                      unetpp::ShapeError);
    PostprocessConfig bad;
    bad.min_object_size = -1;
    REQUIRE_THROWS_AS(unetpp::postprocess_run(bad, Tensor<float>({3, 3})), unetpp::Error);
}

TEST_CASE("postprocess config survives its text form and rejects bad items",
          "[postprocess][config]") {
    PostprocessConfig c;
    c.mask_threshold = 0.4f;
    c.marker_threshold = 0.7f;
    c.boundary_threshold = 0.3f;
    c.marker_erosion = 2;
    c.min_object_size = 25;
    c.fill_holes = false;
    const std::string text = unetpp::postprocess_config_to_string(c);
    CHECK(text.find("marker_threshold=0.7") != std::string::npos);

    SECTION("round trip") {
        PostprocessConfig back = unetpp::postprocess_config_parse(text);
        CHECK(back.mask_threshold == c.mask_threshold);
        CHECK(back.marker_threshold == c.marker_threshold);
        CHECK(back.boundary_threshold == c.boundary_threshold);
        CHECK(back.marker_erosion == 2);
        CHECK(back.min_object_size == 25);
        CHECK_FALSE(back.fill_holes);
        CHECK(back.keep_unmarked);
    }
    SECTION("absent keys keep the base's values") {
        PostprocessConfig back = unetpp::postprocess_config_parse("min_object_size=7", c);
        CHECK(back.min_object_size == 7);
        CHECK(back.marker_threshold == c.marker_threshold);
    }
    SECTION("unknown keys and non-numbers are refused, naming the item") {
        CHECK_THROWS_WITH(unetpp::postprocess_config_parse("threshold=0.5"),
                          Catch::Contains("unknown key \"threshold\""));
        CHECK_THROWS_WITH(unetpp::postprocess_config_parse("mask_threshold=high"),
                          Catch::Contains("\"mask_threshold=high\" is not key=number"));
        CHECK_THROWS_WITH(unetpp::postprocess_config_parse("mask_threshold"),
                          Catch::Contains("is not key=number"));
    }
}
