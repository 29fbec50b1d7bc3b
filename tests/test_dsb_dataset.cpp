// The DSB folder layout, image kinds, normalisation and the train/validation split, on generated
// folders, and on the real data when it is present (UNETPP_TEST_DATA_DIR).
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/data/image_kind.hpp>
#include <unetpp/data/normalize.hpp>
#include <unetpp/data/split.hpp>
#include <unetpp/data/synthetic.hpp>
#include <unetpp/random.hpp>

namespace fs = std::filesystem;
using unetpp::Tensor;

namespace {

struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name) {
        unetpp::Rng rng(std::hash<std::string>()(name) ^ uint64_t(::time(nullptr)));
        std::string leaf = "unetpp_" + name + "_" + std::to_string(rng.next_u64());
        path = fs::temp_directory_path() / leaf;
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// Writes <stage>/<id>/images/<id>.png (RGBA, h x w) and one mask per rectangle, named as given.
struct Rect {
    std::string name;
    int64_t y0, y1, x0, x1;  // inclusive
};
void write_sample(const fs::path& stage, const std::string& id, int64_t h, int64_t w,
                  const std::vector<Rect>& masks) {
    fs::create_directories(stage / id / "images");
    Tensor<float> image({4, h, w});
    for (int64_t p = 0; p < h * w; ++p) {
        image[p] = image[h * w + p] = image[2 * h * w + p] = float(p % 7) / 10.0f;
        image[3 * h * w + p] = 1.0f;
    }
    unetpp::image_write_png((stage / id / "images" / (id + ".png")).string(), image);
    if (masks.empty()) return;
    fs::create_directories(stage / id / "masks");
    for (const Rect& r : masks) {
        Tensor<float> m({1, h, w});
        for (int64_t y = r.y0; y <= r.y1; ++y) {
            for (int64_t x = r.x0; x <= r.x1; ++x) m[y * w + x] = 1.0f;
        }
        unetpp::image_write_png((stage / id / "masks" / r.name).string(), m);
    }
}

std::string io_message(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const unetpp::IoError& e) {
        return e.what();
    }
    return "(no IoError)";
}

}  // namespace

TEST_CASE("a generated DSB folder loads into the right label map", "[dsb]") {
    TempDir dir("dsb_layout");
    fs::path stage = dir.path / "stage1_train";
    // masks named out of order: label i goes to the i-th name in sorted order
    write_sample(stage, "bbb", 9, 11,
                 {{"m2.png", 5, 7, 1, 3}, {"m1.png", 0, 2, 0, 4}, {"m3.png", 4, 8, 7, 10}});
    write_sample(stage, "aaa", 6, 5, {});  // a test-style sample without masks
    fs::create_directories(stage / "not_a_sample" / "images");

    REQUIRE(unetpp::dsb_list_ids(stage.string()) == std::vector<std::string>{"aaa", "bbb"});
    unetpp::DsbSample s = unetpp::dsb_load_sample(stage.string(), "bbb");
    REQUIRE(s.id == "bbb");
    REQUIRE(s.has_labels);
    REQUIRE(s.mask_count == 3);
    REQUIRE(s.image.shape() == unetpp::Shape{3, 9, 11});  // alpha dropped by default
    for (int64_t y = 0; y < 9; ++y) {
        for (int64_t x = 0; x < 11; ++x) {
            int32_t expected = 0;
            if (y <= 2 && x <= 4) expected = 1;
            if (y >= 5 && y <= 7 && x >= 1 && x <= 3) expected = 2;
            if (y >= 4 && x >= 7 && x <= 10) expected = 3;
            REQUIRE(s.labels.at(y, x) == expected);
        }
    }
    unetpp::DsbSample t = unetpp::dsb_load_sample(stage.string(), "aaa");
    REQUIRE_FALSE(t.has_labels);
    REQUIRE(t.image.shape() == unetpp::Shape{3, 6, 5});

    unetpp::DsbLoadOptions image_only;
    image_only.masks = false;
    image_only.channels = unetpp::ImageChannels::keep;
    auto both = unetpp::dsb_load_samples(stage.string(), {"bbb", "aaa"}, image_only);
    REQUIRE(both[0].id == "bbb");
    REQUIRE(both[0].image.dim(0) == 4);
    REQUIRE_FALSE(both[0].has_labels);
}

