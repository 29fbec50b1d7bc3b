// The competition score: IoU matrix, strict thresholds, precision and the mean over thresholds.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <unetpp/post/metric.hpp>
#include <unetpp/random.hpp>

using unetpp::LabelMap;

namespace {

// Scores are means of ten fractions with small denominators; only summation rounding remains.
constexpr double kScoreTolerance = 1e-12;

// A 1 x n strip whose pixels take the given labels.
LabelMap strip(const std::vector<int32_t>& values) {
    LabelMap m(1, int64_t(values.size()));
    m.labels = values;
    return m;
}

std::vector<int32_t> repeat(std::initializer_list<std::pair<int32_t, int>> runs) {
    std::vector<int32_t> out;
    for (auto r : runs) out.insert(out.end(), r.second, r.first);
    return out;
}

}  // namespace

TEST_CASE("metric: a perfect prediction scores 1 even with other label numbers", "[metric]") {
    LabelMap truth = strip(repeat({{5, 3}, {0, 2}, {9, 4}}));
    LabelMap pred = strip(repeat({{1, 3}, {0, 2}, {2, 4}}));
    unetpp::ImageScore s = unetpp::metric_image(truth, pred);
    REQUIRE(s.true_objects == 2);
    REQUIRE(s.predicted_objects == 2);
    REQUIRE(s.score == Approx(1.0).margin(kScoreTolerance));
    REQUIRE(s.thresholds.size() == 10);
    REQUIRE(s.thresholds.front().threshold == Approx(0.5));
    REQUIRE(s.thresholds.back().threshold == Approx(0.95));
}

TEST_CASE("metric: IoU exactly 0.5 is not a true positive at threshold 0.5", "[metric]") {
    // truth 4 pixels, prediction 2 of them: IoU = 2/4 = 0.5, never > t.
    // every t: TP 0, FP 1, FN 1 -> precision 0 -> score 0.
    LabelMap truth = strip(repeat({{1, 4}}));
    LabelMap pred = strip(repeat({{1, 2}, {0, 2}}));
    unetpp::ImageScore s = unetpp::metric_image(truth, pred);
    REQUIRE(s.thresholds[0].tp == 0);
    REQUIRE(s.thresholds[0].fp == 1);
    REQUIRE(s.thresholds[0].fn == 1);
    REQUIRE(s.score == 0.0);
}

TEST_CASE("metric: IoU exactly 0.55 passes 0.50 but not 0.55", "[metric]") {
    // truth 20 pixels, prediction 11 of them: IoU = 11/20 = 0.55.
    // t=0.50: TP 1 -> precision 1; t>=0.55: TP 0, FP 1, FN 1 -> 0. Score = 1/10.
    LabelMap truth = strip(repeat({{1, 20}}));
    LabelMap pred = strip(repeat({{1, 11}, {0, 9}}));
    unetpp::ImageScore s = unetpp::metric_image(truth, pred);
    REQUIRE(s.thresholds[0].tp == 1);
    REQUIRE(s.thresholds[0].precision == 1.0);
    REQUIRE(s.thresholds[1].tp == 0);
    REQUIRE(s.score == Approx(0.1).margin(kScoreTolerance));

    // 12 of 20: IoU 0.6 passes 0.50 and 0.55 -> 2/10.
    LabelMap pred12 = strip(repeat({{1, 12}, {0, 8}}));
    REQUIRE(unetpp::metric_image(truth, pred12).score == Approx(0.2).margin(kScoreTolerance));
}

TEST_CASE("metric: a split object counts one match and one false positive", "[metric]") {
    // truth: one object of 10 pixels; prediction: 6 + 4 pixels.
    // IoU 0.6 and 0.4. t in {0.50, 0.55}: TP 1, FP 1, FN 0 -> 1/2; t >= 0.6: TP 0, FP 2, FN 1 -> 0.
    // Score = (0.5 + 0.5) / 10 = 0.1.
    LabelMap truth = strip(repeat({{1, 10}}));
    LabelMap pred = strip(repeat({{1, 6}, {2, 4}}));
    unetpp::ImageScore s = unetpp::metric_image(truth, pred);
    REQUIRE(s.thresholds[0].tp == 1);
    REQUIRE(s.thresholds[0].fp == 1);
    REQUIRE(s.thresholds[0].fn == 0);
    REQUIRE(s.thresholds[2].fp == 2);
    REQUIRE(s.thresholds[2].fn == 1);
    REQUIRE(s.score == Approx(0.1).margin(kScoreTolerance));
}

