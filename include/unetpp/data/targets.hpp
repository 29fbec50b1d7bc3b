#pragma once
// Training targets and loss weights from an instance label map.
//
// targets_make returns {C, H, W} float channels, in this order (each after the first optional):
//   mask      1 on nucleus pixels (label > 0), else 0. Always channel 0.
//   contour   1 on nucleus pixels within contour_width of a pixel with another label
//             (background or another nucleus): the nucleus's own inner rim, max(|dy|,|dx|) <=
//             contour_width, so width 1 is the 8-connected inner boundary. Pixels outside the
//             image do not count: a nucleus cut by the image edge gets no rim there.
//   touching  1 on any pixel (nucleus or background) whose (2r+1)^2 window, r = touching_radius,
//             holds pixels of two different nuclei: the thin band where touching or nearly
//             touching nuclei meet, which a network must learn to cut. Isolated nuclei give none.
//   distance  inside each nucleus, the Euclidean distance to the nearest pixel not of that
//             nucleus (outside the image counts as not), divided by that nucleus's largest
//             distance: 1 at its centre, about 1/max near its rim; 0 on background.
// Use "contour" to separate every nucleus from its surroundings and "touching" to focus on
// the cuts between neighbours; a watershed can seed from mask - contour or from distance.
//
// weight_map_make follows the U-Net weight map (Ronneberger et al., arXiv:1505.04597, eq. 2):
//   w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
// with d1, d2 the Euclidean distances from x to the nearest and second-nearest nucleus, and
// w_c = foreground_weight on nuclei, background_weight elsewhere. Departures from the paper:
//   - a pixel inside nucleus A has distance 0 to A, so d1 = 0 there and d2 is the distance to
//     the nearest other nucleus: the contact line between two touching nuclei (no background
//     gap, common in this data) is emphasised on both sides, not only gap pixels;
//   - each nucleus's distance is computed only inside its bounding box grown by ceil(4 sigma),
//     where exp(-(d1+d2)^2 / (2 sigma^2)) >= exp(-8) is worth computing; farther the term is
//     taken as 0 (it is below w0 * 3.4e-4 there). Inside that box the distance is exact
//     (separable squared distance transform, Felzenszwalb and Huttenlocher, 2012).
//   - w_c is two constants, not per-image class frequencies, so the loss scale does not
//     change from image to image.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "unetpp/detail/distance_transform.hpp"
#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct TargetSpec {
    bool contour = true;     // add the contour channel
    int contour_width = 1;   // rim width in pixels, >= 1
    bool touching = false;   // add the touching channel
    int touching_radius = 2;  // window radius in pixels, >= 1
    bool distance = false;   // add the distance channel
};

struct WeightSpec {
    double w0 = 10.0;   // the paper's value
    double sigma = 5.0;  // pixels; the paper's value (its cells are larger than DSB nuclei)
    double foreground_weight = 1.0;
    double background_weight = 1.0;
};

// Number of channels targets_make returns for `spec`.
inline int targets_channel_count(const TargetSpec& spec) {
    return 1 + int(spec.contour) + int(spec.touching) + int(spec.distance);
}

