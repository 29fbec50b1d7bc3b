#pragma once
// Synthetic nucleus images with exact instance labels, for tests and for a demo without data.
//
// synthetic_make draws `objects` elliptical nuclei (semi-axes in [radius_min, radius_max],
// random orientation), of which 2 * touching_pairs come as touching pairs and the rest lie
// isolated, at least kSyntheticGap pixels (Chebyshev) from any other nucleus. A pair is two
// overlapping ellipses; the first keeps the shared pixels, so they meet along a contact line and
// share 4-connected edges, with no other nucleus within the gap of either. Each nucleus is shaded
// brighter at its centre. Then, by style:
//   fluorescence  gray: background 0.04, nuclei up to about 0.85 (bright on dark)
//   brightfield   gray: background 0.85, nuclei darker down to about 0.35
//   he            colour: pinkish white background (0.93, 0.85, 0.90), purple nuclei
//                 (0.35, 0.22, 0.58), like H&E tissue
// followed by a Gaussian blur (blur_sigma) and Gaussian noise (noise, the same draw on every
// channel of gray styles so they stay gray), clamped to [0, 1]. image_kind_classify reads each
// style as its kind. The whole output is a function of (spec, seed).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "unetpp/data/image_kind.hpp"
#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

enum class SyntheticStyle { fluorescence, brightfield, he };

struct SyntheticSpec {
    int64_t height = 192;
    int64_t width = 192;
    int objects = 12;        // nuclei in all
    int touching_pairs = 3;  // of which this many pairs touch; 2 * touching_pairs <= objects
    double radius_min = 6.0;  // ellipse semi-axes, pixels
    double radius_max = 14.0;
    SyntheticStyle style = SyntheticStyle::fluorescence;
    double noise = 0.03;       // standard deviation of the additive noise
    double blur_sigma = 1.0;   // pixels; 0 for none
};

struct SyntheticSample {
    Tensor<float> image;  // {3, H, W} in [0, 1]
    LabelMap labels;      // 1..objects; pairs get consecutive labels (2i+1, 2i+2)
    ImageKind kind = ImageKind::fluorescence;
};

// Minimum Chebyshev distance between nuclei that do not touch.
constexpr int kSyntheticGap = 3;

