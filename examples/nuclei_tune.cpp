// nuclei_tune: chooses the post-processing thresholds of a trained nucleus model on labelled
// images and stores them in a copy of the model file.
//
// Purpose: the watershed that cuts the network's two maps into nuclei (post/postprocess.hpp) has
// thresholds whose best values depend on how confident the trained model is. This program
// scores a small grid of them with the competition metric and keeps the best, which
// nuclei_predict then reads from the model file.
//
// Inputs: --model FILE (best.safetensors from nuclei_train), --data DIR/stage1_train, --ids
// @RUN_DIR/val_ids.txt (the images to tune on: the validation split, never the test stage) and
// --out FILE for the tuned model.
//
// Run steps:
//   1. load the model and the labelled images, and predict every image's probabilities once
//      (the same tiled prediction as nuclei_predict);
//   2. coordinate search: for each setting in turn (mask, marker and boundary thresholds,
//      marker erosion, smallest object), try every value of its list with the others fixed and
//      keep the best mean score; two rounds over all settings;
//   3. per image kind with at least --kind-min-images images (fluorescence and H&E on the
//      default split; brightfield has 2), the same search on that kind's images alone, from the
//      overall result; a kind keeps its own config only where it scores higher;
//   4. write the model with metadata "nuclei.postprocess" and "nuclei.postprocess.<kind>"
//      (temporary name, then rename).
//
// Expected output: one line per tried value ("marker_threshold=0.7: 0.5123"), the chosen
// config with its score next to the defaults' score, and the tuned model file.
// Tuning on the validation images makes their score an optimistic estimate for new images: it
// is printed as "tuned on these images".

#include <unetpp/checkpoint.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/post/metric.hpp>
#include <unetpp/post/postprocess.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace {

using Clock = std::chrono::steady_clock;

const char* kUsage =
    "usage: nuclei_tune --model FILE --data DIR/stage1_train --ids @val_ids.txt --out FILE\n"
    "Chooses post-processing thresholds on labelled images and writes the tuned model.";

// One labelled image with its predicted probabilities.
struct Predicted {
    examples::LabelledImage image;
    unetpp::Tensor<float> probabilities;  // {2, H, W}
};

using Images = std::vector<const Predicted*>;

// Mean competition score of `post` over the images (images in parallel, summed in order).
double mean_score(const Images& images, const examples::KindPostprocess& post) {
    std::vector<double> scores(images.size());
    unetpp::parallel_for(0, int64_t(images.size()), [&](int64_t i) {
        const Predicted& p = *images[size_t(i)];
        unetpp::LabelMap found = examples::segment_nuclei(p.probabilities, post(p.image.kind));
        scores[size_t(i)] = unetpp::metric_image(p.image.labels, found).score;
    });
    double sum = 0;
    for (double s : scores) sum += s;
    return images.empty() ? 0.0 : sum / double(images.size());
}

// One tunable setting: its name, the values to try, and how to set it.
struct Setting {
    const char* name;
    std::vector<double> values;
    std::function<void(unetpp::PostprocessConfig&, double)> set;
};

std::vector<Setting> settings_grid() {
    using C = unetpp::PostprocessConfig;
    return {
        {"mask_threshold", {0.3, 0.4, 0.5, 0.6, 0.7, 0.8},
         [](C& c, double v) { c.mask_threshold = float(v); }},
        {"marker_threshold", {0.5, 0.6, 0.7, 0.8, 0.9},
         [](C& c, double v) { c.marker_threshold = float(v); }},
        {"boundary_threshold", {0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6},
         [](C& c, double v) { c.boundary_threshold = float(v); }},
        {"marker_erosion", {0, 1, 2}, [](C& c, double v) { c.marker_erosion = int(v); }},
        {"min_object_size", {5, 10, 20, 30, 45, 60},
         [](C& c, double v) { c.min_object_size = int64_t(v); }},
    };
}

// Steps 2 and 3: coordinate search from `start`, every image under one config; returns the
// best config and its score. `label` starts each printed line.
std::pair<unetpp::PostprocessConfig, double> tune(const Images& images,
                                                  unetpp::PostprocessConfig start,
                                                  const std::string& label) {
    unetpp::PostprocessConfig best = start;
    double best_score = mean_score(images, best);
    for (int round = 1; round <= 2; ++round) {
        for (const Setting& setting : settings_grid()) {
            for (double v : setting.values) {
                unetpp::PostprocessConfig trial = best;
                setting.set(trial, v);
                if (trial.marker_threshold < trial.mask_threshold) continue;  // markers in mask
                const double score = mean_score(images, trial);
                std::printf("%sround %d %s=%g: %.4f%s\n", label.c_str(), round, setting.name, v,
                            score, score > best_score ? " (best)" : "");
                std::fflush(stdout);
                if (score > best_score) {
                    best = trial;
                    best_score = score;
                }
            }
        }
    }
    return {best, best_score};
}

