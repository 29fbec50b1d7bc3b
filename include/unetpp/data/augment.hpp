#pragma once
// Joint augmentation of an image with its targets and weights: random crops at native
// resolution (or, optionally, zoomed in or out by a random factor), flips, 90-degree rotations,
// and intensity jitter on the image alone.
//
// Geometry (the same for image, targets, weights and, through geometry_apply_labels, labels):
//   output pixel (i, j), 0 <= i, j < crop, reads source pixel (oy + u, ox + v) where (u, v) is
//   (i, j) after an element of the dihedral group: first transposed (bit 4 of `dihedral`), then
//   flipped vertically (bit 1: u -> crop-1-u), then horizontally (bit 2: v -> crop-1-v).
//   flips alone draw from {0,1,2,3}; rotate90 alone from the rotations {0,3,5,6}; both, all 8.
//   The offset is uniform over crops inside the image; along a side shorter than the crop the
//   image lands at a uniform position inside it (oy in [H - crop, 0]).
// Zoom (spec.zoom > 0): the factor z = (1 + zoom)^U(-1, 1) is drawn log-uniformly, so zooming
//   in and out are equally likely. The crop then shows a source window of side
//   window = round(crop / z), placed as above, and output pixel (i, j) samples the source at
//   (oy + (u + 0.5) / z - 0.5, ox + (v + 0.5) / z - 0.5). The image is sampled bilinearly (its
//   out-of-image neighbours by the padding rule); targets, weights and labels take the nearest
//   pixel, so binary targets stay binary and labels stay labels. z = 1 exactly when zoom = 0,
//   which gives the integer mapping above bit for bit.
// Padding: a source pixel outside the image reads its mirror (PadMode::reflect, "reflect-101":
//   -1 reads 1, H reads H-2) or 0 (PadMode::zero) in the image and targets; its weight is 0 in
//   both modes, so padding never enters the loss. Reflection gives the network natural context.
// Intensity, on the image only, in this order, each drawn once per call:
//   gamma       x -> x^g, g = exp(U(-gamma, gamma))
//   contrast    x -> (x - 0.5) * c + 0.5, c = U(1 - contrast, 1 + contrast)
//   brightness  x -> x + b, b = U(-brightness, brightness)
//   grayscale   with probability grayscale_prob, every channel -> the channel mean
//   inversion   with probability invert_prob, x -> 1 - x
//   then clamped to [0, 1]. Inputs are expected in [0, 1] (as image_normalize gives).
// Every call draws the same count of numbers from the Rng whatever the options, so a seed gives
// the same crops whether or not, say, inversion is on.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "unetpp/detail/reflect.hpp"
#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

enum class PadMode { reflect, zero };

struct AugmentSpec {
    int64_t crop = 256;  // output side, pixels
    PadMode pad = PadMode::reflect;
    bool flips = true;
    bool rotate90 = true;
    double gamma = 0.2;
    double contrast = 0.2;
    double brightness = 0.1;
    double grayscale_prob = 0.0;
    double invert_prob = 0.0;
    double zoom = 0.0;  // z in [1 / (1 + zoom), 1 + zoom], log-uniform; 0: native resolution
};

// One drawn crop: its offset in the source and its dihedral element (see the header comment).
struct CropGeometry {
    int64_t oy = 0, ox = 0;
    int dihedral = 0;
    double zoom = 1.0;  // output pixels per source pixel (the z of the header comment)
};

// Where output pixel (i, j) of a crop samples the source, in source pixel coordinates (the
// point may lie outside the source). Integral when g.zoom == 1.
inline void geometry_source_point(const CropGeometry& g, int64_t crop, int64_t i, int64_t j,
                                  double& fy, double& fx) {
    int64_t u = i, v = j;
    if (g.dihedral & 4) std::swap(u, v);
    if (g.dihedral & 1) u = crop - 1 - u;
    if (g.dihedral & 2) v = crop - 1 - v;
    if (g.zoom == 1.0) {
        fy = double(g.oy + u);
        fx = double(g.ox + v);
    } else {
        fy = double(g.oy) + (double(u) + 0.5) / g.zoom - 0.5;
        fx = double(g.ox) + (double(v) + 0.5) / g.zoom - 0.5;
    }
}

// The source pixel nearest to where output pixel (i, j) samples; (sy, sx) may lie outside the
// source.
inline void geometry_source(const CropGeometry& g, int64_t crop, int64_t i, int64_t j,
                            int64_t& sy, int64_t& sx) {
    double fy, fx;
    geometry_source_point(g, crop, i, j, fy, fx);
    sy = int64_t(std::floor(fy + 0.5));
    sx = int64_t(std::floor(fx + 0.5));
}