namespace detail {

struct SyntheticEllipse {
    double cy, cx, a, b, angle;
};

// Pixels (y * w + x) whose centres lie inside the ellipse, with their normalised radius^2
// (0 at the centre, 1 on the rim); empty when any of them would fall outside the image's
// one-pixel border.
inline void ellipse_pixels(const SyntheticEllipse& e, int64_t h, int64_t w,
                           std::vector<int64_t>& pixels, std::vector<float>& radius2) {
    pixels.clear();
    radius2.clear();
    double c = std::cos(e.angle), s = std::sin(e.angle), r = std::max(e.a, e.b);
    auto y0 = int64_t(std::floor(e.cy - r)), y1 = int64_t(std::ceil(e.cy + r));
    auto x0 = int64_t(std::floor(e.cx - r)), x1 = int64_t(std::ceil(e.cx + r));
    for (int64_t y = y0; y <= y1; ++y) {
        for (int64_t x = x0; x <= x1; ++x) {
            double dy = double(y) - e.cy, dx = double(x) - e.cx;
            double u = (dx * c + dy * s) / e.a, v = (-dx * s + dy * c) / e.b;
            double q = u * u + v * v;
            if (q > 1.0) continue;
            if (y < 1 || x < 1 || y >= h - 1 || x >= w - 1) {
                pixels.clear();
                radius2.clear();
                return;
            }
            pixels.push_back(y * w + x);
            radius2.push_back(float(q));
        }
    }
}

// Marks every pixel within kSyntheticGap of `pixels` in `blocked`.
inline void synthetic_block(const std::vector<int64_t>& pixels, int64_t h, int64_t w,
                            std::vector<uint8_t>& blocked) {
    for (int64_t p : pixels) {
        int64_t y = p / w, x = p % w;
        for (int64_t v = std::max<int64_t>(0, y - kSyntheticGap);
             v <= std::min(h - 1, y + kSyntheticGap); ++v) {
            for (int64_t u = std::max<int64_t>(0, x - kSyntheticGap);
                 u <= std::min(w - 1, x + kSyntheticGap); ++u) {
                blocked[size_t(v * w + u)] = 1;
            }
        }
    }
}

// True when the pixel set is 4-connected.
inline bool synthetic_connected(const std::vector<int64_t>& pixels, int64_t w) {
    if (pixels.empty()) return false;
    std::vector<int64_t> sorted = pixels, stack = {pixels[0]};
    std::sort(sorted.begin(), sorted.end());
    std::vector<uint8_t> seen(sorted.size(), 0);
    auto index = [&](int64_t p) {
        auto it = std::lower_bound(sorted.begin(), sorted.end(), p);
        return it != sorted.end() && *it == p ? it - sorted.begin() : -1;
    };
    seen[size_t(index(pixels[0]))] = 1;
    size_t count = 1;
    while (!stack.empty()) {
        int64_t p = stack.back();
        stack.pop_back();
        int64_t x = p % w;
        for (int64_t q : {p - w, p + w, x > 0 ? p - 1 : -1, x + 1 < w ? p + 1 : -1}) {
            auto i = q >= 0 ? index(q) : -1;
            if (i < 0 || seen[size_t(i)]) continue;
            seen[size_t(i)] = 1;
            ++count;
            stack.push_back(q);
        }
    }
    return count == sorted.size();
}

// In place separable Gaussian blur of an h x w plane, borders clamped.
inline void synthetic_blur(std::vector<float>& plane, int64_t h, int64_t w, double sigma) {
    if (sigma <= 0.0) return;
    auto r = int64_t(std::ceil(3.0 * sigma));
    std::vector<float> kernel(static_cast<size_t>(2 * r + 1));
    float sum = 0.0f;
    for (int64_t i = -r; i <= r; ++i) {
        kernel[size_t(i + r)] = float(std::exp(-double(i * i) / (2.0 * sigma * sigma)));
        sum += kernel[size_t(i + r)];
    }
    for (float& k : kernel) k /= sum;
    std::vector<float> tmp(plane.size());
    for (int64_t y = 0; y < h; ++y) {  // rows
        for (int64_t x = 0; x < w; ++x) {
            float acc = 0.0f;
            for (int64_t i = -r; i <= r; ++i) {
                int64_t u = std::min(w - 1, std::max<int64_t>(0, x + i));
                acc += kernel[size_t(i + r)] * plane[size_t(y * w + u)];
            }
            tmp[size_t(y * w + x)] = acc;
        }
    }
    for (int64_t y = 0; y < h; ++y) {  // columns
        for (int64_t x = 0; x < w; ++x) {
            float acc = 0.0f;
            for (int64_t i = -r; i <= r; ++i) {
                int64_t v = std::min(h - 1, std::max<int64_t>(0, y + i));
                acc += kernel[size_t(i + r)] * tmp[size_t(v * w + x)];
            }
            plane[size_t(y * w + x)] = acc;
        }
    }
}

// Draws the nuclei into labels and a shade plane (0 background, up to 1 at a nucleus centre).
// Returns false when placement ran out of tries.
inline bool synthetic_place(const SyntheticSpec& spec, Rng& rng, LabelMap& labels,
                            std::vector<float>& shade) {
    const int64_t h = spec.height, w = spec.width;
    constexpr int kTries = 400;
    std::vector<uint8_t> blocked(static_cast<size_t>(h * w), 0);
    std::vector<int64_t> pa, pb, rest;
    std::vector<float> ra, rb;
    auto random_ellipse = [&]() {
        double a = rng.uniform(spec.radius_min, spec.radius_max);
        double b = rng.uniform(spec.radius_min, spec.radius_max);
        double r = std::max(a, b) + 1.0;
        return SyntheticEllipse{rng.uniform(r, double(h) - r), rng.uniform(r, double(w) - r), a, b,
                                rng.uniform(0.0, 3.14159265358979)};
    };
    auto is_free = [&](const std::vector<int64_t>& pixels) {
        if (pixels.empty()) return false;
        for (int64_t p : pixels) {
            if (blocked[size_t(p)] || labels.labels[size_t(p)] != 0) return false;
        }
        return true;
    };
    auto paint = [&](const std::vector<int64_t>& pixels, const std::vector<float>& radius2,
                     int32_t label) {
        double brightness = rng.uniform(0.6, 1.0);
        for (size_t i = 0; i < pixels.size(); ++i) {
            if (labels.labels[size_t(pixels[i])] != 0) continue;
            labels.labels[size_t(pixels[i])] = label;
            shade[size_t(pixels[i])] = float(brightness * (1.0 - 0.3 * radius2[i]));
        }
    };

    int32_t next = 1;
    // 1. touching pairs: A placed free; B overlaps A, keeps only the pixels A leaves
    for (int pair = 0; pair < spec.touching_pairs; ++pair) {
        bool placed = false;
        for (int t = 0; t < kTries && !placed; ++t) {
            SyntheticEllipse a = random_ellipse();
            ellipse_pixels(a, h, w, pa, ra);
            if (!is_free(pa)) continue;
            SyntheticEllipse b = random_ellipse();
            double dir = rng.uniform(0.0, 6.28318530717959);
            double reach = 0.8 * (0.5 * (a.a + a.b) + 0.5 * (b.a + b.b));
            b.cy = a.cy + reach * std::sin(dir);
            b.cx = a.cx + reach * std::cos(dir);
            ellipse_pixels(b, h, w, pb, rb);
            // B must overlap A (so, being convex, it meets A) and keep half its pixels
            rest.clear();
            std::sort(pa.begin(), pa.end());
            for (int64_t p : pb) {
                if (!std::binary_search(pa.begin(), pa.end(), p)) rest.push_back(p);
            }
            if (rest.size() == pb.size() || rest.size() * 2 < pb.size() || !is_free(rest) ||
                !synthetic_connected(rest, w)) {
                continue;
            }
            ellipse_pixels(a, h, w, pa, ra);  // restore the order matching ra
            paint(pa, ra, next++);
            paint(pb, rb, next++);
            synthetic_block(pa, h, w, blocked);
            synthetic_block(pb, h, w, blocked);
            placed = true;
        }
        if (!placed) return false;
    }
    // 2. isolated nuclei, kSyntheticGap away from everything
    for (int i = 2 * spec.touching_pairs; i < spec.objects; ++i) {
        bool placed = false;
        for (int t = 0; t < kTries && !placed; ++t) {
            SyntheticEllipse e = random_ellipse();
            ellipse_pixels(e, h, w, pa, ra);
            if (!is_free(pa)) continue;
            paint(pa, ra, next++);
            synthetic_block(pa, h, w, blocked);
            placed = true;
        }
        if (!placed) return false;
    }
    return true;
}

}  // namespace detail

