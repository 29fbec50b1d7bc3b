// nuclei_score: scores predicted nuclei against the true masks with the competition metric.
//
// Purpose: the judge of the pipeline. For each image, a predicted nucleus counts as found at an
// IoU threshold t in 0.50, 0.55, ..., 0.95 when it overlaps a true nucleus with IoU above t;
// the image scores the mean over t of TP / (TP + FP + FN), and the set the mean over its images
// (post/metric.hpp). Scores are also given per image kind, since fluorescence images are much
// easier than brightfield and H&E ones.
//
// Inputs: --truth DIR/stage1_train (images and masks), which images to score (--ids a,b,c or
// --ids @RUN_DIR/val_ids.txt, or --split val with the --seed, --val-fraction and --max-images
// nuclei_train used), --pred submission.csv or a folder of 16-bit label PNGs
// (nuclei_predict --save-labels), and --out scores.csv.
//
// Run steps:
//   1. choose the ids: the list given, or the validation split recomputed from every image's kind;
//   2. load their true nuclei from the masks and their predicted nuclei from the CSV (or PNGs);
//      an image the prediction lacks counts as predicted empty (and is reported);
//   3. score each image, then the means overall and per kind.
//
// Expected output: "score 0.4123 over 67 images (fluorescence 0.5012 n=54, ...)" and a CSV with
// one row per image: id, kind, true and predicted counts, score, precision at each threshold.

#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/data/image_kind.hpp>
#include <unetpp/data/split.hpp>
#include <unetpp/image_io.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/post/metric.hpp>
#include <unetpp/post/submission.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: nuclei_score --truth DIR/stage1_train --pred submission.csv|LABELS_DIR\n"
    "                    (--ids a,b|@FILE | --split val [--seed S]) [--out scores.csv]";

// Path of a sample's image in a stage folder.
std::string image_path(const std::string& stage, const std::string& id) {
    return (fs::path(stage) / id / "images" / (id + ".png")).string();
}

// Step 1: the ids to score.
std::vector<std::string> ids_choose(const examples::Flags& f, const std::string& truth) {
    std::vector<std::string> all = unetpp::dsb_list_ids(truth);
    const std::string ids = f.str("ids"), split = f.str("split");
    if (!ids.empty()) return examples::ids_select(all, examples::ids_parse(ids), truth);
    if (split.empty() || split == "all") return all;
    if (split != "val" && split != "train") {
        throw unetpp::Error("--split must be val, train or all, got \"" + split + "\"");
    }
    all = examples::ids_subset(all, f.integer("max-images"));
    std::vector<unetpp::ImageKind> kinds(all.size());
    unetpp::parallel_for(0, int64_t(all.size()), [&](int64_t i) {
        kinds[size_t(i)] = unetpp::image_kind_classify(
            unetpp::image_read(image_path(truth, all[size_t(i)]), unetpp::ImageChannels::rgb));
    });
    unetpp::Split s = unetpp::split_by_kind(all, kinds, f.real("val-fraction"),
                                            uint64_t(f.integer("seed")));
    return split == "val" ? s.validation : s.train;
}

// The ids a submission CSV names (first column, header skipped).
std::set<std::string> csv_ids(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw unetpp::IoError("cannot read the submission \"" + path + "\"");
    std::set<std::string> ids;
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        if (!line.empty()) ids.insert(line.substr(0, line.find(',')));
    }
    return ids;
}