namespace detail {
inline int64_t crop_offset(int64_t side, int64_t crop, Rng& rng) {
    int64_t lo = std::min<int64_t>(0, side - crop), hi = std::max<int64_t>(0, side - crop);
    return lo + int64_t(rng.below(uint64_t(hi - lo + 1)));
}
}  // namespace detail

// Draws the geometry of one crop from an H x W source. Consumes 4 numbers from rng, whatever
// the spec.
inline CropGeometry geometry_draw(const AugmentSpec& spec, int64_t height, int64_t width,
                                  Rng& rng) {
    static const int kRotations[4] = {0, 3, 5, 6};
    CropGeometry g;
    const double t = rng.uniform(-1.0, 1.0);
    int64_t window = spec.crop;
    if (spec.zoom > 0.0) {
        g.zoom = std::pow(1.0 + spec.zoom, t);
        window = std::max<int64_t>(1, std::llround(double(spec.crop) / g.zoom));
    }
    g.oy = detail::crop_offset(height, window, rng);
    g.ox = detail::crop_offset(width, window, rng);
    auto pick = int(rng.below(8));
    if (spec.flips && spec.rotate90) {
        g.dihedral = pick;
    } else if (spec.flips) {
        g.dihedral = pick & 3;
    } else if (spec.rotate90) {
        g.dihedral = kRotations[pick & 3];
    }
    return g;
}

// The crop of a label map under `g` (crop x crop); outside the source reads mirror labels
// (reflect) or 0 (zero), like the targets.
inline LabelMap geometry_apply_labels(const CropGeometry& g, const AugmentSpec& spec,
                                      const LabelMap& labels) {
    LabelMap out(spec.crop, spec.crop);
    for (int64_t i = 0; i < spec.crop; ++i) {
        for (int64_t j = 0; j < spec.crop; ++j) {
            int64_t sy, sx;
            geometry_source(g, spec.crop, i, j, sy, sx);
            bool inside = sy >= 0 && sx >= 0 && sy < labels.height && sx < labels.width;
            if (!inside && spec.pad == PadMode::zero) continue;
            out.at(i, j) = labels.at(detail::reflect_index(sy, labels.height),
                                     detail::reflect_index(sx, labels.width));
        }
    }
    return out;
}

// The inputs of one augmentation, all H x W: image {C, H, W}, targets {T, H, W}, weights {1, H, W}.
struct AugmentSource {
    const Tensor<float>& image;
    const Tensor<float>& targets;
    const Tensor<float>& weights;
};

// Where one augmentation writes: contiguous views of {C, crop, crop}, {T, crop, crop} and
// {1, crop, crop} elements (rank 3, or rank 4 with a leading 1: a batch item).
struct AugmentDestination {
    TensorView<float> image;
    TensorView<float> targets;
    TensorView<float> weights;
};