// A synthetic image and its labels, as the header comment describes; a pure function of
// (spec, seed). Requires 0 <= 2 * touching_pairs <= objects, 1 <= radius_min <= radius_max and an
// image large enough for the nuclei (at least 2 * radius_max + 4 on each side); throws Error when
// the nuclei do not fit after a bounded number of tries (lower objects or radius_max).
inline SyntheticSample synthetic_make(const SyntheticSpec& spec, uint64_t seed) {
    if (spec.touching_pairs < 0 || spec.objects < 2 * spec.touching_pairs ||
        !(spec.radius_min >= 1.0 && spec.radius_min <= spec.radius_max) ||
        double(std::min(spec.height, spec.width)) < 2.0 * spec.radius_max + 4.0) {
        throw Error(detail::concat("synthetic_make: need 0 <= 2 * touching_pairs <= objects, ",
                                   "1 <= radius_min <= radius_max and sides >= 2 * radius_max + 4;",
                                   " got objects ", spec.objects, ", touching_pairs ",
                                   spec.touching_pairs, ", radii [", spec.radius_min, ", ",
                                   spec.radius_max, "], size ", spec.height, "x", spec.width));
    }
    const int64_t h = spec.height, w = spec.width, plane = h * w;
    Rng rng(seed);
    SyntheticSample sample;
    sample.labels = LabelMap(h, w);
    std::vector<float> shade(static_cast<size_t>(plane), 0.0f);
    if (!detail::synthetic_place(spec, rng, sample.labels, shade)) {
        throw Error(detail::concat("synthetic_make: could not place ", spec.objects,
                                   " nuclei (", spec.touching_pairs, " touching pairs) of radius ",
                                   "up to ", spec.radius_max, " in ", h, "x", w,
                                   " (lower objects or radius_max, or enlarge the image)"));
    }

    // 3. colour per style: out_c = background_c + shade * (nucleus_c - background_c)
    std::array<float, 3> bg{}, fg{};
    switch (spec.style) {
        case SyntheticStyle::fluorescence: bg = {0.04f, 0.04f, 0.04f}, fg = {0.85f, 0.85f, 0.85f};
            sample.kind = ImageKind::fluorescence;
            break;
        case SyntheticStyle::brightfield: bg = {0.85f, 0.85f, 0.85f}, fg = {0.35f, 0.35f, 0.35f};
            sample.kind = ImageKind::brightfield;
            break;
        default: bg = {0.93f, 0.85f, 0.90f}, fg = {0.35f, 0.22f, 0.58f};
            sample.kind = ImageKind::he;
            break;
    }
    sample.image = Tensor<float>({3, h, w});
    std::vector<float> channel(static_cast<size_t>(plane));
    std::vector<float> noise(static_cast<size_t>(plane));
    for (float& n : noise) n = float(rng.normal(0.0, spec.noise));
    bool gray = spec.style != SyntheticStyle::he;
    for (int64_t k = 0; k < 3; ++k) {
        for (int64_t p = 0; p < plane; ++p) {
            channel[size_t(p)] = bg[size_t(k)] + shade[size_t(p)] * (fg[size_t(k)] - bg[size_t(k)]);
        }
        // 4. blur, then noise (shared by the channels of a gray style)
        detail::synthetic_blur(channel, h, w, spec.blur_sigma);
        if (!gray && k > 0) {
            for (float& n : noise) n = float(rng.normal(0.0, spec.noise));
        }
        for (int64_t p = 0; p < plane; ++p) {
            float v = channel[size_t(p)] + noise[size_t(p)];
            sample.image[k * plane + p] = std::min(1.0f, std::max(0.0f, v));
        }
    }
    return sample;
}

}  // namespace unetpp