namespace detail {

// "No feature here" for squared_distance_2d: large, and finite so that the envelope works.
constexpr float kEdtInfinity = 1e20f;

// Bounding box [y0, y1) x [x0, x1) of every label 1..max_label (empty boxes for absent labels).
struct LabelBox {
    int64_t y0 = std::numeric_limits<int64_t>::max(), x0 = std::numeric_limits<int64_t>::max();
    int64_t y1 = -1, x1 = -1;
    bool empty() const { return y1 < 0; }
};

inline std::vector<LabelBox> label_boxes(const LabelMap& labels) {
    std::vector<LabelBox> boxes(static_cast<size_t>(labels.max_label()) + 1);
    for (int64_t y = 0; y < labels.height; ++y) {
        for (int64_t x = 0; x < labels.width; ++x) {
            int32_t l = labels.at(y, x);
            if (l <= 0) continue;
            LabelBox& b = boxes[size_t(l)];
            b.y0 = std::min(b.y0, y);
            b.x0 = std::min(b.x0, x);
            b.y1 = std::max(b.y1, y + 1);
            b.x1 = std::max(b.x1, x + 1);
        }
    }
    return boxes;
}

inline void targets_check(const char* what, const LabelMap& labels) {
    if (labels.height <= 0 || labels.width <= 0 ||
        int64_t(labels.labels.size()) != labels.height * labels.width) {
        throw ShapeError(concat(what, ": label map is ", labels.height, "x", labels.width,
                                " with ", labels.labels.size(), " labels; expected a non-empty ",
                                "map with height*width labels"));
    }
    for (int32_t l : labels.labels) {
        if (l < 0) throw Error(concat(what, ": negative label ", l, " in the label map"));
    }
}

// Writes 1 where a pixel of label > 0 has, within Chebyshev distance r, a pixel of another label.
inline void targets_contour(const LabelMap& labels, int r, float* out) {
    int64_t h = labels.height, w = labels.width;
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t l = labels.at(y, x);
            bool rim = false;
            int64_t v_end = l > 0 ? std::min(h - 1, y + r) : y - r - 1;
            for (int64_t v = std::max<int64_t>(0, y - r); !rim && v <= v_end; ++v) {
                for (int64_t u = std::max<int64_t>(0, x - r); u <= std::min(w - 1, x + r); ++u) {
                    if (labels.at(v, u) != l) {
                        rim = true;
                        break;
                    }
                }
            }
            out[y * w + x] = rim ? 1.0f : 0.0f;
        }
    }
}

// Writes 1 where the window of radius r holds two different positive labels.
inline void targets_touching(const LabelMap& labels, int r, float* out) {
    int64_t h = labels.height, w = labels.width;
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int32_t first = 0;
            bool two = false;
            int64_t v_end = std::min(h - 1, y + r);
            for (int64_t v = std::max<int64_t>(0, y - r); !two && v <= v_end; ++v) {
                for (int64_t u = std::max<int64_t>(0, x - r); u <= std::min(w - 1, x + r); ++u) {
                    int32_t l = labels.at(v, u);
                    if (l == 0 || l == first) continue;
                    if (first != 0) {
                        two = true;
                        break;
                    }
                    first = l;
                }
            }
            out[y * w + x] = two ? 1.0f : 0.0f;
        }
    }
}

// Writes each nucleus's distance to its nearest non-member pixel, divided by its maximum.
inline void targets_distance(const LabelMap& labels, float* out) {
    int64_t w = labels.width;
    std::vector<LabelBox> boxes = label_boxes(labels);
    std::vector<float> grid;
    for (size_t l = 1; l < boxes.size(); ++l) {
        const LabelBox& b = boxes[l];
        if (b.empty()) continue;
        // 1. a grid one pixel larger than the box on every side; the frame is never label l
        int64_t gh = b.y1 - b.y0 + 2, gw = b.x1 - b.x0 + 2;
        grid.assign(size_t(gh * gw), 0.0f);
        for (int64_t y = b.y0; y < b.y1; ++y) {
            for (int64_t x = b.x0; x < b.x1; ++x) {
                bool member = labels.at(y, x) == int32_t(l);
                grid[size_t((y - b.y0 + 1) * gw + (x - b.x0 + 1))] = member ? kEdtInfinity : 0.0f;
            }
        }
        // 2. distance to the nearest non-member, normalised by this nucleus's maximum
        squared_distance_2d(grid.data(), gh, gw);
        float peak = 0.0f;
        for (float g : grid) peak = std::max(peak, g);
        float inv = peak > 0.0f ? 1.0f / std::sqrt(peak) : 0.0f;
        for (int64_t y = b.y0; y < b.y1; ++y) {
            for (int64_t x = b.x0; x < b.x1; ++x) {
                if (labels.at(y, x) != int32_t(l)) continue;
                float d2 = grid[size_t((y - b.y0 + 1) * gw + (x - b.x0 + 1))];
                out[y * w + x] = std::sqrt(d2) * inv;
            }
        }
    }
}

}  // namespace detail