namespace detail {
inline void augment_check_out(const char* name, const TensorView<float>& v, int64_t channels,
                              int64_t crop) {
    bool rank_ok = v.rank() == 3 || (v.rank() == 4 && v.dim(0) == 1);
    int64_t off = v.rank() == 4 ? 1 : 0;
    if (!rank_ok || v.dim(int(off)) != channels || v.dim(int(off) + 1) != crop ||
        v.dim(int(off) + 2) != crop || !v.is_contiguous()) {
        throw ShapeError(concat("augment_apply: destination ", name, " has shape ", v.shape().str(),
                                ", expected a contiguous [", channels, ", ", crop, ", ", crop,
                                "] (or [1, ", channels, ", ", crop, ", ", crop, "])"));
    }
}

inline void augment_check(const AugmentSpec& spec, const AugmentSource& src,
                          const AugmentDestination& dst) {
    const Tensor<float>& x = src.image;
    if (x.rank() != 3 || src.targets.rank() != 3 || src.weights.rank() != 3 ||
        x.dim(1) * x.dim(2) == 0 || src.targets.dim(1) != x.dim(1) ||
        src.targets.dim(2) != x.dim(2) ||
        src.weights.shape() != Shape{1, x.dim(1), x.dim(2)}) {
        throw ShapeError(concat("augment_apply: image ", x.shape().str(), ", targets ",
                                src.targets.shape().str(), " and weights ",
                                src.weights.shape().str(), " must be {C, H, W}, {T, H, W} and ",
                                "{1, H, W} with the same non-empty H x W"));
    }
    if (spec.crop <= 0) {
        throw ShapeError(concat("augment_apply: crop must be > 0, got ", spec.crop));
    }
    if (!(spec.zoom >= 0.0 && spec.zoom <= 3.0)) {
        throw Error(concat("augment_apply: zoom must be in [0, 3], got ", spec.zoom));
    }
    augment_check_out("image", dst.image, x.dim(0), spec.crop);
    augment_check_out("targets", dst.targets, src.targets.dim(0), spec.crop);
    augment_check_out("weights", dst.weights, 1, spec.crop);
}

// Bilinear samples of every plane of src at (fy, fx) into dst[k * plane] (the image under a
// zoom); neighbours outside the source follow spec.pad.
inline void augment_sample_bilinear(const AugmentSpec& spec, const Tensor<float>& src, double fy,
                                    double fx, float* dst, int64_t plane) {
    const int64_t c = src.dim(0), h = src.dim(1), w = src.dim(2);
    const double y0f = std::floor(fy), x0f = std::floor(fx);
    const double ay = fy - y0f, ax = fx - x0f;
    const int64_t y0 = int64_t(y0f), x0 = int64_t(x0f);
    int64_t at[4];
    double wt[4] = {(1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax};
    for (int q = 0; q < 4; ++q) {
        const int64_t y = y0 + (q >> 1), x = x0 + (q & 1);
        const bool inside = y >= 0 && x >= 0 && y < h && x < w;
        if (!inside && spec.pad == PadMode::zero) wt[q] = 0.0;
        at[q] = reflect_index(y, h) * w + reflect_index(x, w);
    }
    for (int64_t k = 0; k < c; ++k) {
        const float* s = src.data() + k * h * w;
        double v = 0.0;
        for (int q = 0; q < 4; ++q) v += wt[q] * double(s[at[q]]);
        dst[k * plane] = float(v);
    }
}

// Copies the cropped, transformed planes of src into dst; `weights` zeroes padding. Under a
// zoom the image (`bilinear`) is interpolated and everything else takes the nearest pixel.
inline void augment_gather(const CropGeometry& g, const AugmentSpec& spec,
                           const Tensor<float>& src, float* dst, bool is_weights,
                           bool bilinear = false) {
    int64_t c = src.dim(0), h = src.dim(1), w = src.dim(2), crop = spec.crop;
    if (bilinear && g.zoom != 1.0) {
        for (int64_t i = 0; i < crop; ++i) {
            for (int64_t j = 0; j < crop; ++j) {
                double fy, fx;
                geometry_source_point(g, crop, i, j, fy, fx);
                augment_sample_bilinear(spec, src, fy, fx, dst + i * crop + j, crop * crop);
            }
        }
        return;
    }
    for (int64_t i = 0; i < crop; ++i) {
        for (int64_t j = 0; j < crop; ++j) {
            int64_t sy, sx;
            geometry_source(g, crop, i, j, sy, sx);
            bool inside = sy >= 0 && sx >= 0 && sy < h && sx < w;
            int64_t p = reflect_index(sy, h) * w + reflect_index(sx, w);
            for (int64_t k = 0; k < c; ++k) {
                float v = src[k * h * w + p];
                if (!inside && (is_weights || spec.pad == PadMode::zero)) v = 0.0f;
                dst[(k * crop + i) * crop + j] = v;
            }
        }
    }
}
}  // namespace detail

// Augments one sample into `dst` as the header comment describes, drawing from `rng`.
// Requires the shapes in AugmentSource and AugmentDestination. Returns the geometry used.
inline CropGeometry augment_apply(const AugmentSpec& spec, const AugmentSource& src, Rng& rng,
                                  const AugmentDestination& dst) {
    detail::augment_check(spec, src, dst);

    // 1. geometry, shared by image, targets and weights
    CropGeometry g = geometry_draw(spec, src.image.dim(1), src.image.dim(2), rng);
    detail::augment_gather(g, spec, src.image, dst.image.data(), false, true);
    detail::augment_gather(g, spec, src.targets, dst.targets.data(), false);
    detail::augment_gather(g, spec, src.weights, dst.weights.data(), true);

    // 2. intensity draws, always all of them
    double gamma = std::exp(rng.uniform(-spec.gamma, spec.gamma));
    double contrast = rng.uniform(1.0 - spec.contrast, 1.0 + spec.contrast);
    double brightness = rng.uniform(-spec.brightness, spec.brightness);
    bool to_gray = rng.uniform() < spec.grayscale_prob;
    bool invert = rng.uniform() < spec.invert_prob;

    // 3. intensity, on the image only
    int64_t c = src.image.dim(0), plane = spec.crop * spec.crop;
    float* x = dst.image.data();
    for (int64_t p = 0; p < plane; ++p) {
        float mean = 0.0f;
        for (int64_t k = 0; k < c; ++k) {
            float& v = x[k * plane + p];
            double t = std::pow(std::max(0.0, double(v)), gamma);
            v = float((t - 0.5) * contrast + 0.5 + brightness);
            mean += v;
        }
        mean /= float(c);
        for (int64_t k = 0; k < c; ++k) {
            float v = to_gray ? mean : x[k * plane + p];
            if (invert) v = 1.0f - v;
            x[k * plane + p] = std::min(1.0f, std::max(0.0f, v));
        }
    }
    return g;
}

}  // namespace unetpp
