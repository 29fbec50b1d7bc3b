// nuclei_predict: finds the nuclei in whole images with a trained model and writes a submission.
//
// Purpose: the inference half of the pipeline. Every image, of any size, goes through the same
// functions that nuclei_train validates with (examples/common/pipeline.hpp), so the validation
// score predicts what these predictions score.
//
// Inputs: --model FILE (best.safetensors from nuclei_train; the default is the model shipped in
// models/), --images DIR/stage1_test (the competition layout <id>/images/<id>.png; a training
// stage works too, with --ids to pick images) and --out OUT_DIR.
//
// Run steps:
//   1. load the model and check that it is a nucleus model (1 input, 2 outputs);
//   2. for each image: classify and normalise it as in training, predict nucleus and contour
//      probabilities (one forward, or overlapping tiles blended for images larger than --tile;
//      with --tta, the mean over four flips), and cut them into separate, non-overlapping nuclei
//      with a marker-controlled watershed (post/postprocess.hpp), using the thresholds that
//      nuclei_tune stored in the model for the image's kind;
//   3. write one CSV row per nucleus, run-length encoded (post/submission.hpp), and an overlay
//      PNG that outlines each nucleus in its own colour over the image (post/overlay.hpp).
//
// Expected output: one line per image ("<id> 256x320 fluorescence: 37 nuclei (0.4 s)"), then
// OUT_DIR/submission.csv (header ImageId,EncodedPixels), OUT_DIR/overlays/<id>.png and, with
// --save-labels, OUT_DIR/labels/<id>.png (16-bit label maps that nuclei_score reads).

#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/image_io.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/post/connected_components.hpp>
#include <unetpp/post/overlay.hpp>
#include <unetpp/post/submission.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: nuclei_predict --images DIR/stage1_test --out OUT_DIR [--model FILE] [--tta]\n"
    "Writes OUT_DIR/submission.csv and OUT_DIR/overlays/<id>.png.";

#ifndef UNETPP_MODELS_DIR
#define UNETPP_MODELS_DIR "models"
#endif
const char* kDefaultModel = UNETPP_MODELS_DIR "/nuclei_unet.safetensors";

// Writes labels as a 16-bit gray PNG whose value is the label (nuclei_score reads it back).
void labels_write_png(const std::string& path, const unetpp::LabelMap& labels) {
    if (labels.max_label() > 65535) {
        throw unetpp::Error("cannot store " + std::to_string(labels.max_label()) +
                            " labels in a 16-bit PNG: " + path);
    }
    unetpp::Tensor<float> image({1, labels.height, labels.width});
    for (int64_t p = 0; p < labels.size(); ++p) {
        image[p] = float(labels.labels[size_t(p)]) / 65535.0f;
    }
    unetpp::image_write_png16(path, image);
}

int run(const examples::Flags& f) {
    using Clock = std::chrono::steady_clock;
    const std::string images = f.str("images"), out = f.str("out");
    if (images.empty() || out.empty()) {
        throw unetpp::Error("nuclei_predict needs --images DIR/stage1_test and --out OUT_DIR "
                            "(see --help)");
    }
    examples::PredictSpec spec;
    spec.tile = f.integer("tile");
    spec.overlap = f.integer("overlap");
    spec.tta = f.boolean("tta");
    const bool save_labels = f.boolean("save-labels");

    // 1. the model and the image list
    examples::KindPostprocess post;
    std::unique_ptr<examples::Net> net = examples::model_load(f.str("model"), nullptr, &post);
    std::vector<std::string> ids = unetpp::dsb_list_ids(images);
    if (!f.str("ids").empty()) {
        ids = examples::ids_select(ids, examples::ids_parse(f.str("ids")), images);
    }
    fs::create_directories(fs::path(out) / "overlays");
    if (save_labels) fs::create_directories(fs::path(out) / "labels");
    std::printf("model %s (%s)\npost-processing %s\npredicting %zu images of %s%s on %d "
                "threads\n", f.str("model").c_str(), net->config().to_string().c_str(),
                examples::kind_postprocess_text(post).c_str(), ids.size(), images.c_str(),
                spec.tta ? " with flip TTA" : "", unetpp::num_threads());

    // 2.-3. each image: predict, segment, overlay; rows collected in image order
    std::vector<unetpp::SubmissionRow> rows;
    int64_t total = 0;
    const auto start = Clock::now();
    unetpp::DsbLoadOptions load;
    load.masks = false;
    for (const std::string& id : ids) {
        const auto t = Clock::now();
        unetpp::DsbSample sample = unetpp::dsb_load_sample(images, id, load);
        examples::PreparedImage prepared = examples::prepare_input(sample.image);
        unetpp::LabelMap labels =
            examples::segment_nuclei(examples::predict_probabilities(*net, prepared.input, spec),
                                     post(prepared.kind));
        for (auto& row : unetpp::submission_rows(id, labels)) rows.push_back(std::move(row));
        const std::vector<uint8_t> rgb =
            unetpp::overlay_outlines(unetpp::OverlaySpec{}, sample.image.view(), labels);
        unetpp::image_write_png_rgb((fs::path(out) / "overlays" / (id + ".png")).string(), rgb,
                                    labels.height, labels.width);
        if (save_labels) labels_write_png((fs::path(out) / "labels" / (id + ".png")).string(),
                                          labels);
        const int64_t count = unetpp::labels_count(labels);
        total += count;
        std::printf("%s %lldx%lld %s: %lld nuclei (%.2f s)\n", id.c_str(),
                    static_cast<long long>(labels.height), static_cast<long long>(labels.width),
                    unetpp::image_kind_name(prepared.kind), static_cast<long long>(count),
                    std::chrono::duration<double>(Clock::now() - t).count());
        std::fflush(stdout);
    }
    const std::string csv = (fs::path(out) / "submission.csv").string();
    unetpp::submission_write(csv, rows);
    std::printf("found %lld nuclei in %zu images in %.1f s\n  submission  %s\n  overlays    %s\n",
                static_cast<long long>(total), ids.size(),
                std::chrono::duration<double>(Clock::now() - start).count(), csv.c_str(),
                (fs::path(out) / "overlays").string().c_str());
    if (save_labels) std::printf("  labels      %s\n", (fs::path(out) / "labels").string().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags;
    flags.define("model", kDefaultModel, "model file written by nuclei_train")
        .define("images", "", "stage folder with <id>/images/<id>.png (e.g. stage1_test)")
        .define("out", "", "output folder")
        .define("ids", "", "only these ids: a,b,c or @FILE (one per line)")
        .define("tta", "false", "average the predictions over four flips")
        .define("tile", "512", "images with a side above this are predicted in tiles")
        .define("overlap", "64", "overlap of neighbouring tiles, pixels")
        .define("save-labels", "false", "also write 16-bit label PNGs to OUT_DIR/labels")
        .define("threads", "0", "threads, 0: all cores");
    return examples::program_main("nuclei_predict", kUsage, flags, argc, argv, run);
}
