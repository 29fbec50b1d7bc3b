// The synthetic nucleus generator: counts, touching pairs, gaps, determinism and styles.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <utility>
#include <unetpp/data/image_kind.hpp>
#include <unetpp/data/synthetic.hpp>

using unetpp::LabelMap;
using unetpp::SyntheticSpec;
using unetpp::SyntheticStyle;

namespace {

// Pairs {a < b} of labels with 4-adjacent pixels.
std::set<std::pair<int32_t, int32_t>> adjacent_pairs(const LabelMap& m) {
    std::set<std::pair<int32_t, int32_t>> pairs;
    for (int64_t y = 0; y < m.height; ++y) {
        for (int64_t x = 0; x < m.width; ++x) {
            int32_t a = m.at(y, x);
            for (auto [v, u] : {std::pair<int64_t, int64_t>{y + 1, x}, {y, x + 1}}) {
                if (v >= m.height || u >= m.width) continue;
                int32_t b = m.at(v, u);
                if (a > 0 && b > 0 && a != b) pairs.insert({std::min(a, b), std::max(a, b)});
            }
        }
    }
    return pairs;
}

// Smallest Chebyshev distance between a pixel of `label` and a pixel of another nucleus.
int64_t gap_to_others(const LabelMap& m, int32_t label) {
    int64_t best = 1 << 30;
    for (int64_t y = 0; y < m.height; ++y) {
        for (int64_t x = 0; x < m.width; ++x) {
            if (m.at(y, x) != label) continue;
            for (int64_t v = std::max<int64_t>(0, y - 6); v < std::min(m.height, y + 7); ++v) {
                for (int64_t u = std::max<int64_t>(0, x - 6); u < std::min(m.width, x + 7); ++u) {
                    int32_t o = m.at(v, u);
                    if (o > 0 && o != label) best = std::min(best, std::max(std::abs(v - y),
                                                                           std::abs(u - x)));
                }
            }
        }
    }
    return best;
}

}  // namespace

TEST_CASE("synthetic images hold the requested nuclei and touching pairs", "[synthetic]") {
    for (uint64_t seed : {1, 2, 3}) {
        SyntheticSpec spec;
        spec.height = 161;
        spec.width = 203;
        spec.objects = 11;
        spec.touching_pairs = 3;
        unetpp::SyntheticSample s = unetpp::synthetic_make(spec, seed);
        INFO("seed " << seed);
        REQUIRE(s.image.shape() == unetpp::Shape{3, 161, 203});
        REQUIRE(s.labels.height == 161);
        REQUIRE(s.labels.width == 203);
        REQUIRE(s.labels.max_label() == 11);
        std::vector<int64_t> area(12, 0);
        for (int32_t l : s.labels.labels) ++area[size_t(l)];
        for (int l = 1; l <= 11; ++l) REQUIRE(area[size_t(l)] >= 3);

        // pairs (1,2), (3,4), (5,6) touch; nothing else does
        std::set<std::pair<int32_t, int32_t>> expected = {{1, 2}, {3, 4}, {5, 6}};
        REQUIRE(adjacent_pairs(s.labels) == expected);
        for (int32_t l = 7; l <= 11; ++l) {
            REQUIRE(gap_to_others(s.labels, l) >= unetpp::kSyntheticGap);
        }
        REQUIRE(*std::min_element(s.image.begin(), s.image.end()) >= 0.0f);
        REQUIRE(*std::max_element(s.image.begin(), s.image.end()) <= 1.0f);
    }
}

TEST_CASE("synthetic output is a function of spec and seed", "[synthetic]") {
    SyntheticSpec spec;
    spec.height = 128;
    spec.width = 128;
    spec.objects = 6;
    spec.touching_pairs = 1;
    auto a = unetpp::synthetic_make(spec, 42), b = unetpp::synthetic_make(spec, 42);
    auto c = unetpp::synthetic_make(spec, 43);
    REQUIRE(a.labels.labels == b.labels.labels);
    REQUIRE(unetpp::tensor_max_abs_diff(a.image, b.image) == 0.0f);
    REQUIRE(a.labels.labels != c.labels.labels);
}

TEST_CASE("every synthetic style is classified as its kind", "[synthetic][image_kind]") {
    for (auto style : {SyntheticStyle::fluorescence, SyntheticStyle::brightfield,
                       SyntheticStyle::he}) {
        for (uint64_t seed : {5, 6}) {
            SyntheticSpec spec;
            spec.style = style;
            spec.height = 128;
            spec.width = 160;
            spec.objects = 8;
            spec.touching_pairs = 2;
            auto s = unetpp::synthetic_make(spec, seed);
            INFO("style " << int(style) << " seed " << seed);
            REQUIRE(unetpp::image_kind_classify(s.image) == s.kind);
        }
    }
}

TEST_CASE("synthetic nuclei are bright on dark in fluorescence and dark on light in brightfield",
          "[synthetic]") {
    for (auto style : {SyntheticStyle::fluorescence, SyntheticStyle::brightfield}) {
        SyntheticSpec spec;
        spec.style = style;
        spec.height = 96;
        spec.width = 96;
        spec.objects = 4;
        spec.touching_pairs = 1;
        auto s = unetpp::synthetic_make(spec, 9);
        double fg = 0, bg = 0;
        int64_t nf = 0, nb = 0;
        for (int64_t p = 0; p < 96 * 96; ++p) {
            (s.labels.labels[size_t(p)] ? fg : bg) += s.image[p];
            ++(s.labels.labels[size_t(p)] ? nf : nb);
        }
        double contrast = fg / double(nf) - bg / double(nb);
        if (style == SyntheticStyle::fluorescence) REQUIRE(contrast > 0.3);
        if (style == SyntheticStyle::brightfield) REQUIRE(contrast < -0.2);
    }
}

TEST_CASE("synthetic_make refuses specs that cannot fit", "[synthetic][errors]") {
    SyntheticSpec crowded;
    crowded.height = 48;
    crowded.width = 48;
    crowded.objects = 60;
    crowded.touching_pairs = 0;
    REQUIRE_THROWS_WITH(unetpp::synthetic_make(crowded, 1), Catch::Contains("could not place"));
    SyntheticSpec odd;
    odd.objects = 3;
    odd.touching_pairs = 2;
    REQUIRE_THROWS_AS(unetpp::synthetic_make(odd, 1), unetpp::Error);
}