TEST_CASE("overlapping masks: the earlier keeps the pixel, or an error names both",
          "[dsb][errors]") {
    TempDir dir("dsb_overlap");
    fs::path stage = dir.path / "train";
    write_sample(stage, "x", 6, 6, {{"a.png", 0, 2, 0, 2}, {"b.png", 2, 4, 2, 4}});
    unetpp::DsbSample s = unetpp::dsb_load_sample(stage.string(), "x");
    REQUIRE(s.overlap_pixels == 1);
    REQUIRE(s.labels.at(2, 2) == 1);
    REQUIRE(s.labels.at(3, 3) == 2);

    unetpp::DsbLoadOptions strict;
    strict.overlap = unetpp::DsbOverlap::error;
    std::string msg = io_message([&] { unetpp::dsb_load_sample(stage.string(), "x", strict); });
    CHECK_THAT(msg, Catch::Contains("a.png") && Catch::Contains("b.png") &&
                        Catch::Contains("y=2, x=2"));
}

TEST_CASE("broken DSB folders throw IoError naming the file", "[dsb][errors]") {
    TempDir dir("dsb_errors");
    fs::path stage = dir.path / "stage";
    fs::create_directories(stage);
    CHECK_THAT(io_message([&] { unetpp::dsb_list_ids(stage.string()); }),
               Catch::Contains(stage.string()) && Catch::Contains("no sample"));
    CHECK_THAT(io_message([&] { unetpp::dsb_list_ids((dir.path / "nope").string()); }),
               Catch::Contains("nope"));

    // wrong-size mask
    write_sample(stage, "w", 8, 8, {{"ok.png", 0, 1, 0, 1}});
    std::string small = (stage / "w" / "masks" / "small.png").string();
    unetpp::image_write_png(small, Tensor<float>({1, 7, 8}));
    CHECK_THAT(io_message([&] { unetpp::dsb_load_sample(stage.string(), "w"); }),
               Catch::Contains("small.png") && Catch::Contains("7x8"));

    // missing image
    fs::create_directories(stage / "m" / "masks");
    CHECK_THAT(io_message([&] { unetpp::dsb_load_sample(stage.string(), "m"); }),
               Catch::Contains((stage / "m" / "images" / "m.png").string()));

    // empty masks folder
    write_sample(stage, "e", 4, 4, {});
    fs::create_directories(stage / "e" / "masks");
    CHECK_THAT(io_message([&] { unetpp::dsb_load_sample(stage.string(), "e"); }),
               Catch::Contains("holds no mask"));

    // unreadable mask PNG
    write_sample(stage, "u", 4, 4, {{"good.png", 0, 0, 0, 0}});
    std::ofstream((stage / "u" / "masks" / "bad.png").string()) << "not a png";
    CHECK_THAT(io_message([&] { unetpp::dsb_load_sample(stage.string(), "u"); }),
               Catch::Contains("bad.png"));
}

TEST_CASE("image kinds follow the documented rule on generated images", "[image_kind]") {
    auto solid = [](float r, float g, float b) {
        Tensor<float> x({3, 5, 7});
        for (int64_t p = 0; p < 35; ++p) {
            x[p] = r;
            x[35 + p] = g;
            x[70 + p] = b;
        }
        return x;
    };
    using unetpp::ImageKind;
    REQUIRE(unetpp::image_kind_classify(solid(0.1f, 0.1f, 0.1f)) == ImageKind::fluorescence);
    REQUIRE(unetpp::image_kind_classify(solid(0.1f, 0.4f, 0.1f)) == ImageKind::fluorescence);
    REQUIRE(unetpp::image_kind_classify(solid(0.8f, 0.8f, 0.8f)) == ImageKind::brightfield);
    REQUIRE(unetpp::image_kind_classify(solid(0.8f, 0.79f, 0.8f)) == ImageKind::brightfield);
    REQUIRE(unetpp::image_kind_classify(solid(0.9f, 0.7f, 0.9f)) == ImageKind::he);
    auto stats = unetpp::image_kind_stats(solid(0.9f, 0.7f, 0.8f));
    REQUIRE(stats.median_gray == Approx(0.8));
    REQUIRE(stats.mean_chroma == Approx(0.2));
    REQUIRE_THROWS_AS(unetpp::image_kind_classify(Tensor<float>({3, 0, 4})), unetpp::ShapeError);
}

