#pragma once
// Instance label maps: one int32 per pixel, 0 for background and 1..n for the n objects.
//
// Images themselves are Tensor<float> of shape {C, H, W}; labels need integers, so they get this
// small type of their own. Rows are contiguous: label (y, x) sits at y * width + x.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "unetpp/error.hpp"

namespace unetpp {

struct LabelMap {
    int64_t height = 0;
    int64_t width = 0;
    std::vector<int32_t> labels;

    LabelMap() = default;
    LabelMap(int64_t h, int64_t w) : height(h), width(w), labels(checked_size(h, w), 0) {}

    int32_t& at(int64_t y, int64_t x) { return labels[y * width + x]; }
    int32_t at(int64_t y, int64_t x) const { return labels[y * width + x]; }
    int64_t size() const { return height * width; }
    // Largest label present (0 for an empty map).
    int32_t max_label() const {
        return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end());
    }

private:
    static size_t checked_size(int64_t h, int64_t w) {
        if (h < 0 || w < 0) {
            throw ShapeError(detail::concat("LabelMap: negative size ", h, "x", w));
        }
        return static_cast<size_t>(h * w);
    }
};

}  // namespace unetpp
