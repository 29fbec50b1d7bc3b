#pragma once
// The 2018 Data Science Bowl score: mean average precision over IoU thresholds.
//
// For one image with true objects T and predicted objects P (the nonzero labels of two label
// maps, which need not be consecutive):
//   IoU(t, p) = |t ∩ p| / |t ∪ p|
//   for each threshold th in 0.50, 0.55, ..., 0.95:
//     TP(th) = number of pairs (t, p) with IoU(t, p) > th   (strictly greater)
//     FP(th) = |P| - TP(th),  FN(th) = |T| - TP(th)
//     precision(th) = TP / (TP + FP + FN)
//   score = mean over the 10 thresholds.
// Matching is one-to-one without an explicit assignment: objects within one label map cannot
// overlap, so a true object can have IoU > 0.5 with at most one predicted object and vice versa.
//
// Empty cases (the Kaggle convention): no true and no predicted objects scores 1; true objects
// but no predictions, or predictions but no true objects, score 0.
//
// IoU > th is decided exactly in integers (20 * |t ∩ p| > k * |t ∪ p| for th = k / 20), so an IoU
// of exactly 0.5 or 0.55 is never counted as passing its own threshold through rounding.
//
// The IoU matrix comes from one pass over the pixels that counts each (true, predicted) label
// pair (a sparse pixel-pair histogram), so the cost is O(pixels + pairs), not O(|T| |P| pixels).

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"

namespace unetpp {

// The thresholds are k / 20 for k in [kMetricFirstTwentieth, kMetricLastTwentieth].
constexpr int kMetricFirstTwentieth = 10;
constexpr int kMetricLastTwentieth = 19;
constexpr int kMetricThresholdCount = kMetricLastTwentieth - kMetricFirstTwentieth + 1;

// One overlapping (true, predicted) pair.
struct IouEntry {
    int32_t truth = 0;
    int32_t predicted = 0;
    int64_t intersection = 0;
    int64_t union_area = 0;
    double iou() const { return double(intersection) / double(union_area); }
};

// Counts at one threshold.
struct ThresholdCounts {
    double threshold = 0;
    int64_t tp = 0;
    int64_t fp = 0;
    int64_t fn = 0;
    double precision = 0;
};

// The score of one image with its per-threshold counts.
struct ImageScore {
    int64_t true_objects = 0;
    int64_t predicted_objects = 0;
    std::vector<ThresholdCounts> thresholds;  // kMetricThresholdCount entries, 0.50 first
    double score = 0;
};

namespace detail {

inline std::unordered_map<int32_t, int64_t> metric_areas(const LabelMap& labels,
                                                         const char* which) {
    std::unordered_map<int32_t, int64_t> area;
    for (int64_t p = 0; p < labels.size(); ++p) {
        int32_t v = labels.labels[p];
        if (v < 0) {
            throw Error(concat("metric: ", which, " label map has negative label ", v, " at (",
                               p / labels.width, ", ", p % labels.width, ")"));
        }
        if (v != 0) ++area[v];
    }
    return area;
}

// metric_overlaps, also reporting the number of true and predicted objects.
inline std::vector<IouEntry> metric_overlaps_counted(const LabelMap& truth,
                                                     const LabelMap& predicted,
                                                     int64_t& true_objects,
                                                     int64_t& predicted_objects) {
    if (truth.height != predicted.height || truth.width != predicted.width) {
        throw ShapeError(concat("metric: truth is ", truth.height, "x", truth.width,
                                        ", prediction is ", predicted.height, "x",
                                        predicted.width));
    }
    auto true_area = metric_areas(truth, "true");
    auto pred_area = metric_areas(predicted, "predicted");
    true_objects = static_cast<int64_t>(true_area.size());
    predicted_objects = static_cast<int64_t>(pred_area.size());

    // 1. pixel-pair histogram over pixels where both are foreground
    std::unordered_map<uint64_t, int64_t> pairs;
    for (int64_t p = 0; p < truth.size(); ++p) {
        uint32_t t = static_cast<uint32_t>(truth.labels[p]);
        uint32_t q = static_cast<uint32_t>(predicted.labels[p]);
        if (t != 0 && q != 0) ++pairs[(uint64_t(t) << 32) | q];
    }

    // 2. IoU entries in a fixed order
    std::vector<IouEntry> entries;
    entries.reserve(pairs.size());
    for (const auto& kv : pairs) {
        IouEntry e;
        e.truth = static_cast<int32_t>(kv.first >> 32);
        e.predicted = static_cast<int32_t>(kv.first & 0xffffffffu);
        e.intersection = kv.second;
        e.union_area = true_area[e.truth] + pred_area[e.predicted] - kv.second;
        entries.push_back(e);
    }
    std::sort(entries.begin(), entries.end(), [](const IouEntry& a, const IouEntry& b) {
        return a.truth != b.truth ? a.truth < b.truth : a.predicted < b.predicted;
    });
    return entries;
}

}  // namespace detail

// Every (true, predicted) pair that shares at least one pixel, sorted by (truth, predicted).
// Requires: equal sizes (ShapeError otherwise) and labels >= 0 (Error otherwise).
inline std::vector<IouEntry> metric_overlaps(const LabelMap& truth, const LabelMap& predicted) {
    int64_t true_objects = 0, predicted_objects = 0;
    return detail::metric_overlaps_counted(truth, predicted, true_objects, predicted_objects);
}

// Scores one image (see the file comment for the definition and the empty-image convention).
inline ImageScore metric_image(const LabelMap& truth, const LabelMap& predicted) {
    ImageScore result;
    std::vector<IouEntry> entries = detail::metric_overlaps_counted(
        truth, predicted, result.true_objects, result.predicted_objects);

    double sum = 0;
    for (int k = kMetricFirstTwentieth; k <= kMetricLastTwentieth; ++k) {
        ThresholdCounts c;
        c.threshold = k / 20.0;
        for (const IouEntry& e : entries) {
            if (20 * e.intersection > k * e.union_area) ++c.tp;
        }
        c.fp = result.predicted_objects - c.tp;
        c.fn = result.true_objects - c.tp;
        int64_t denominator = c.tp + c.fp + c.fn;
        c.precision = denominator == 0 ? 1.0 : double(c.tp) / double(denominator);
        sum += c.precision;
        result.thresholds.push_back(c);
    }
    result.score = sum / kMetricThresholdCount;
    return result;
}

// Mean of the image scores, summed in the order given. Throws Error on an empty list.
inline double metric_mean(const std::vector<ImageScore>& images) {
    if (images.empty()) {
        throw Error("metric_mean: no images to average (expected at least one ImageScore)");
    }
    double sum = 0;
    for (const ImageScore& s : images) sum += s.score;
    return sum / double(images.size());
}

}  // namespace unetpp