// The target channels of the header comment for `labels`, shape {targets_channel_count(spec),
// H, W}. Requires a non-empty label map without negative labels, contour_width >= 1 and
// touching_radius >= 1.
inline Tensor<float> targets_make(const TargetSpec& spec, const LabelMap& labels) {
    detail::targets_check("targets_make", labels);
    if (spec.contour_width < 1 || spec.touching_radius < 1) {
        throw Error(detail::concat("targets_make: contour_width and touching_radius must be >= 1",
                                   ", got ", spec.contour_width, " and ", spec.touching_radius));
    }
    int64_t h = labels.height, w = labels.width, plane = h * w;
    Tensor<float> targets({targets_channel_count(spec), h, w});
    float* channel = targets.data();
    for (int64_t p = 0; p < plane; ++p) channel[p] = labels.labels[size_t(p)] > 0 ? 1.0f : 0.0f;
    if (spec.contour) detail::targets_contour(labels, spec.contour_width, channel += plane);
    if (spec.touching) detail::targets_touching(labels, spec.touching_radius, channel += plane);
    if (spec.distance) detail::targets_distance(labels, channel += plane);
    return targets;
}

// The U-Net weight map of the header comment for `labels`, shape {1, H, W}.
// Requires a non-empty label map without negative labels, sigma > 0 and w0 >= 0.
inline Tensor<float> weight_map_make(const WeightSpec& spec, const LabelMap& labels) {
    detail::targets_check("weight_map_make", labels);
    if (!(spec.sigma > 0.0) || !(spec.w0 >= 0.0)) {
        throw Error(detail::concat("weight_map_make: need sigma > 0 and w0 >= 0, got sigma ",
                                   spec.sigma, " w0 ", spec.w0));
    }
    int64_t h = labels.height, w = labels.width, plane = h * w;
    auto margin = static_cast<int64_t>(std::ceil(4.0 * spec.sigma));

    // 1. per pixel, the two smallest distances to a nucleus, from each nucleus's grown box
    std::vector<float> d1(static_cast<size_t>(plane), detail::kEdtInfinity), d2(d1);
    std::vector<detail::LabelBox> boxes = detail::label_boxes(labels);
    std::vector<float> grid;
    for (size_t l = 1; l < boxes.size(); ++l) {
        const detail::LabelBox& b = boxes[l];
        if (b.empty()) continue;
        int64_t y0 = std::max<int64_t>(0, b.y0 - margin), y1 = std::min(h, b.y1 + margin);
        int64_t x0 = std::max<int64_t>(0, b.x0 - margin), x1 = std::min(w, b.x1 + margin);
        int64_t gh = y1 - y0, gw = x1 - x0;
        grid.assign(size_t(gh * gw), detail::kEdtInfinity);
        for (int64_t y = b.y0; y < b.y1; ++y) {
            for (int64_t x = b.x0; x < b.x1; ++x) {
                if (labels.at(y, x) == int32_t(l)) grid[size_t((y - y0) * gw + (x - x0))] = 0.0f;
            }
        }
        detail::squared_distance_2d(grid.data(), gh, gw);
        for (int64_t y = y0; y < y1; ++y) {
            for (int64_t x = x0; x < x1; ++x) {
                float d = std::sqrt(grid[size_t((y - y0) * gw + (x - x0))]);
                size_t p = size_t(y * w + x);
                if (d < d1[p]) {
                    d2[p] = d1[p];
                    d1[p] = d;
                } else if (d < d2[p]) {
                    d2[p] = d;
                }
            }
        }
    }

    // 2. w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)); no second nucleus in reach gives w_c
    Tensor<float> weights({1, h, w});
    double inv_two_sigma2 = 1.0 / (2.0 * spec.sigma * spec.sigma);
    for (int64_t p = 0; p < plane; ++p) {
        bool fg = labels.labels[size_t(p)] > 0;
        double wc = fg ? spec.foreground_weight : spec.background_weight;
        double border = 0.0;
        if (d2[size_t(p)] < detail::kEdtInfinity) {
            double s = double(d1[size_t(p)]) + double(d2[size_t(p)]);
            border = spec.w0 * std::exp(-s * s * inv_two_sigma2);
        }
        weights[p] = float(wc + border);
    }
    return weights;
}

}  // namespace unetpp
