#pragma once
// One normalisation for every kind of nucleus image, used alike at training and predict time.
//
// Output: a single-channel {1, H, W} tensor in [0, 1] where nuclei are bright on a dark
// background, whatever the microscope. One gray channel keeps the first convolution small and
// lets the three kinds share one network. The steps:
//   1. signal per pixel, by kind (image_kind.hpp):
//        fluorescence  s = mean of the colour channels           (nuclei already bright)
//        brightfield   s = 1 - mean of the colour channels       (dark nuclei become bright)
//        he            s = hematoxylin density by colour deconvolution (Ruifrok and Johnston,
//                      "Quantification of histochemical staining by color deconvolution",
//                      Anal Quant Cytol Histol 23(4), 2001): optical density
//                      od_c = -log10(max(I_c, 1/255)) per channel, unmixed with the standard
//                      H, E and residual stain vectors; hematoxylin binds nuclei, so s is high
//                      on nuclei and near 0 on white background and on pink (eosin) cytoplasm.
//   2. robust contrast stretch per image: lo, hi = the low_percentile and high_percentile of s;
//      out = clamp((s - lo) / (hi - lo), 0, 1). When hi - lo < 1e-6 (a flat image) out = 0.
// Predict with the same function on the full image (the stretch is per image, never per crop).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "unetpp/data/image_kind.hpp"
#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct NormalizeSpec {
    double low_percentile = 0.5;   // in [0, 100): this share of pixels maps to 0
    double high_percentile = 99.5;  // in (low, 100]: this share of pixels lies at or below 1
};

namespace detail {

// Row c of the inverse of the stain matrix whose rows are the H, E and residual unit OD vectors;
// concentration of stain k = sum_c od_c * inverse[c][k].
inline std::array<std::array<double, 3>, 3> he_unmixing_matrix() {
    std::array<double, 3> h = {0.650, 0.704, 0.286}, e = {0.072, 0.990, 0.105};
    std::array<double, 3> r = {h[1] * e[2] - h[2] * e[1], h[2] * e[0] - h[0] * e[2],
                               h[0] * e[1] - h[1] * e[0]};
    auto unit = [](std::array<double, 3>& v) {
        double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        for (double& x : v) x /= n;
    };
    unit(h);
    unit(e);
    unit(r);
    double m[3][3] = {{h[0], h[1], h[2]}, {e[0], e[1], e[2]}, {r[0], r[1], r[2]}};
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                 m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    std::array<std::array<double, 3>, 3> inv{};
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            // cofactor of m[j][i], divided by the determinant
            int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
            inv[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
        }
    }
    return inv;
}

// The value below which `percent` of `values` lie (nearest rank); reorders `values`.
inline float percentile_of(std::vector<float>& values, double percent) {
    double clamped = std::min(100.0, std::max(0.0, percent));
    auto rank = static_cast<size_t>(std::llround(clamped / 100.0 * double(values.size() - 1)));
    std::nth_element(values.begin(), values.begin() + rank, values.end());
    return values[rank];
}

}  // namespace detail

// The per-pixel signal of step 1 (before stretching), {1, H, W}; nuclei high.
// Requires a {C, H, W} image with C in 1..4 (alpha ignored) and H, W > 0.
inline Tensor<float> image_nucleus_signal(const Tensor<float>& image, ImageKind kind) {
    detail::image_kind_check("image_nucleus_signal", image);
    int64_t c = std::min<int64_t>(image.dim(0) == 2 ? 1 : image.dim(0), 3);
    int64_t plane = image.dim(1) * image.dim(2);
    Tensor<float> signal({1, image.dim(1), image.dim(2)});
    if (kind == ImageKind::he && c == 3) {
        static const auto inv = detail::he_unmixing_matrix();
        for (int64_t p = 0; p < plane; ++p) {
            double h = 0.0;
            for (int64_t k = 0; k < 3; ++k) {
                double od = -std::log10(std::max(double(image[k * plane + p]), 1.0 / 255.0));
                h += od * inv[size_t(k)][0];
            }
            signal[p] = float(h);
        }
        return signal;
    }
    for (int64_t p = 0; p < plane; ++p) {
        float sum = 0.0f;
        for (int64_t k = 0; k < c; ++k) sum += image[k * plane + p];
        float gray = sum / float(c);
        signal[p] = kind == ImageKind::fluorescence ? gray : 1.0f - gray;
    }
    return signal;
}

// Stretches a {1, H, W} signal in place by its percentiles (step 2 of the header comment).
inline void signal_stretch(const NormalizeSpec& spec, Tensor<float>& signal) {
    if (!(spec.low_percentile >= 0.0 && spec.low_percentile < spec.high_percentile &&
          spec.high_percentile <= 100.0)) {
        throw Error(detail::concat("signal_stretch: percentiles must satisfy 0 <= low < high <= ",
                                   "100, got low ", spec.low_percentile, " high ",
                                   spec.high_percentile));
    }
    if (signal.numel() == 0) return;
    std::vector<float> values(signal.begin(), signal.end());
    float lo = detail::percentile_of(values, spec.low_percentile);
    float hi = detail::percentile_of(values, spec.high_percentile);
    if (!(hi - lo >= 1e-6f)) {
        signal.zero();
        return;
    }
    float scale = 1.0f / (hi - lo);
    for (float& v : signal) v = std::min(1.0f, std::max(0.0f, (v - lo) * scale));
}

// The normalised {1, H, W} image of the header comment, for an image of known kind.
inline Tensor<float> image_normalize(const Tensor<float>& image, ImageKind kind,
                                     const NormalizeSpec& spec = {}) {
    Tensor<float> signal = image_nucleus_signal(image, kind);
    signal_stretch(spec, signal);
    return signal;
}

// The same, classifying the image first with image_kind_classify.
inline Tensor<float> image_normalize(const Tensor<float>& image, const NormalizeSpec& spec = {}) {
    return image_normalize(image, image_kind_classify(image), spec);
}

}  // namespace unetpp
