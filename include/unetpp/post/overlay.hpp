#pragma once
// Outlines of labelled objects drawn over an image, as an interleaved RGB uint8 buffer.
//
// The buffer holds H * W * 3 bytes, pixel (y, x) at (y * W + x) * 3, channels R G B: the layout
// PNG writers take directly. Outline pixels of label k are those with a 4-neighbour (inside the
// image) of another label, background included. Label k gets overlay_colour(k): hues spaced by
// the golden ratio, so neighbouring labels get clearly different colours.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/post/connected_components.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct OverlaySpec {
    // Opacity of the outline colour over the image (1: solid outline).
    float outline_alpha = 1.0f;
    // Opacity of a tint of each object's colour over its interior (0: no tint).
    float fill_alpha = 0.0f;
};

// A saturated colour for label k >= 1, fixed for a given k (hue = frac(k * 0.618...)).
inline std::array<uint8_t, 3> overlay_colour(int32_t label) {
    double hue = std::fmod(double(label) * 0.6180339887498949, 1.0) * 6.0;
    int sector = static_cast<int>(hue) % 6;
    double f = hue - std::floor(hue);
    // HSV to RGB with S = 1, V = 1
    double rgb[6][3] = {{1, f, 0}, {1 - f, 1, 0}, {0, 1, f},
                        {0, 1 - f, 1}, {f, 0, 1}, {1, 0, 1 - f}};
    std::array<uint8_t, 3> out{};
    for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(std::lround(rgb[sector][c] * 255.0));
    return out;
}

// True when pixel (y, x) of `labels` is nonzero and has a 4-neighbour with a different label.
inline bool overlay_is_outline(const LabelMap& labels, int64_t y, int64_t x) {
    int32_t v = labels.at(y, x);
    if (v == 0) return false;
    bool edge = false;
    detail::for_each_neighbour(y, x, labels.height, labels.width, Connectivity::Four,
                               [&](int64_t ny, int64_t nx) {
                                   if (labels.at(ny, nx) != v) edge = true;
                               });
    return edge;
}

// Draws the outlines of `labels` over `image` and returns the RGB buffer.
// Requires: image a contiguous {H, W} (grayscale) or {C, H, W} tensor with C = 1 (grayscale),
// 3 (RGB) or 4 (RGBA, alpha ignored), values in [0, 1] (clamped); labels H x W. Throws
// ShapeError otherwise.
inline std::vector<uint8_t> overlay_outlines(const OverlaySpec& spec, ConstTensorView<float> image,
                                             const LabelMap& labels) {
    // 1. check the image layout
    const int64_t h = labels.height, w = labels.width;
    int64_t channels = image.rank() == 2 ? 1 : image.rank() == 3 ? image.dim(0) : 0;
    bool ok = channels == 1 || channels == 3 || channels == 4;
    if (!ok || image.dim(image.rank() - 2) != h || image.dim(image.rank() - 1) != w) {
        throw ShapeError(detail::concat("overlay_outlines: image of shape ", image.shape().str(),
                                        " does not fit labels of ", h, "x", w,
                                        " (expected {H, W} or {C, H, W} with C = 1, 3 or 4)"));
    }
    contiguous_check("overlay_outlines image", image);

    // 2. blend each pixel
    std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
    const float* src = image.data();
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            int64_t p = y * w + x;
            int32_t v = labels.labels[p];
            float alpha = v == 0 ? 0.0f
                          : overlay_is_outline(labels, y, x) ? spec.outline_alpha
                                                             : spec.fill_alpha;
            std::array<uint8_t, 3> colour = v == 0 ? std::array<uint8_t, 3>{} : overlay_colour(v);
            for (int c = 0; c < 3; ++c) {
                float g = src[(channels == 1 ? 0 : c) * h * w + p];
                g = std::min(1.0f, std::max(0.0f, g)) * 255.0f;
                float mixed = (1.0f - alpha) * g + alpha * float(colour[c]);
                rgb[p * 3 + c] = static_cast<uint8_t>(std::lround(mixed));
            }
        }
    }
    return rgb;
}

}  // namespace unetpp
