// nuclei_synth: writes a synthetic nucleus data set in the competition's folder layout.
//
// Purpose: run and test the whole pipeline (train, predict, score) without the real data. The
// images come from data/synthetic.hpp: elliptical nuclei, some isolated, some in touching pairs,
// styled as fluorescence (bright on dark), brightfield (dark on light) or H&E (purple on pink).
//
// Inputs: --out DIR, --count N training images, --test-count M test images, --seed S.
//
// Run steps:
//   1. for image i, draw its style (3 of 5 fluorescence, 1 brightfield, 1 H&E, like the real
//      data's majority of fluorescence), its size and its number of nuclei from (seed, i);
//   2. make the image and its exact instance labels with synthetic_make;
//   3. write DIR/stage1_train/<id>/images/<id>.png and one binary PNG per nucleus in
//      DIR/stage1_train/<id>/masks/, then DIR/stage1_test/<id>/images/<id>.png (no masks).
//
// Expected output: "wrote N training images (K nuclei) and M test images to DIR", and the two
// stage folders, which nuclei_train, nuclei_predict and nuclei_score read like the real ones.
// The same (count, seed) always gives the same files.

#include <unetpp/data/synthetic.hpp>
#include <unetpp/image_io.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/random.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/flags.hpp"

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: nuclei_synth --out DIR [--count N] [--test-count M] [--seed S]\n"
    "Writes DIR/stage1_train (images and masks) and DIR/stage1_test (images) of synthetic nuclei.";

// The spec of image `index` of a set: style, size and nuclei drawn from (seed, index).
unetpp::SyntheticSpec synth_spec(uint64_t seed, int64_t index, int64_t max_side) {
    unetpp::Rng rng(seed * 1000003ULL + uint64_t(index));
    static const unetpp::SyntheticStyle kStyles[5] = {
        unetpp::SyntheticStyle::fluorescence, unetpp::SyntheticStyle::fluorescence,
        unetpp::SyntheticStyle::brightfield, unetpp::SyntheticStyle::fluorescence,
        unetpp::SyntheticStyle::he};
    unetpp::SyntheticSpec spec;
    spec.style = kStyles[index % 5];
    const int64_t sides[4] = {96, 128, 160, 192};
    spec.height = std::min(max_side, sides[rng.below(4)]);
    spec.width = std::min(max_side, sides[rng.below(4)]);
    spec.radius_min = 4.0;
    spec.radius_max = 9.0 + 3.0 * rng.uniform();
    spec.objects = int(std::max<int64_t>(2, spec.height * spec.width / 2500));
    spec.touching_pairs = spec.objects / 4;
    return spec;
}

const char* style_tag(unetpp::SyntheticStyle s) {
    switch (s) {
        case unetpp::SyntheticStyle::fluorescence: return "fluo";
        case unetpp::SyntheticStyle::brightfield: return "bf";
        default: return "he";
    }
}

// Writes one sample's image (and, for training, its masks); returns the number of nuclei.
int64_t write_sample(const std::string& stage, const std::string& id,
                     const unetpp::SyntheticSample& s, bool masks) {
    const fs::path dir = fs::path(stage) / id;
    fs::create_directories(dir / "images");
    unetpp::image_write_png((dir / "images" / (id + ".png")).string(), s.image);
    if (!masks) return 0;
    fs::create_directories(dir / "masks");
    const int32_t count = s.labels.max_label();
    std::vector<uint8_t> pixels(size_t(s.labels.size()));
    for (int32_t k = 1; k <= count; ++k) {
        for (int64_t p = 0; p < s.labels.size(); ++p) {
            pixels[size_t(p)] = s.labels.labels[size_t(p)] == k ? 255 : 0;
        }
        char name[64];
        std::snprintf(name, sizeof name, "%s_nucleus%03d.png", id.c_str(), int(k));
        unetpp::image_write_png_u8((dir / "masks" / name).string(), pixels, s.labels.height,
                                   s.labels.width, 1);
    }
    return count;
}

int run(const examples::Flags& f) {
    const std::string out = f.str("out");
    const int64_t count = f.integer("count"), test_count = f.integer("test-count");
    const uint64_t seed = uint64_t(f.integer("seed"));
    const int64_t max_side = f.integer("max-side");
    if (out.empty() || count < 2 || test_count < 0 || max_side < 64) {
        throw unetpp::Error("nuclei_synth needs --out DIR, --count >= 2, --test-count >= 0 and "
                            "--max-side >= 64 (see --help)");
    }
    const std::string train = (fs::path(out) / "stage1_train").string();
    const std::string test = (fs::path(out) / "stage1_test").string();
    fs::create_directories(train);
    fs::create_directories(test);

    // 1.-3. training images with masks, then test images, one per parallel_for iteration
    std::vector<int64_t> nuclei(size_t(count + test_count), 0);
    unetpp::parallel_for(0, count + test_count, [&](int64_t i) {
        const bool is_test = i >= count;
        const unetpp::SyntheticSpec spec = synth_spec(seed, i, max_side);
        const unetpp::SyntheticSample s = unetpp::synthetic_make(spec, seed * 7919ULL + i);
        char id[64];
        std::snprintf(id, sizeof id, "%s%s_%04lld", is_test ? "test_" : "", style_tag(spec.style),
                      static_cast<long long>(is_test ? i - count : i));
        nuclei[size_t(i)] = write_sample(is_test ? test : train, id, s, !is_test);
    });
    int64_t total = 0;
    for (int64_t n : nuclei) total += n;
    std::printf("wrote %lld training images (%lld nuclei) and %lld test images to %s\n",
                static_cast<long long>(count), static_cast<long long>(total),
                static_cast<long long>(test_count), out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags;
    flags.define("out", "", "output folder; gets stage1_train/ and stage1_test/")
        .define("count", "40", "training images (with masks)")
        .define("test-count", "10", "test images (without masks)")
        .define("seed", "1", "seed: the same seed writes the same files")
        .define("max-side", "192", "largest image side, pixels (64 or more)")
        .define("threads", "0", "threads, 0: all cores");
    return examples::program_main("nuclei_synth", kUsage, flags, argc, argv, run);
}