TEST_CASE("normalised images show nuclei bright on dark for every kind", "[normalize]") {
    for (auto style : {unetpp::SyntheticStyle::fluorescence, unetpp::SyntheticStyle::brightfield,
                       unetpp::SyntheticStyle::he}) {
        unetpp::SyntheticSpec spec;
        spec.style = style;
        spec.height = 96;
        spec.width = 112;
        spec.objects = 6;
        spec.touching_pairs = 1;
        auto s = unetpp::synthetic_make(spec, 21);
        Tensor<float> n = unetpp::image_normalize(s.image);
        REQUIRE(n.shape() == unetpp::Shape{1, 96, 112});
        double fg = 0, bg = 0;
        int64_t nf = 0, nb = 0;
        for (int64_t p = 0; p < n.numel(); ++p) {
            REQUIRE((n[p] >= 0.0f && n[p] <= 1.0f));
            bool nucleus = s.labels.labels[size_t(p)] > 0;
            (nucleus ? fg : bg) += n[p];
            ++(nucleus ? nf : nb);
        }
        INFO("style " << int(style));
        REQUIRE(fg / double(nf) - bg / double(nb) > 0.4);
    }
}

TEST_CASE("the hematoxylin signal is high for hematoxylin and low for eosin and white",
          "[normalize]") {
    // colours of pure stains at optical density 1 along their (normalised) vectors
    auto stain = [](double r, double g, double b) {
        double n = std::sqrt(r * r + g * g + b * b);
        return std::array<float, 3>{float(std::pow(10.0, -r / n)), float(std::pow(10.0, -g / n)),
                                    float(std::pow(10.0, -b / n))};
    };
    std::array<std::array<float, 3>, 3> colours = {stain(0.650, 0.704, 0.286),
                                                   stain(0.072, 0.990, 0.105),
                                                   std::array<float, 3>{1.0f, 1.0f, 1.0f}};
    Tensor<float> x({3, 1, 3});
    for (int64_t k = 0; k < 3; ++k) {
        for (int64_t p = 0; p < 3; ++p) x[k * 3 + p] = colours[size_t(p)][size_t(k)];
    }
    Tensor<float> h = unetpp::image_nucleus_signal(x, unetpp::ImageKind::he);
    REQUIRE(h[0] == Approx(1.0).margin(0.02));  // pure hematoxylin, density 1
    REQUIRE(h[1] == Approx(0.0).margin(0.02));  // pure eosin
    REQUIRE(h[2] == Approx(0.0).margin(1e-6));  // white
}

TEST_CASE("the contrast stretch maps the percentiles to 0 and 1", "[normalize]") {
    Tensor<float> s({1, 1, 101});
    for (int64_t i = 0; i < 101; ++i) s[i] = 0.2f + 0.005f * float(i);
    unetpp::NormalizeSpec spec;
    spec.low_percentile = 10.0;
    spec.high_percentile = 90.0;
    unetpp::signal_stretch(spec, s);
    REQUIRE(s[5] == 0.0f);
    REQUIRE(s[10] == 0.0f);
    REQUIRE(s[50] == Approx(0.5).margin(1e-5));
    REQUIRE(s[90] == 1.0f);
    REQUIRE(s[100] == 1.0f);
    Tensor<float> flat({1, 3, 3});
    flat.fill(0.7f);
    unetpp::signal_stretch({}, flat);
    for (float v : flat) REQUIRE(v == 0.0f);
    spec.low_percentile = 95.0;
    REQUIRE_THROWS_AS(unetpp::signal_stretch(spec, s), unetpp::Error);
}