// Step 2, predictions: one label map per id that the prediction covers.
std::map<std::string, unetpp::LabelMap> predictions_load(const std::string& pred,
                                                         const std::string& truth) {
    std::map<std::string, unetpp::LabelMap> out;
    std::error_code ec;
    if (fs::is_directory(pred, ec)) {
        for (const auto& entry : fs::directory_iterator(pred)) {
            if (entry.path().extension() != ".png") continue;
            unetpp::Tensor<float> image =
                unetpp::image_read(entry.path().string(), unetpp::ImageChannels::keep);
            if (image.dim(0) != 1) {
                throw unetpp::IoError("\"" + entry.path().string() + "\" is not a gray label "
                                      "map (write them with nuclei_predict --save-labels)");
            }
            unetpp::LabelMap labels(image.dim(1), image.dim(2));
            for (int64_t p = 0; p < labels.size(); ++p) {
                labels.labels[size_t(p)] = int32_t(std::lround(image[p] * 65535.0f));
            }
            out[entry.path().stem().string()] = std::move(labels);
        }
        return out;
    }
    std::map<std::string, unetpp::ImageSize> sizes;
    for (const std::string& id : csv_ids(pred)) {
        const std::string path = image_path(truth, id);
        if (!fs::is_regular_file(path, ec)) {
            throw unetpp::IoError("the submission \"" + pred + "\" has image \"" + id +
                                  "\", which is not in " + truth + " (score predictions of the "
                                  "training stage, e.g. nuclei_predict --ids @val_ids.txt)");
        }
        unetpp::ImageInfo info = unetpp::image_info(path);
        sizes[id] = unetpp::ImageSize{info.height, info.width};
    }
    return unetpp::submission_read(pred, sizes);
}

int run(const examples::Flags& f) {
    const std::string truth = f.str("truth"), pred = f.str("pred"), out = f.str("out");
    if (truth.empty() || pred.empty()) {
        throw unetpp::Error("nuclei_score needs --truth DIR/stage1_train and --pred "
                            "submission.csv or a label folder (see --help)");
    }
    std::error_code ec;
    if (!fs::exists(pred, ec)) throw unetpp::IoError("no prediction at \"" + pred + "\"");

    // 1.-2. ids, truth and predictions
    const std::vector<std::string> ids = ids_choose(f, truth);
    std::map<std::string, unetpp::LabelMap> predicted = predictions_load(pred, truth);
    std::vector<examples::LabelledImage> images = examples::labelled_load(truth, ids);

    // 3. per image, then the means
    std::vector<examples::ScoredImage> scores;
    int64_t missing = 0;
    for (const examples::LabelledImage& im : images) {
        auto it = predicted.find(im.id);
        unetpp::LabelMap empty(im.labels.height, im.labels.width);
        if (it == predicted.end()) ++missing;
        const unetpp::LabelMap& p = it == predicted.end() ? empty : it->second;
        if (p.height != im.labels.height || p.width != im.labels.width) {
            throw unetpp::ShapeError(unetpp::detail::concat(
                "prediction for \"", im.id, "\" is ", p.height, "x", p.width, ", its image is ",
                im.labels.height, "x", im.labels.width));
        }
        scores.push_back({im.id, im.kind, unetpp::metric_image(im.labels, p)});
    }
    if (missing > 0) {
        std::printf("warning: %lld of %zu images have no prediction in %s (scored as empty)\n",
                    static_cast<long long>(missing), ids.size(), pred.c_str());
    }
    const examples::ScoreSummary summary = examples::score_summary(scores);
    std::printf("score %s over %zu images\n", examples::score_summary_text(summary).c_str(),
                scores.size());
    if (!out.empty()) {
        examples::scores_write_csv(out, scores);
        std::printf("  per-image scores  %s\n", out.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags;
    flags.define("truth", "", "training stage folder with masks (e.g. stage1_train)")
        .define("pred", "", "submission.csv, or a folder of <id>.png 16-bit label maps")
        .define("ids", "", "score these ids: a,b,c or @FILE (one per line)")
        .define("split", "", "without --ids: val, train or all (the default) images")
        .define("seed", "1", "--split: the seed nuclei_train used")
        .define("val-fraction", "0.1", "--split: the validation share nuclei_train used")
        .define("max-images", "0", "--split: the --max-images nuclei_train used")
        .define("out", "", "per-image CSV to write (none when empty)")
        .define("threads", "0", "threads, 0: all cores");
    return examples::program_main("nuclei_score", kUsage, flags, argc, argv, run);
}