TEST_CASE("metric: a merge counts one match and one false negative", "[metric]") {
    // truth: 6 + 4 pixels; prediction: one object over all 10. IoU 0.6 and 0.4.
    // t in {0.50, 0.55}: TP 1, FP 0, FN 1 -> 1/2; t >= 0.6: TP 0, FP 1, FN 2 -> 0. Score 0.1.
    LabelMap truth = strip(repeat({{1, 6}, {2, 4}}));
    LabelMap pred = strip(repeat({{1, 10}}));
    unetpp::ImageScore s = unetpp::metric_image(truth, pred);
    REQUIRE(s.thresholds[0].fn == 1);
    REQUIRE(s.score == Approx(0.1).margin(kScoreTolerance));
}

TEST_CASE("metric: missed and spurious objects lower every threshold", "[metric]") {
    // truth A(3) B(3) C(3); prediction A, B exactly plus a spurious D on background.
    // every t: TP 2, FP 1, FN 1 -> 2/4. Score 0.5.
    LabelMap truth = strip(repeat({{1, 3}, {2, 3}, {3, 3}, {0, 3}}));
    LabelMap pred = strip(repeat({{1, 3}, {2, 3}, {0, 3}, {4, 3}}));
    REQUIRE(unetpp::metric_image(truth, pred).score == Approx(0.5).margin(kScoreTolerance));
}

TEST_CASE("metric: empty images follow the Kaggle convention", "[metric]") {
    LabelMap none = strip(repeat({{0, 5}}));
    LabelMap one = strip(repeat({{0, 2}, {1, 3}}));
    SECTION("no truth, no prediction scores 1") {
        REQUIRE(unetpp::metric_image(none, none).score == 1.0);
    }
    SECTION("no truth, some prediction scores 0") {
        REQUIRE(unetpp::metric_image(none, one).score == 0.0);
    }
    SECTION("some truth, no prediction scores 0") {
        REQUIRE(unetpp::metric_image(one, none).score == 0.0);
    }
}

TEST_CASE("metric: overlaps match a brute-force IoU on random label maps", "[metric]") {
    unetpp::Rng rng(33);
    LabelMap truth(17, 33), pred(17, 33);
    for (int32_t& v : truth.labels) v = int32_t(rng.below(6));
    for (int32_t& v : pred.labels) v = int32_t(rng.below(5)) * 3;
    std::vector<unetpp::IouEntry> entries = unetpp::metric_overlaps(truth, pred);

    std::map<std::pair<int32_t, int32_t>, double> expected;
    for (int32_t t = 1; t < 6; ++t) {
        for (int32_t p = 3; p <= 12; p += 3) {
            int64_t inter = 0, uni = 0;
            for (int64_t i = 0; i < truth.size(); ++i) {
                bool a = truth.labels[i] == t, b = pred.labels[i] == p;
                inter += a && b;
                uni += a || b;
            }
            if (inter > 0) expected[{t, p}] = double(inter) / double(uni);
        }
    }
    REQUIRE(entries.size() == expected.size());
    for (const auto& e : entries) {
        INFO("truth " << e.truth << " predicted " << e.predicted);
        REQUIRE(e.iou() == expected.at({e.truth, e.predicted}));
    }
}

TEST_CASE("metric: mean over images and errors", "[metric][errors]") {
    unetpp::ImageScore a, b;
    a.score = 0.25;
    b.score = 0.75;
    REQUIRE(unetpp::metric_mean({a, b}) == 0.5);
    REQUIRE_THROWS_AS(unetpp::metric_mean({}), unetpp::Error);
    REQUIRE_THROWS_AS(unetpp::metric_image(LabelMap(2, 3), LabelMap(3, 2)), unetpp::ShapeError);
    LabelMap negative(1, 2);
    negative.labels[1] = -4;
    REQUIRE_THROWS_WITH(unetpp::metric_image(negative, LabelMap(1, 2)),
                        Catch::Matchers::Contains("-4"));
}
