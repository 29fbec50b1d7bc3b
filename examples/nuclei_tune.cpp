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
//   3. write the model with metadata "nuclei.postprocess" (temporary name, then rename).
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

// Mean competition score of `post` over the images (images in parallel, summed in order).
double mean_score(const std::vector<Predicted>& images, const unetpp::PostprocessConfig& post) {
    std::vector<double> scores(images.size());
    unetpp::parallel_for(0, int64_t(images.size()), [&](int64_t i) {
        const Predicted& p = images[size_t(i)];
        unetpp::LabelMap found = examples::segment_nuclei(p.probabilities, post);
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
        {"mask_threshold", {0.3, 0.4, 0.5, 0.6},
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

// Step 2: coordinate search from `start`; returns the best config and its score.
std::pair<unetpp::PostprocessConfig, double> tune(const std::vector<Predicted>& images,
                                                  unetpp::PostprocessConfig start) {
    unetpp::PostprocessConfig best = start;
    double best_score = mean_score(images, best);
    for (int round = 1; round <= 2; ++round) {
        for (const Setting& setting : settings_grid()) {
            for (double v : setting.values) {
                unetpp::PostprocessConfig trial = best;
                setting.set(trial, v);
                if (trial.marker_threshold < trial.mask_threshold) continue;  // markers in mask
                const double score = mean_score(images, trial);
                std::printf("round %d %s=%g: %.4f%s\n", round, setting.name, v, score,
                            score > best_score ? " (best)" : "");
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
    const auto start = Clock::now();

    // 1. model, images, probabilities
    unetpp::Checkpoint ckpt;
    unetpp::PostprocessConfig post;
    std::unique_ptr<examples::Net> net = examples::model_load(model, &ckpt, &post);
    const std::vector<std::string> ids =
        examples::ids_select(unetpp::dsb_list_ids(data), examples::ids_parse(ids_text), data);
    examples::PredictSpec spec;
    spec.tile = f.integer("tile");
    spec.overlap = std::min<int64_t>(64, spec.tile / 4);
    spec.tta = f.boolean("tta");
    std::vector<Predicted> images;
    for (examples::LabelledImage& im : examples::labelled_load(data, ids)) {
        unetpp::Tensor<float> p = examples::predict_probabilities(*net, im.input, spec);
        images.push_back(Predicted{std::move(im), std::move(p)});
    }
    std::printf("predicted %zu images of %s in %.1f s\n", images.size(), data.c_str(),
                std::chrono::duration<double>(Clock::now() - start).count());
    std::fflush(stdout);

    // 2. search, starting from the model's current post-processing
    const double before = mean_score(images, post);
    auto [best, best_score] = tune(images, post);
    const double defaults = mean_score(images, examples::nuclei_postprocess_config());

    // 3. the tuned model: same weights and metadata, plus the chosen post-processing
    std::map<std::string, std::string> meta = ckpt.metadata;
    meta[examples::kPostprocessKey] = unetpp::postprocess_config_to_string(best);
    meta["nuclei.tuned_on"] = std::to_string(images.size()) + " images of " + ids_text;
    meta["nuclei.tuned_score"] = std::to_string(best_score);
    unetpp::checkpoint_save_model(out, net->parameters(), meta);
    std::printf("defaults  %.4f  (%s)\nstart     %.4f\ntuned     %.4f  (%s), tuned on these "
                "images\nwrote %s in %.1f s\n", defaults,
                unetpp::postprocess_config_to_string(examples::nuclei_postprocess_config())
                    .c_str(),
                before, best_score, unetpp::postprocess_config_to_string(best).c_str(),
                out.c_str(), std::chrono::duration<double>(Clock::now() - start).count());
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
        .define("threads", "0", "threads, 0: all cores");
    return examples::program_main("nuclei_tune", kUsage, flags, argc, argv, run);
}
