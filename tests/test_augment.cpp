// Joint augmentation (crops, flips, rotations, padding, intensity) and the batch sampler.
#include <catch2/catch.hpp>

#include <set>
#include <unetpp/data/augment.hpp>
#include <unetpp/data/batch.hpp>
#include <unetpp/data/synthetic.hpp>
#include <unetpp/parallel.hpp>

using unetpp::AugmentSpec;
using unetpp::Tensor;

namespace {

// A source whose targets encode their own coordinates (t0 = y, t1 = x) and whose image and
// weights are distinct functions of them, so every output pixel can be traced back.
struct CodedSource {
    Tensor<float> image, targets, weights;
    CodedSource(int64_t h, int64_t w) : image({2, h, w}), targets({2, h, w}), weights({1, h, w}) {
        for (int64_t y = 0; y < h; ++y) {
            for (int64_t x = 0; x < w; ++x) {
                image[y * w + x] = float(y + 1) / 64.0f;
                image[h * w + y * w + x] = float(x + 1) / 64.0f;
                targets[y * w + x] = float(y);
                targets[h * w + y * w + x] = float(x);
                weights[y * w + x] = 1.0f + float(y * w + x);
            }
        }
    }
};

AugmentSpec geometry_only(int64_t crop) {
    AugmentSpec spec;
    spec.crop = crop;
    spec.gamma = spec.contrast = spec.brightness = 0.0;
    return spec;
}

struct Output {
    Tensor<float> image, targets, weights;
    explicit Output(int64_t crop)
        : image({2, crop, crop}), targets({2, crop, crop}), weights({1, crop, crop}) {}
    unetpp::AugmentDestination destination() { return {image, targets, weights}; }
};

float at(const Tensor<float>& t, int64_t c, int64_t y, int64_t x) {
    return t[(c * t.dim(1) + y) * t.dim(2) + x];
}

// Reflect-101 by enumeration: walk the index back and forth.
int64_t mirror(int64_t i, int64_t n) {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

}  // namespace

TEST_CASE("without flips or rotations a crop is a plain window of the source", "[augment]") {
    CodedSource src(17, 23);
    AugmentSpec spec = geometry_only(9);
    spec.flips = spec.rotate90 = false;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        unetpp::Rng rng(seed);
        Output out(9);
        auto g = unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng,
                                       out.destination());
        REQUIRE(g.dihedral == 0);
        REQUIRE((g.oy >= 0 && g.oy <= 17 - 9 && g.ox >= 0 && g.ox <= 23 - 9));
        for (int64_t i = 0; i < 9; ++i) {
            for (int64_t j = 0; j < 9; ++j) {
                REQUIRE(at(out.targets, 0, i, j) == float(g.oy + i));
                REQUIRE(at(out.targets, 1, i, j) == float(g.ox + j));
            }
        }
    }
}

TEST_CASE("flips and rotations keep image, targets and weights aligned", "[augment]") {
    CodedSource src(17, 23);
    AugmentSpec spec = geometry_only(9);
    std::set<int> seen;
    for (uint64_t seed = 0; seed < 64; ++seed) {
        unetpp::Rng rng(seed);
        Output out(9);
        auto g = unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng,
                                       out.destination());
        seen.insert(g.dihedral);
        std::set<std::pair<int64_t, int64_t>> sources;
        for (int64_t i = 0; i < 9; ++i) {
            for (int64_t j = 0; j < 9; ++j) {
                auto y = int64_t(at(out.targets, 0, i, j)), x = int64_t(at(out.targets, 1, i, j));
                sources.insert({y, x});
                // the image and weight at (i, j) come from the same source pixel
                REQUIRE(at(out.image, 0, i, j) == float(y + 1) / 64.0f);
                REQUIRE(at(out.image, 1, i, j) == float(x + 1) / 64.0f);
                REQUIRE(at(out.weights, 0, i, j) == 1.0f + float(y * 23 + x));
                // neighbours in the output are neighbours in the source (a rigid motion)
                if (j > 0) {
                    auto py = int64_t(at(out.targets, 0, i, j - 1));
                    auto px = int64_t(at(out.targets, 1, i, j - 1));
                    REQUIRE(std::abs(py - y) + std::abs(px - x) == 1);
                }
            }
        }
        // the output covers a full 9x9 window of distinct source pixels
        REQUIRE(sources.size() == 81);
        REQUIRE(sources.begin()->first == g.oy);
    }
    REQUIRE(seen.size() == 8);
}