TEST_CASE("the split is deterministic, order-free and stratified by kind", "[split]") {
    using unetpp::ImageKind;
    std::vector<std::string> ids;
    std::vector<ImageKind> kinds;
    for (int i = 0; i < 53; ++i) {
        ids.push_back("id" + std::to_string(i * 7919 % 1000));
        kinds.push_back(i < 40 ? ImageKind::fluorescence
                               : (i < 50 ? ImageKind::he : ImageKind::brightfield));
    }
    unetpp::Split a = unetpp::split_by_kind(ids, kinds, 0.1, 5);

    // shuffled input, same split
    std::vector<size_t> order(ids.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = (i * 31) % order.size();
    std::vector<std::string> ids2;
    std::vector<ImageKind> kinds2;
    for (size_t i : order) {
        ids2.push_back(ids[i]);
        kinds2.push_back(kinds[i]);
    }
    unetpp::Split b = unetpp::split_by_kind(ids2, kinds2, 0.1, 5);
    REQUIRE(a.train == b.train);
    REQUIRE(a.validation == b.validation);

    // 10% of each kind, at least one: 4 fluorescence, 1 he, 1 brightfield (of 3)
    auto count = [&](const std::vector<std::string>& list, ImageKind k) {
        int n = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            if (kinds[i] == k && std::count(list.begin(), list.end(), ids[i])) ++n;
        }
        return n;
    };
    REQUIRE(count(a.validation, ImageKind::fluorescence) == 4);
    REQUIRE(count(a.validation, ImageKind::he) == 1);
    REQUIRE(count(a.validation, ImageKind::brightfield) == 1);
    REQUIRE(a.train.size() + a.validation.size() == ids.size());
    REQUIRE(std::is_sorted(a.train.begin(), a.train.end()));

    unetpp::Split c = unetpp::split_by_kind(ids, kinds, 0.1, 6);
    REQUIRE(c.validation != a.validation);

    // a kind with a single image stays in training
    unetpp::Split single = unetpp::split_by_kind({"only"}, {ImageKind::he}, 0.5, 1);
    REQUIRE(single.validation.empty());
    REQUIRE_THROWS_AS(unetpp::split_by_kind({"a", "a"}, {ImageKind::he, ImageKind::he}, 0.1, 1),
                      unetpp::Error);
}

// ---- the real data, when present ----------------------------------------------------------

namespace {
std::string stage_dir(const char* stage) {
    return (fs::path(UNETPP_TEST_DATA_DIR) / "dsb2018" / stage).string();
}
}  // namespace

TEST_CASE("real stage1_train samples: one label per mask, consistent label maps",
          "[dsb][real_data]") {
    std::string stage = stage_dir("stage1_train");
    if (!fs::is_directory(stage)) {
        WARN("skipped: no data at " << stage);
        return;
    }
    std::vector<std::string> ids = unetpp::dsb_list_ids(stage);
    REQUIRE(ids.size() == 664);
    for (size_t i : {size_t(0), size_t(331), ids.size() - 1}) {
        unetpp::DsbSample s = unetpp::dsb_load_sample(stage, ids[i]);
        INFO("sample " << ids[i]);
        REQUIRE(s.has_labels);
        REQUIRE(s.mask_count == int64_t(unetpp::dsb_mask_paths(stage, ids[i]).size()));
        REQUIRE(s.labels.max_label() == s.mask_count);
        std::vector<int64_t> area(size_t(s.mask_count) + 1, 0);
        for (int32_t l : s.labels.labels) ++area[size_t(l)];
        for (size_t l = 1; l < area.size(); ++l) REQUIRE(area[l] > 0);
        REQUIRE(s.labels.height == s.image.dim(1));
        REQUIRE(s.labels.width == s.image.dim(2));
    }
}

TEST_CASE("real image kinds: the majority of stage1_train is fluorescence",
          "[image_kind][real_data]") {
    std::string stage = stage_dir("stage1_train");
    if (!fs::is_directory(stage)) {
        WARN("skipped: no data at " << stage);
        return;
    }
    unetpp::DsbLoadOptions image_only;
    image_only.masks = false;
    std::vector<std::string> ids = unetpp::dsb_list_ids(stage);
    std::vector<int> counts(unetpp::kImageKindCount, 0);
    std::vector<int> per_index(ids.size());
    unetpp::parallel_for(0, int64_t(ids.size()), [&](int64_t i) {
        auto s = unetpp::dsb_load_sample(stage, ids[size_t(i)], image_only);
        per_index[size_t(i)] = int(unetpp::image_kind_classify(s.image));
    });
    for (int k : per_index) ++counts[size_t(k)];
    std::cout << "stage1_train kinds: fluorescence " << counts[0] << ", brightfield " << counts[1]
              << ", he " << counts[2] << "\n";
    REQUIRE(counts[0] > int(ids.size()) / 2);
    REQUIRE(counts[1] > 0);
    REQUIRE(counts[2] > 0);
}