int run(const examples::Flags& f) {
    const std::string model = f.str("model"), data = f.str("data"), ids_text = f.str("ids");
    const std::string out = f.str("out");
    if (model.empty() || data.empty() || ids_text.empty() || out.empty()) {
        throw unetpp::Error("nuclei_tune needs --model FILE, --data DIR/stage1_train, --ids "
                            "@FILE and --out FILE (see --help)");
    }
    const int64_t kind_min_images = f.integer("kind-min-images");
    if (kind_min_images < 0) {
        throw unetpp::Error("--kind-min-images must be >= 0 (0: no per-kind tuning), got " +
                            std::to_string(kind_min_images));
    }
    const auto start = Clock::now();

    // 1. model, images, probabilities
    unetpp::Checkpoint ckpt;
    examples::KindPostprocess post;
    std::unique_ptr<examples::Net> net = examples::model_load(model, &ckpt, &post);
    const std::vector<std::string> ids =
        examples::ids_select(unetpp::dsb_list_ids(data), examples::ids_parse(ids_text), data);
    examples::PredictSpec spec;
    spec.tile = f.integer("tile");
    spec.overlap = std::min<int64_t>(64, spec.tile / 4);
    spec.tta = f.boolean("tta");
    std::vector<Predicted> predicted;
    for (examples::LabelledImage& im : examples::labelled_load(data, ids)) {
        unetpp::Tensor<float> p = examples::predict_probabilities(*net, im.input, spec);
        predicted.push_back(Predicted{std::move(im), std::move(p)});
    }
    Images images;
    for (const Predicted& p : predicted) images.push_back(&p);
    std::printf("predicted %zu images of %s in %.1f s\n", images.size(), data.c_str(),
                std::chrono::duration<double>(Clock::now() - start).count());
    std::fflush(stdout);

    // 2. search over all images, starting from the model's overall post-processing
    const double before = mean_score(images, post);
    auto [best, best_score] = tune(images, post.overall, "");
    const double defaults = mean_score(images, examples::nuclei_postprocess_config());

    // 3. kinds with enough images, each from the overall result
    examples::KindPostprocess tuned(best);
    std::vector<std::string> kind_lines;
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        const auto kind = unetpp::ImageKind(k);
        Images subset;
        for (const Predicted* p : images) {
            if (p->image.kind == kind) subset.push_back(p);
        }
        const char* name = unetpp::image_kind_name(kind);
        if (subset.empty()) continue;
        const double overall = mean_score(subset, best);
        if (kind_min_images == 0 || int64_t(subset.size()) < kind_min_images) {
            kind_lines.push_back(unetpp::detail::concat(name, ": ", subset.size(), " images, ",
                                                        "overall config, ", overall));
            continue;
        }
        auto [kind_best, kind_score] = tune(subset, best, std::string(name) + " ");
        const bool own = kind_score > overall;
        if (own) tuned.by_kind[size_t(k)] = kind_best;
        kind_lines.push_back(unetpp::detail::concat(
            name, ": ", subset.size(), " images, overall config ", overall,
            own ? ", own config " : ", own config no better ", kind_score));
    }
    const double kind_score = mean_score(images, tuned);

    // 4. the tuned model: same weights and metadata, plus the chosen post-processing
    std::map<std::string, std::string> meta = ckpt.metadata;
    meta[examples::kPostprocessKey] = unetpp::postprocess_config_to_string(best);
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        const auto kind = unetpp::ImageKind(k);
        const std::string key = examples::kind_postprocess_key(kind);
        const std::string text = unetpp::postprocess_config_to_string(tuned(kind));
        if (text != meta[examples::kPostprocessKey]) meta[key] = text;
        else meta.erase(key);
    }
    meta["nuclei.tuned_on"] = std::to_string(images.size()) + " images of " + ids_text;
    meta["nuclei.tuned_score"] = std::to_string(kind_score);
    unetpp::checkpoint_save_model(out, net->parameters(), meta);
    std::printf("defaults  %.4f  (%s)\nstart     %.4f\ntuned     %.4f  (%s)\n", defaults,
                unetpp::postprocess_config_to_string(examples::nuclei_postprocess_config())
                    .c_str(),
                before, best_score, unetpp::postprocess_config_to_string(best).c_str());
    for (const std::string& line : kind_lines) std::printf("  %s\n", line.c_str());
    std::printf("per kind  %.4f  (%s), tuned on these images\nwrote %s in %.1f s\n",
                kind_score, examples::kind_postprocess_text(tuned).c_str(), out.c_str(),
                std::chrono::duration<double>(Clock::now() - start).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags;
    flags.define("model", "", "model file written by nuclei_train")
        .define("data", "", "training stage folder with masks (e.g. dsb2018/stage1_train)")
        .define("ids", "", "images to tune on: a,b,c or @FILE (the validation ids)")
        .define("out", "", "where to write the tuned model")
        .define("tile", "512", "images with a side above this are predicted in tiles")
        .define("tta", "false", "average the predictions over four flips")
        .define("kind-min-images", "8",
                "tune an image kind on its own when it has this many images, 0: never")
        .define("threads", "0", "threads, 0: all cores");
    return examples::program_main("nuclei_tune", kUsage, flags, argc, argv, run);
}