TEST_CASE("rotate90 alone draws only rotations, flips alone only flips", "[augment]") {
    CodedSource src(8, 8);
    AugmentSpec rot = geometry_only(8), flip = geometry_only(8);
    rot.flips = false;
    flip.rotate90 = false;
    std::set<int> rots, flips;
    for (uint64_t seed = 0; seed < 64; ++seed) {
        unetpp::Rng r1(seed), r2(seed);
        rots.insert(unetpp::geometry_draw(rot, 8, 8, r1).dihedral);
        flips.insert(unetpp::geometry_draw(flip, 8, 8, r2).dihedral);
    }
    REQUIRE(rots == std::set<int>{0, 3, 5, 6});
    REQUIRE(flips == std::set<int>{0, 1, 2, 3});
}

TEST_CASE("padding mirrors or zeroes the source and is masked out of the weights",
          "[augment][padding]") {
    CodedSource src(5, 7);
    for (auto pad : {unetpp::PadMode::reflect, unetpp::PadMode::zero}) {
        AugmentSpec spec = geometry_only(11);
        spec.flips = spec.rotate90 = false;
        spec.pad = pad;
        for (uint64_t seed = 0; seed < 10; ++seed) {
            unetpp::Rng rng(seed);
            Output out(11);
            auto g = unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng,
                                           out.destination());
            REQUIRE((g.oy >= -6 && g.oy <= 0 && g.ox >= -4 && g.ox <= 0));
            for (int64_t i = 0; i < 11; ++i) {
                for (int64_t j = 0; j < 11; ++j) {
                    int64_t sy = g.oy + i, sx = g.ox + j;
                    bool inside = sy >= 0 && sy < 5 && sx >= 0 && sx < 7;
                    INFO("pad " << int(pad) << " i=" << i << " j=" << j);
                    REQUIRE(at(out.weights, 0, i, j) == (inside ? 1.0f + float(sy * 7 + sx) : 0.f));
                    if (inside || pad == unetpp::PadMode::reflect) {
                        REQUIRE(at(out.targets, 0, i, j) == float(mirror(sy, 5)));
                        REQUIRE(at(out.targets, 1, i, j) == float(mirror(sx, 7)));
                    } else {
                        REQUIRE(at(out.targets, 0, i, j) == 0.0f);
                        REQUIRE(at(out.image, 1, i, j) == 0.0f);
                    }
                }
            }
        }
    }
}

TEST_CASE("labels follow the same geometry as the targets", "[augment]") {
    unetpp::LabelMap labels(13, 6);
    for (int64_t p = 0; p < 78; ++p) labels.labels[size_t(p)] = int32_t(p % 5);
    Tensor<float> image({1, 13, 6}), targets({1, 13, 6}), weights({1, 13, 6});
    for (int64_t p = 0; p < 78; ++p) targets[p] = float(labels.labels[size_t(p)]);
    AugmentSpec spec = geometry_only(8);
    for (uint64_t seed = 0; seed < 16; ++seed) {
        unetpp::Rng rng(seed);
        Tensor<float> oi({1, 8, 8}), ot({1, 8, 8}), ow({1, 8, 8});
        auto g = unetpp::augment_apply(spec, {image, targets, weights}, rng, {oi, ot, ow});
        unetpp::LabelMap cropped = unetpp::geometry_apply_labels(g, spec, labels);
        for (int64_t p = 0; p < 64; ++p) REQUIRE(float(cropped.labels[size_t(p)]) == ot[p]);
    }
}

TEST_CASE("intensity jitter touches the image only; inversion and grayscale as stated",
          "[augment][intensity]") {
    CodedSource src(12, 12);
    AugmentSpec spec = geometry_only(12);
    spec.flips = spec.rotate90 = false;
    spec.invert_prob = 1.0;
    unetpp::Rng rng(3);
    Output out(12);
    unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng, out.destination());
    REQUIRE(unetpp::tensor_max_abs_diff(out.targets, src.targets) == 0.0f);
    for (int64_t p = 0; p < out.image.numel(); ++p) {
        REQUIRE(out.image[p] == Approx(1.0f - src.image[p]).margin(1e-6));
    }

    spec.invert_prob = 0.0;
    spec.grayscale_prob = 1.0;
    spec.gamma = 0.3;
    spec.contrast = 0.3;
    spec.brightness = 0.2;
    unetpp::Rng rng2(4);
    unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng2, out.destination());
    REQUIRE(unetpp::tensor_max_abs_diff(out.targets, src.targets) == 0.0f);
    for (int64_t p = 0; p < 144; ++p) {
        REQUIRE(out.image[p] == out.image[144 + p]);
        REQUIRE((out.image[p] >= 0.0f && out.image[p] <= 1.0f));
    }
}

