#pragma once
// Marker-controlled watershed by priority flood (Beucher and Meyer, "The morphological approach to
// segmentation: the watershed transformation", 1993; the flooding order of Meyer's algorithm).
//
// Every marker pixel inside the mask is seeded into a min-heap keyed on (elevation, insertion
// number). Popping the lowest entry, each unlabelled in-mask neighbour takes the popped pixel's
// label and is pushed with its own elevation. A pixel is labelled when first reached and never
// changes, so each label grows as one connected region from its marker. Ties in elevation go to
// the entry inserted first, so the result is deterministic and independent of thread count (the
// flood is sequential).
//
// Departure from scikit-image's watershed: no watershed lines (every reached pixel gets a label),
// and in-mask pixels that no marker can reach stay 0; the caller decides what to do with them.

#include <cmath>
#include <cstdint>
#include <queue>
#include <vector>

#include "unetpp/label_map.hpp"
#include "unetpp/post/connected_components.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

struct FloodEntry {
    float elevation;
    uint64_t order;  // insertion number, breaks ties deterministically
    int64_t pixel;
};

struct FloodAfter {
    bool operator()(const FloodEntry& a, const FloodEntry& b) const {
        if (a.elevation != b.elevation) return a.elevation > b.elevation;
        return a.order > b.order;
    }
};

// Throws ShapeError unless `image` is a contiguous {height, width} view.
inline void image_check(const char* what, ConstTensorView<float> image, int64_t height,
                        int64_t width) {
    shape_check(what, image.shape(), Shape{height, width});
    contiguous_check(what, image);
}

}  // namespace detail

// Floods `elevation` from `markers` inside `mask`.
// Requires: elevation a contiguous {H, W} view without NaN; markers and mask H x W LabelMaps;
// markers >= 0 (0 = no marker); mask nonzero where flooding is allowed.
// Guarantees: the result is 0 outside the mask; marker pixels inside the mask keep their label;
// every in-mask pixel connected (under `conn`, inside the mask) to a marker gets a marker's
// label; in-mask pixels with no path to a marker stay 0. Marker pixels outside the mask are
// ignored. Throws ShapeError on mismatched sizes, Error on NaN elevation or negative markers.
inline LabelMap watershed_flood(ConstTensorView<float> elevation, const LabelMap& markers,
                                const LabelMap& mask, Connectivity conn = Connectivity::Four) {
    const int64_t h = mask.height, w = mask.width;
    detail::image_check("watershed_flood elevation", elevation, h, w);
    if (markers.height != h || markers.width != w) {
        throw ShapeError(detail::concat("watershed_flood: markers are ", markers.height, "x",
                                        markers.width, ", the mask is ", h, "x", w));
    }
    const float* elev = elevation.data();

    // 1. seed every in-mask marker pixel, in raster order
    LabelMap out(h, w);
    std::priority_queue<detail::FloodEntry, std::vector<detail::FloodEntry>, detail::FloodAfter>
        heap;
    uint64_t order = 0;
    for (int64_t p = 0; p < h * w; ++p) {
        if (std::isnan(elev[p])) {
            throw Error(detail::concat("watershed_flood: elevation is NaN at (", p / w, ", ",
                                       p % w, ")"));
        }
        int32_t m = markers.labels[p];
        if (m < 0) {
            throw Error(detail::concat("watershed_flood: negative marker ", m, " at (", p / w,
                                       ", ", p % w, ")"));
        }
        if (m == 0 || mask.labels[p] == 0) continue;
        out.labels[p] = m;
        heap.push({elev[p], order++, p});
    }

    // 2. flood from the lowest entry outwards
    while (!heap.empty()) {
        detail::FloodEntry e = heap.top();
        heap.pop();
        int32_t label = out.labels[e.pixel];
        detail::for_each_neighbour(e.pixel / w, e.pixel % w, h, w, conn,
                                   [&](int64_t ny, int64_t nx) {
                                       int64_t q = ny * w + nx;
                                       if (mask.labels[q] == 0 || out.labels[q] != 0) return;
                                       out.labels[q] = label;
                                       heap.push({elev[q], order++, q});
                                   });
    }
    return out;
}

}  // namespace unetpp
