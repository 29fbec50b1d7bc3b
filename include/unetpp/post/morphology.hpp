#pragma once
// Morphology on label maps: small-object removal, hole filling, 3x3 erosion and dilation, and the
// exact Euclidean distance transform.
//
// Border rule for erosion and dilation: the 3x3 neighbourhood is clipped to the image, so the
// outside of the image neither erodes an object touching the border nor dilates into it. This
// keeps markers for nuclei that the image border cuts.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

#include "unetpp/detail/distance_transform.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/post/connected_components.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// Area (pixel count) of every label, indexed by label value; entry 0 counts the background.
// Requires labels >= 0.
inline std::vector<int64_t> labels_area(const LabelMap& labels) {
    std::vector<int64_t> area(static_cast<size_t>(labels.max_label()) + 1, 0);
    for (int32_t v : labels.labels) {
        if (v < 0) {
            throw Error(detail::concat("labels_area: negative label ", v,
                                       " (labels must be 0 for background or positive)"));
        }
        ++area[v];
    }
    return area;
}

// Sets to 0 every object whose area is below `min_size` pixels; other labels keep their values
// (call labels_relabel to make them consecutive). min_size <= 1 removes nothing.
inline LabelMap morphology_remove_small(const LabelMap& labels, int64_t min_size) {
    LabelMap out = labels;
    if (min_size <= 1) return out;
    std::vector<int64_t> area = labels_area(labels);
    for (int32_t& v : out.labels) {
        if (v != 0 && area[v] < min_size) v = 0;
    }
    return out;
}

// Fills the holes of each object. A hole is a 4-connected component of background (0) pixels
// that does not touch the image border and whose neighbouring pixels all belong to one object;
// it takes that object's label. A background region enclosed by two objects (say a ring around
// another nucleus) is left alone, since it belongs to neither.
inline LabelMap morphology_fill_holes(const LabelMap& labels) {
    const int64_t h = labels.height, w = labels.width;
    LabelMap background(h, w);
    for (int64_t p = 0; p < labels.size(); ++p) background.labels[p] = labels.labels[p] == 0;
    LabelMap regions = connected_components_label(background, Connectivity::Four);

    // 1. per background region: does it touch the border, and which single object surrounds it
    constexpr int32_t kNone = 0, kMany = -1;
    std::vector<int32_t> owner(static_cast<size_t>(regions.max_label()) + 1, kNone);
    std::vector<char> open(owner.size(), 0);
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t r = regions.at(y, x);
            if (r == 0) continue;
            if (y == 0 || x == 0 || y == h - 1 || x == w - 1) open[r] = 1;
            detail::for_each_neighbour(y, x, h, w, Connectivity::Four, [&](int64_t ny, int64_t nx) {
                int32_t v = labels.at(ny, nx);
                if (v == 0 || owner[r] == kMany) return;
                owner[r] = owner[r] == kNone || owner[r] == v ? v : kMany;
            });
        }
    }

    // 2. fill the enclosed regions
    LabelMap out = labels;
    for (int64_t p = 0; p < out.size(); ++p) {
        int32_t r = regions.labels[p];
        if (r != 0 && !open[r] && owner[r] > 0) out.labels[p] = owner[r];
    }
    return out;
}

// 3x3 erosion of every object: a pixel keeps its label only when each in-image pixel of its 3x3
// neighbourhood has the same label. On a 0/1 mask this is binary erosion. Objects also separate
// from touching neighbours, since a pixel next to another label is removed.
inline LabelMap morphology_erode(const LabelMap& labels) {
    const int64_t h = labels.height, w = labels.width;
    LabelMap out(h, w);
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t v = labels.at(y, x);
            if (v == 0) continue;
            bool keep = true;
            detail::for_each_neighbour(y, x, h, w, Connectivity::Eight,
                                       [&](int64_t ny, int64_t nx) {
                                           if (labels.at(ny, nx) != v) keep = false;
                                       });
            out.at(y, x) = keep ? v : 0;
        }
    }
    return out;
}

// 3x3 binary dilation: the result is 1 wherever some in-image pixel of the 3x3 neighbourhood of
// `mask` is nonzero, 0 elsewhere.
inline LabelMap morphology_dilate(const LabelMap& mask) {
    const int64_t h = mask.height, w = mask.width;
    LabelMap out(h, w);
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            bool on = mask.at(y, x) != 0;
            detail::for_each_neighbour(y, x, h, w, Connectivity::Eight,
                                       [&](int64_t ny, int64_t nx) {
                                           if (mask.at(ny, nx) != 0) on = true;
                                       });
            out.at(y, x) = on;
        }
    }
    return out;
}

// Exact Euclidean distance from every pixel to the nearest background (0) pixel of `mask`:
// 0 on the background, >= 1 on the foreground, as a {H, W} tensor. Only in-image background
// counts (as scipy's distance_transform_edt); a mask with no background at all gets
// sqrt(H^2 + W^2) everywhere, a bound on any in-image distance.
inline Tensor<float> morphology_distance(const LabelMap& mask) {
    const int64_t h = mask.height, w = mask.width;
    Tensor<float> out({h, w});
    if (h == 0 || w == 0) return out;
    const double big = double(h) * h + double(w) * w;
    const double far = 1e20;  // "no background on this line yet"; finite so the envelope works
    std::vector<double> grid(static_cast<size_t>(h * w));
    for (int64_t p = 0; p < h * w; ++p) grid[p] = mask.labels[p] == 0 ? 0.0 : far;

    detail::squared_distance_2d(grid.data(), h, w);
    for (int64_t p = 0; p < h * w; ++p) out[p] = float(std::sqrt(std::min(grid[p], big)));
    return out;
}

}  // namespace unetpp