TEST_CASE("a seed fixes the augmentation", "[augment]") {
    CodedSource src(30, 19);
    AugmentSpec spec;
    spec.crop = 16;
    Output a(16), b(16);
    unetpp::Rng r1(77), r2(77);
    unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, r1, a.destination());
    unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, r2, b.destination());
    REQUIRE(unetpp::tensor_max_abs_diff(a.image, b.image) == 0.0f);
    REQUIRE(unetpp::tensor_max_abs_diff(a.targets, b.targets) == 0.0f);
}

TEST_CASE("augment_apply rejects mismatched shapes", "[augment][errors]") {
    CodedSource src(10, 10);
    Tensor<float> small({2, 4, 4});
    Output out(8);
    unetpp::Rng rng(1);
    AugmentSpec spec = geometry_only(8);
    REQUIRE_THROWS_AS(unetpp::augment_apply(spec, {src.image, small, src.weights}, rng,
                                            out.destination()),
                      unetpp::ShapeError);
    Tensor<float> wrong({2, 8, 7});
    REQUIRE_THROWS_AS(unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng,
                                            {wrong, out.targets, out.weights}),
                      unetpp::ShapeError);
}

namespace {
std::vector<unetpp::TrainSample> synthetic_train_set() {
    std::vector<unetpp::TrainSample> samples;
    unetpp::TrainSampleSpec tspec;
    tspec.targets.touching = true;
    auto styles = {unetpp::SyntheticStyle::fluorescence, unetpp::SyntheticStyle::brightfield,
                   unetpp::SyntheticStyle::he};
    uint64_t seed = 0;
    for (auto style : styles) {
        for (int i = 0; i < 2; ++i) {
            unetpp::SyntheticSpec spec;
            spec.style = style;
            spec.height = 72 + 5 * i;
            spec.width = 64;
            spec.objects = 4;
            spec.touching_pairs = 1;
            spec.radius_max = 10;
            auto s = unetpp::synthetic_make(spec, ++seed);
            samples.push_back(unetpp::train_sample_make(tspec, "s" + std::to_string(seed),
                                                        s.image, s.labels));
        }
    }
    return samples;
}
}  // namespace

TEST_CASE("train samples hold a normalised image, targets and weights", "[batch]") {
    auto samples = synthetic_train_set();
    REQUIRE(samples[0].kind == unetpp::ImageKind::fluorescence);
    REQUIRE(samples[2].kind == unetpp::ImageKind::brightfield);
    REQUIRE(samples[4].kind == unetpp::ImageKind::he);
    for (const auto& s : samples) {
        REQUIRE(s.image.dim(0) == 1);
        REQUIRE(s.targets.dim(0) == 3);
        REQUIRE(s.weights.dim(0) == 1);
    }
}

TEST_CASE("batches are identical for any thread count and any step order", "[batch]") {
    auto samples = synthetic_train_set();
    unetpp::BatchSpec spec;
    spec.batch_size = 5;
    spec.augment.crop = 48;
    spec.seed = 9;
    unetpp::BatchSampler sampler(spec, samples);

    unetpp::set_num_threads(1);
    unetpp::Batch one = sampler.batch_make(3);
    unetpp::set_num_threads(2);
    sampler.batch_make(7);  // another step first: must not matter
    unetpp::Batch two = sampler.batch_make(3);
    unetpp::set_num_threads(0);

    REQUIRE(one.images.shape() == unetpp::Shape{5, 1, 48, 48});
    REQUIRE(one.targets.shape() == unetpp::Shape{5, 3, 48, 48});
    REQUIRE(one.weights.shape() == unetpp::Shape{5, 1, 48, 48});
    REQUIRE(one.sample_index == two.sample_index);
    REQUIRE(unetpp::tensor_max_abs_diff(one.images, two.images) == 0.0f);
    REQUIRE(unetpp::tensor_max_abs_diff(one.targets, two.targets) == 0.0f);
    REQUIRE(unetpp::tensor_max_abs_diff(one.weights, two.weights) == 0.0f);
    unetpp::Batch other = sampler.batch_make(4);
    REQUIRE(unetpp::tensor_max_abs_diff(one.images, other.images) > 0.0f);
}

