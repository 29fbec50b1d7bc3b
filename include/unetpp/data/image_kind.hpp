#pragma once
// Telling the three kinds of microscopy image in the nucleus data apart from simple statistics.
//
//   fluorescence  nuclei glow on a dark background; gray or a single tinted channel
//   brightfield   dark nuclei on a light background; gray
//   he            H&E-stained tissue: purple nuclei on a light pink/white background; coloured
//
// The rule (image_kind_classify), on an RGB (or gray) image in [0, 1]:
//   1. gray(p) = mean of the colour channels; background level = median of gray.
//      median < 0.5 (dark background)  -> fluorescence, whatever its colour.
//   2. otherwise chroma(p) = max channel - min channel; colourfulness = mean chroma.
//      colourfulness >= 0.02            -> he, else brightfield.
// On stage1_train this gives 541 fluorescence, 16 brightfield and 107 he images. There the gaps
// are wide: fluorescence backgrounds lie below 0.18 and light ones above 0.5; gray brightfield
// images have chroma 0 and the faintest H&E 0.047. A faded H&E slide or a dim brightfield image
// elsewhere can still be misread; the kind only steers normalisation and sampling weights, so
// such a miss costs contrast, not labels.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

enum class ImageKind { fluorescence = 0, brightfield = 1, he = 2 };
constexpr int kImageKindCount = 3;

inline const char* image_kind_name(ImageKind kind) {
    switch (kind) {
        case ImageKind::fluorescence: return "fluorescence";
        case ImageKind::brightfield: return "brightfield";
        default: return "he";
    }
}

// The statistics the rule reads.
struct ImageKindStats {
    double median_gray = 0.0;  // background level: median of the channel mean
    double mean_chroma = 0.0;  // mean over pixels of (max channel - min channel)
};

// Thresholds of the rule (see the header comment).
constexpr double kKindDarkBackground = 0.5;
constexpr double kKindColourful = 0.02;

namespace detail {
inline void image_kind_check(const char* what, const Tensor<float>& image) {
    if (image.rank() != 3 || image.dim(0) < 1 || image.dim(0) > 4 ||
        image.dim(1) * image.dim(2) == 0) {
        throw ShapeError(concat(what, ": expected a {C, H, W} image with C in 1..4 and H, W > 0, ",
                                "got shape ", image.shape().str()));
    }
}
}  // namespace detail

// Computes the statistics on a {C, H, W} image: the colour channels are the first min(C, 3)
// (a 2- or 4-channel image's alpha is ignored). Requires C in 1..4 and H, W > 0.
inline ImageKindStats image_kind_stats(const Tensor<float>& image) {
    detail::image_kind_check("image_kind_stats", image);
    int64_t c = std::min<int64_t>(image.dim(0) == 2 ? 1 : image.dim(0), 3);
    int64_t plane = image.dim(1) * image.dim(2);

    // 1. gray and chroma per pixel, chroma summed in pixel order
    std::vector<float> gray(static_cast<size_t>(plane));
    double chroma_sum = 0.0;
    for (int64_t p = 0; p < plane; ++p) {
        float lo = image[p], hi = image[p], sum = 0.0f;
        for (int64_t k = 0; k < c; ++k) {
            float v = image[k * plane + p];
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            sum += v;
        }
        gray[size_t(p)] = sum / float(c);
        chroma_sum += double(hi - lo);
    }

    // 2. the median of gray
    auto mid = gray.begin() + plane / 2;
    std::nth_element(gray.begin(), mid, gray.end());
    ImageKindStats stats;
    stats.median_gray = *mid;
    stats.mean_chroma = chroma_sum / double(plane);
    return stats;
}

// The kind the rule assigns to given statistics.
inline ImageKind image_kind_from_stats(const ImageKindStats& stats) {
    if (stats.median_gray < kKindDarkBackground) return ImageKind::fluorescence;
    return stats.mean_chroma >= kKindColourful ? ImageKind::he : ImageKind::brightfield;
}

// Classifies a {C, H, W} image in [0, 1] by the rule in the header comment.
inline ImageKind image_kind_classify(const Tensor<float>& image) {
    return image_kind_from_stats(image_kind_stats(image));
}

}  // namespace unetpp