TEST_CASE("kind weights steer which samples fill a batch", "[batch]") {
    auto samples = synthetic_train_set();
    unetpp::BatchSpec spec;
    spec.batch_size = 4;
    spec.augment.crop = 16;
    spec.kind_weights = {0.0, 1.0, 3.0};  // no fluorescence; he three times as likely
    unetpp::BatchSampler sampler(spec, samples);
    int counts[3] = {0, 0, 0};
    for (int64_t step = 0; step < 100; ++step) {
        for (int64_t i : sampler.batch_make(step).sample_index) {
            ++counts[int(samples[size_t(i)].kind)];
        }
    }
    REQUIRE(counts[0] == 0);
    // 400 draws, expected 100 brightfield and 300 he: allow about 5 standard deviations
    REQUIRE(counts[1] > 55);
    REQUIRE(counts[1] < 145);
    REQUIRE(counts[1] + counts[2] == 400);

    spec.kind_weights = {0.0, 0.0, 0.0};
    REQUIRE_THROWS_AS(unetpp::BatchSampler(spec, samples), unetpp::Error);
}

TEST_CASE("zoom samples the image bilinearly and the targets at the nearest pixel",
          "[augment][zoom]") {
    CodedSource src(40, 50);
    AugmentSpec spec = geometry_only(12);
    spec.zoom = 1.0;  // factors in [0.5, 2]
    double lo = 10, hi = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
        unetpp::Rng rng(seed);
        Output out(12);
        auto g = unetpp::augment_apply(spec, {src.image, src.targets, src.weights}, rng,
                                       out.destination());
        REQUIRE((g.zoom >= 0.5 - 1e-12 && g.zoom <= 2.0 + 1e-12));
        lo = std::min(lo, g.zoom);
        hi = std::max(hi, g.zoom);
        for (int64_t i = 0; i < 12; ++i) {
            for (int64_t j = 0; j < 12; ++j) {
                double fy, fx;
                unetpp::geometry_source_point(g, 12, i, j, fy, fx);
                const auto ny = int64_t(std::floor(fy + 0.5));
                const auto nx = int64_t(std::floor(fx + 0.5));
                INFO("seed " << seed << " zoom " << g.zoom << " i=" << i << " j=" << j);
                // targets and weights: the nearest source pixel (mirrored when outside)
                REQUIRE(at(out.targets, 0, i, j) == float(mirror(ny, 40)));
                REQUIRE(at(out.targets, 1, i, j) == float(mirror(nx, 50)));
                const bool inside = ny >= 0 && ny < 40 && nx >= 0 && nx < 50;
                REQUIRE(at(out.weights, 0, i, j) ==
                        (inside ? 1.0f + float(ny * 50 + nx) : 0.0f));
                // the image is linear in y and x, which bilinear sampling reproduces exactly
                // wherever all four neighbours are inside the source
                if (fy >= 0 && fy <= 39 && fx >= 0 && fx <= 49) {
                    REQUIRE(at(out.image, 0, i, j) == Approx((fy + 1) / 64.0).margin(1e-5));
                    REQUIRE(at(out.image, 1, i, j) == Approx((fx + 1) / 64.0).margin(1e-5));
                }
            }
        }
        // a zoom by z spans about 12 / z source pixels along the crop's first row
        const float span = std::abs(at(out.targets, 0, 11, 0) - at(out.targets, 0, 0, 0)) +
                           std::abs(at(out.targets, 1, 11, 0) - at(out.targets, 1, 0, 0));
        REQUIRE(std::abs(span - 11.0 / g.zoom) <= 1.01);
    }
    REQUIRE(lo < 0.7);
    REQUIRE(hi > 1.4);
}

TEST_CASE("zoom leaves the random stream and the native mapping alone", "[augment][zoom]") {
    CodedSource src(30, 30);
    AugmentSpec plain = geometry_only(10), zoomed = geometry_only(10);
    zoomed.zoom = 0.5;
    unetpp::Rng a(11), b(11);
    Output oa(10), ob(10);
    auto ga = unetpp::augment_apply(plain, {src.image, src.targets, src.weights}, a,
                                    oa.destination());
    unetpp::augment_apply(zoomed, {src.image, src.targets, src.weights}, b, ob.destination());
    REQUIRE(ga.zoom == 1.0);
    REQUIRE(a.uniform() == b.uniform());  // the same count of numbers was drawn

    zoomed.zoom = -0.1;
    REQUIRE_THROWS_WITH(unetpp::augment_apply(zoomed, {src.image, src.targets, src.weights}, a,
                                              ob.destination()),
                        Catch::Contains("zoom must be in [0, 3], got -0.1"));
}
