// nuclei_train: trains the nucleus U-Net on the 2018 Data Science Bowl training stage.
//
// Purpose: fit a U-Net that predicts, for every pixel, "on a nucleus" and "on a nucleus contour",
// the two maps from which post-processing cuts touching nuclei apart (docs/pipeline.md).
//
// Inputs: --data DIR/stage1_train (the competition layout: <id>/images/<id>.png and
// <id>/masks/*.png, or a synthetic set from nuclei_synth) and --out RUN_DIR for the results.
//
// Run steps:
//   1. load every image with its masks in parallel, classify its kind (fluorescence,
//      brightfield, H&E) and normalise it to one gray channel with nuclei bright on dark;
//   2. split the ids into training and validation, stratified by kind (data/split.hpp), and
//      build the targets (nucleus mask, contour rim of --contour-width pixels) and U-Net
//      weight maps of the training images;
//   3. train: random native-resolution crops with flips, 90-degree turns and intensity jitter,
//      brightfield and H&E oversampled (--kind-share), a U-Net with batch norm (--batch-norm),
//      BCE + Dice on 2 output channels, Adam with linear warm-up then cosine decay, gradient
//      clipping by global norm;
//   4. every epoch (or --val-every steps): predict the whole validation images (tiled), cut them
//      into nuclei and score them with the competition metric, overall and per kind;
//   5. save RUN_DIR/last.safetensors (weights, optimizer, step: --resume continues from it) and,
//      when the score improves, RUN_DIR/best.safetensors (weights and architecture only);
//   6. stop after --epochs, when the --minutes budget (45 by default) runs out, or at the first
//      Ctrl-C, always with a last validation and save. With a budget, the learning-rate
//      schedule follows the clock too, so that it reaches its end when the time does.
//
// Expected output: a progress bar with the loss and images/s, one summary line per validation,
// and in RUN_DIR: best.safetensors, last.safetensors, log.csv (epoch, step, train loss, scores,
// seconds), curves.svg (loss and score curves), steps.log (one line per step), val_ids.txt and
// train_ids.txt. A tiny smoke run: nuclei_train --data synth/stage1_train --out run --quick

#include <unetpp/checkpoint.hpp>
#include <unetpp/data/augment.hpp>
#include <unetpp/data/batch.hpp>
#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/data/split.hpp>
#include <unetpp/data/targets.hpp>
#include <unetpp/log.hpp>
#include <unetpp/losses/combined.hpp>
#include <unetpp/model/unet.hpp>
#include <unetpp/optim/adam.hpp>
#include <unetpp/optim/clip.hpp>
#include <unetpp/optim/schedule.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/train_log.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/flags.hpp"
#include "common/pipeline.hpp"
#include "common/svg_plot.hpp"

namespace fs = std::filesystem;
using unetpp::ImageKind;
using unetpp::Tensor;

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;
void on_signal(int) { g_stop_requested = 1; }

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

const char* kUsage =
    "usage: nuclei_train --data DIR/stage1_train --out RUN_DIR [flags]\n"
    "Trains the nucleus U-Net; see the comment at the top of examples/nuclei_train.cpp.";

// Declares the flags; --quick changes the defaults to a tiny model and a few steps.
void flags_define(examples::Flags& f, bool quick) {
    f.define("data", "", "training stage folder (e.g. dsb2018/stage1_train)")
        .define("out", "", "run folder for checkpoints, logs and curves")
        .define("quick", "false", "tiny model, few steps and images: a smoke run of ~1 minute")
        .define("resume", "false", "continue from RUN_DIR/last.safetensors")
        .define("crop", quick ? "96" : "256", "training crop side, pixels")
        .define("batch", "8", "crops per step")
        .define("epochs", quick ? "3" : "40", "epochs (an epoch: steps-per-epoch steps)")
        .define("steps-per-epoch", quick ? "20" : "0",
                "0: as many steps as it takes for the crops to hold the training pixels once")
        .define("minutes", quick ? "0" : "45",
                "wall-time budget from the start, the last validation included; the learning "
                "rate schedule is stretched to end with it. 0: none, --epochs decide")
        .define("lr", quick ? "3e-3" : "1e-3", "peak learning rate (Adam)")
        .define("warmup", quick ? "5" : "200", "linear warm-up steps")
        .define("min-lr", "1e-5", "learning rate at the end of the cosine decay")
        .define("clip", "5", "clip the gradients' global norm to this")
        .define("threads", "0", "threads, 0: all cores")
        .define("width", quick ? "8" : "16", "channels of the first U-Net level")
        .define("depth", quick ? "3" : "4", "poolings of the U-Net")
        .define("batch-norm", "true", "batch normalisation after every convolution")
        .define("val-fraction", "0.1", "share of each kind's images held out for validation")
        .define("val-every", "0", "validate every this many steps, 0: every epoch")
        .define("seed", "1", "seed of the split, the weights and the crops")
        .define("max-images", quick ? "40" : "0", "use at most this many images, 0: all")
        .define("kind-share", "0.6,0.15,0.25",
                "share of crops from fluorescence, brightfield, H&E images")
        .define("w0", "10", "U-Net border weight between touching nuclei, 0: none")
        .define("contour-width", "2", "width in pixels of the contour target's rim, >= 1")
        .define("zoom", "0", "zoom crops by a random factor in [1/(1+z), 1+z], 0: native size")
        .define("tile", quick ? "256" : "512", "validation: tile side for large images")
        .define("verbose", "true", "print the progress bar");
}

// Everything the command line sets.
struct Options {
    std::string data, out;
    bool resume = false;
    int64_t crop = 0, batch = 0, epochs = 0, steps_per_epoch = 0, warmup = 0, val_every = 0;
    int64_t max_images = 0, width = 0, depth = 0, tile = 0, contour_width = 0;
    double minutes = 0, lr = 0, min_lr = 0, clip = 0, val_fraction = 0, w0 = 0, zoom = 0;
    bool batch_norm = false, verbose = true;
    uint64_t seed = 1;
    std::array<double, unetpp::kImageKindCount> kind_share{};
};

Options options_read(const examples::Flags& f) {
    Options o;
    o.data = f.str("data");
    o.out = f.str("out");
    if (o.data.empty() || o.out.empty()) {
        throw unetpp::Error("nuclei_train needs --data DIR/stage1_train and --out RUN_DIR "
                            "(see --help)");
    }
    o.resume = f.boolean("resume");
    o.crop = f.integer("crop");
    o.batch = f.integer("batch");
    o.epochs = f.integer("epochs");
    o.steps_per_epoch = f.integer("steps-per-epoch");
    o.warmup = f.integer("warmup");
    o.val_every = f.integer("val-every");
    o.max_images = f.integer("max-images");
    o.width = f.integer("width");
    o.depth = f.integer("depth");
    o.tile = f.integer("tile");
    o.minutes = f.real("minutes");
    o.lr = f.real("lr");
    o.min_lr = f.real("min-lr");
    o.clip = f.real("clip");
    o.val_fraction = f.real("val-fraction");
    o.w0 = f.real("w0");
    o.contour_width = f.integer("contour-width");
    o.zoom = f.real("zoom");
    o.batch_norm = f.boolean("batch-norm");
    o.verbose = f.boolean("verbose");
    o.seed = uint64_t(f.integer("seed"));
    std::stringstream shares(f.str("kind-share"));
    std::string item;
    for (size_t k = 0; k < o.kind_share.size(); ++k) {
        if (!std::getline(shares, item, ',')) {
            throw unetpp::Error("--kind-share needs three numbers a,b,c, got \"" +
                                f.str("kind-share") + "\"");
        }
        o.kind_share[k] = std::stod(item);
    }
    if (o.crop < 16 || o.batch < 1 || o.epochs < 1 || o.steps_per_epoch < 0 || o.warmup < 0 ||
        o.clip <= 0 || o.lr <= 0 || o.min_lr < 0 || o.contour_width < 1 ||
        !(o.zoom >= 0 && o.zoom <= 3)) {
        throw unetpp::Error("need --crop >= 16, --batch >= 1, --epochs >= 1, --steps-per-epoch "
                            ">= 0, --warmup >= 0, --clip > 0, --lr > 0, --min-lr >= 0, "
                            "--contour-width >= 1 and 0 <= --zoom <= 3");
    }
    return o;
}

// The data, split and prepared.
struct Data {
    std::vector<unetpp::TrainSample> train;
    std::vector<examples::LabelledImage> validation;
};

// Steps 1 and 2 of the header comment.
Data data_load(const Options& o) {
    auto start = Clock::now();
    std::vector<std::string> ids = examples::ids_subset(unetpp::dsb_list_ids(o.data),
                                                        o.max_images);
    std::printf("loading %zu images with their masks from %s on %d threads ...\n", ids.size(),
                o.data.c_str(), unetpp::num_threads());
    std::fflush(stdout);
    std::vector<examples::LabelledImage> all = examples::labelled_load(o.data, ids);
    int64_t masks = 0;
    std::vector<ImageKind> kinds;
    for (const auto& im : all) {
        kinds.push_back(im.kind);
        masks += im.labels.max_label();
    }
    std::printf("loaded %zu images, %lld nuclei in %.1f s\n", all.size(),
                static_cast<long long>(masks), seconds_since(start));

    // the split, written down so nuclei_predict and nuclei_score can use the same one
    unetpp::Split split = unetpp::split_by_kind(ids, kinds, o.val_fraction, o.seed);
    examples::ids_write((fs::path(o.out) / "train_ids.txt").string(), split.train);
    examples::ids_write((fs::path(o.out) / "val_ids.txt").string(), split.validation);

    // training samples: targets and weight maps, built in parallel
    Data d;
    std::vector<size_t> train_index;
    for (size_t i = 0; i < all.size(); ++i) {
        bool val = std::binary_search(split.validation.begin(), split.validation.end(), ids[i]);
        if (val) d.validation.push_back(std::move(all[i]));
        else train_index.push_back(i);
    }
    d.train.resize(train_index.size());
    unetpp::TargetSpec targets;  // mask + contour
    targets.contour_width = int(o.contour_width);
    unetpp::WeightSpec weights;
    weights.w0 = o.w0;
    unetpp::parallel_for(0, int64_t(train_index.size()), [&](int64_t j) {
        examples::LabelledImage& im = all[train_index[size_t(j)]];
        unetpp::TrainSample& s = d.train[size_t(j)];
        s.id = im.id;
        s.kind = im.kind;
        s.targets = unetpp::targets_make(targets, im.labels);
        s.weights = unetpp::weight_map_make(weights, im.labels);
        s.image = std::move(im.input);
        im.labels = unetpp::LabelMap();
    });
    std::array<int, unetpp::kImageKindCount> tk{}, vk{};
    for (const auto& s : d.train) ++tk[size_t(s.kind)];
    for (const auto& s : d.validation) ++vk[size_t(s.kind)];
    std::printf("split: %zu training (%d fluorescence, %d brightfield, %d he), %zu validation "
                "(%d, %d, %d); ready after %.1f s\n", d.train.size(), tk[0], tk[1], tk[2],
                d.validation.size(), vk[0], vk[1], vk[2], seconds_since(start));
    if (d.train.empty()) throw unetpp::Error("no training image left after the split");
    return d;
}

// Steps of one epoch: as many as it takes for the crops to hold as many pixels as the training
// images (at least one). Counting images instead would make an epoch of 256-pixel crops cover
// only about a third of a stage whose images are 256x256 to 1040x1388.
int64_t steps_per_epoch_default(const Options& o, const Data& d) {
    double pixels = 0;
    for (const auto& s : d.train) pixels += double(s.image.dim(1)) * double(s.image.dim(2));
    const double per_step = double(o.batch) * double(o.crop) * double(o.crop);
    return std::max<int64_t>(1, int64_t(std::ceil(pixels / per_step)));
}

// Where the learning-rate schedule stands. Without a time budget it is the step. With one, it
// also advances with the wall clock, so that the schedule reaches its end (min_lr) when the
// budget, less a margin for the last validation, runs out: position = max(position + 1,
// p0 + (total - p0) * elapsed / available). Warm-up steps always count one by one.
struct ScheduleClock {
    double total = 0;          // schedule length, steps
    int64_t warmup = 0;
    double p0 = 0;             // position when this run's training loop started
    Clock::time_point t0;      // ... and when
    Clock::time_point deadline;
    bool timed = false;
    double validation_seconds = 0;  // the last validation's duration, reserved at the end

    // Seconds from t0 that training may use: the budget less a margin over the last
    // validation's time (the next one may take a little longer).
    double available() const {
        return std::chrono::duration<double>(deadline - t0).count() -
               (1.25 * validation_seconds + 5.0);
    }
    // The position after one more step from `position`.
    double advance(double position) const {
        double next = position + 1;
        if (!timed || next <= double(warmup)) return std::min(next, total);
        const double frac = std::max(0.0, std::min(1.0, seconds_since(t0) /
                                                           std::max(1.0, available())));
        return std::min(total, std::max(next, p0 + (total - p0) * frac));
    }
    // True when the budget leaves no time for one more step before the final validation.
    bool out_of_time() const {
        return timed && seconds_since(t0) >= available();
    }
};

// Sampling weight per kind so that kind k supplies about share[k] of the crops.
std::array<double, unetpp::kImageKindCount> kind_weights(const Options& o, const Data& d) {
    std::array<int64_t, unetpp::kImageKindCount> count{};
    for (const auto& s : d.train) ++count[size_t(s.kind)];
    std::array<double, unetpp::kImageKindCount> w{};
    for (size_t k = 0; k < w.size(); ++k) {
        w[k] = count[k] > 0 ? std::max(0.0, o.kind_share[k]) / double(count[k]) : 0.0;
    }
    return w;
}

// One log.csv row.
struct LogRow {
    double epoch = 0;
    int64_t step = 0;
    double train_loss = 0;
    examples::ScoreSummary val;
    double seconds = 0;
};

const char* kLogHeader =
    "epoch,step,train_loss,val_score,val_fluorescence,val_brightfield,val_he,seconds";

// Rows of an existing log.csv (a resumed run continues its curves); none when absent.
std::vector<LogRow> log_read(const std::string& path) {
    std::vector<LogRow> rows;
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        std::vector<double> v;
        std::stringstream ss(line);
        for (std::string cell; std::getline(ss, cell, ',');) v.push_back(std::strtod(cell.c_str(),
                                                                                 nullptr));
        if (v.size() != 8) continue;
        LogRow r;
        r.epoch = v[0];
        r.step = int64_t(v[1]);
        r.train_loss = v[2];
        r.val.overall = v[3];
        for (size_t k = 0; k < 3; ++k) r.val.by_kind[k] = v[4 + k];
        r.seconds = v[7];
        rows.push_back(r);
    }
    return rows;
}

void log_append(const std::string& path, const LogRow& r) {
    bool fresh = !fs::exists(path);
    std::ofstream out(path, std::ios::app);
    if (fresh) out << kLogHeader << '\n';
    char buf[256];
    std::snprintf(buf, sizeof buf, "%.3f,%lld,%.5f,%.5f,%.5f,%.5f,%.5f,%.1f\n", r.epoch,
                  static_cast<long long>(r.step), r.train_loss, r.val.overall, r.val.by_kind[0],
                  r.val.by_kind[1], r.val.by_kind[2], r.seconds);
    out << buf;
    if (!out) throw unetpp::IoError("cannot append to \"" + path + "\"");
}

void curves_write(const std::string& path, const std::vector<LogRow>& rows) {
    examples::PlotPanel loss{"training loss", "step", "BCE + Dice", {}};
    loss.series.push_back({"train loss", "#1f77b4", {}});
    examples::PlotPanel score{"validation score (competition metric)", "step", "mean AP", {}};
    const char* colours[] = {"#2ca02c", "#ff7f0e", "#9467bd"};
    score.series.push_back({"all", "#000000", {}});
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        score.series.push_back({unetpp::image_kind_name(ImageKind(k)), colours[k], {}});
    }
    for (const LogRow& r : rows) {
        loss.series[0].points.push_back({double(r.step), r.train_loss});
        score.series[0].points.push_back({double(r.step), r.val.overall});
        for (size_t k = 0; k < 3; ++k) {
            score.series[k + 1].points.push_back({double(r.step), r.val.by_kind[k]});
        }
    }
    examples::plot_write_svg(path, {loss, score});
}

// The training state that last.safetensors keeps besides weights and optimizer.
struct Progress {
    int64_t step = 0;
    double position = 0;    // where the learning-rate schedule stands, in steps (>= step)
    double seconds = 0;     // training seconds of earlier runs
    double best = -1;       // best validation score so far
};

void save_last(const std::string& path, examples::Net& net, const unetpp::Adam<float>& adam,
               const Progress& p, const Options& o) {
    auto meta = examples::model_metadata(net);
    meta["train.step"] = std::to_string(p.step);
    meta["train.schedule_position"] = std::to_string(p.position);
    meta["train.seconds"] = std::to_string(p.seconds);
    meta["train.best_score"] = std::to_string(p.best);
    meta["train.seed"] = std::to_string(o.seed);
    unetpp::checkpoint_save_model(path, net.parameters(), adam.state_save(), meta);
}

double meta_number(const unetpp::Checkpoint& c, const std::string& key) {
    auto it = c.metadata.find(key);
    if (it == c.metadata.end()) {
        throw unetpp::IoError("\"" + c.source + "\" has no \"" + key + "\": not a checkpoint "
                              "written by nuclei_train's last.safetensors");
    }
    return std::strtod(it->second.c_str(), nullptr);
}

// The model to train: from RUN_DIR/last.safetensors with --resume (its stored architecture,
// optimizer state and progress), else fresh from the flags (clearing old logs).
std::unique_ptr<examples::Net> model_start(const Options& o, unetpp::Adam<float>& adam,
                                           Progress& progress) {
    const std::string last_path = (fs::path(o.out) / "last.safetensors").string();
    if (o.resume && fs::exists(last_path)) {
        unetpp::Checkpoint ckpt;
        std::unique_ptr<examples::Net> net = examples::model_load(last_path, &ckpt);
        adam.state_load(unetpp::checkpoint_optimizer_state<float>(ckpt), net->parameters());
        progress.step = int64_t(meta_number(ckpt, "train.step"));
        progress.position = meta_number(ckpt, "train.schedule_position");
        progress.seconds = meta_number(ckpt, "train.seconds");
        progress.best = meta_number(ckpt, "train.best_score");
        std::printf("resumed from %s at step %lld (%s)\n", last_path.c_str(),
                    static_cast<long long>(progress.step), net->config().to_string().c_str());
        return net;
    }
    if (o.resume) std::printf("no %s yet: starting fresh\n", last_path.c_str());
    std::remove((fs::path(o.out) / "log.csv").string().c_str());
    std::remove((fs::path(o.out) / "steps.log").string().c_str());
    return std::make_unique<examples::Net>(
        examples::nuclei_config(o.width, o.depth, o.batch_norm, o.seed));
}

// One optimisation step on batch `step`; returns the loss and the gradient norm before
// clipping. Throws Error naming the step when either is not finite.
std::pair<double, double> train_step(const Options& o, const unetpp::BatchSampler& sampler,
                                     const unetpp::CombinedLossSpec& loss_spec, double lr,
                                     int64_t step, examples::Net& net, unetpp::Adam<float>& adam,
                                     unetpp::Batch& batch, Tensor<float>& dlogits) {
    sampler.batch_fill(step, batch);
    const Tensor<float>& logits = net.forward(batch.images.view(), unetpp::Mode::train);
    dlogits.resize(logits.shape());
    unetpp::CombinedLossValue loss = unetpp::combined_loss<float>(
        loss_spec, logits.view(), batch.targets.view(), batch.weights.view(), dlogits.view());
    net.backward(dlogits.view());
    unetpp::ParameterList<float> params = net.parameters();
    const double norm = unetpp::grad_clip_global_norm(params, o.clip);
    if (!std::isfinite(loss.total) || !std::isfinite(norm)) {
        throw unetpp::Error(unetpp::detail::concat("training diverged at step ", step, " (loss ",
                                                   loss.total, ", gradient norm ", norm,
                                                   "): lower --lr or --clip"));
    }
    adam.step(params, lr);
    return {loss.total, norm};
}

// Cosine decay after a linear warm-up, ending at the last step.
unetpp::LrScheduleSpec schedule_make(const Options& o, int64_t total_steps) {
    unetpp::LrScheduleSpec schedule;
    schedule.base_lr = o.lr;
    schedule.decay = unetpp::LrDecay::cosine;
    schedule.warmup_steps = std::min(o.warmup, total_steps - 1);
    schedule.total_steps = total_steps;
    schedule.min_lr = std::min(o.min_lr, o.lr);
    return schedule;
}

// Crops, augmentation and kind oversampling of the training batches.
unetpp::BatchSpec batch_spec_make(const Options& o, const Data& data) {
    unetpp::BatchSpec spec;
    spec.batch_size = o.batch;
    spec.augment.crop = o.crop;
    spec.augment.zoom = o.zoom;
    spec.kind_weights = kind_weights(o, data);
    spec.seed = o.seed;
    return spec;
}

// What a validation needs and updates: the model, the progress and the files of RUN_DIR.
struct Session {
    const Options& o;
    const Data& data;
    examples::Net& net;
    unetpp::Adam<float>& adam;
    Progress& progress;
    unetpp::TrainLogger& logger;
    int64_t steps_per_epoch = 1;
    examples::PredictSpec predict;
    std::vector<LogRow> rows;  // log.csv so far
    Clock::time_point train_start = Clock::now();
    double loss_sum = 0;  // training loss since the last validation
    int64_t loss_count = 0;

    std::string path(const char* name) const { return (fs::path(o.out) / name).string(); }
};

// Steps 4 and 5 of the header comment: score the validation images, save best and last, add
// a log.csv row, redraw curves.svg and print a summary.
void validate_and_save(Session& s) {
    auto t = Clock::now();
    LogRow row;
    row.step = s.progress.step;
    row.epoch = double(s.progress.step) / double(s.steps_per_epoch);
    row.train_loss = s.loss_count > 0 ? s.loss_sum / double(s.loss_count) : std::nan("");
    row.val = examples::score_summary(examples::evaluate(s.net, s.data.validation, s.predict));
    row.seconds = s.progress.seconds + seconds_since(s.train_start);

    // checkpoints: best when the score improved (always, without validation images), then last
    const bool better = s.data.validation.empty() || row.val.overall > s.progress.best;
    if (better) {
        s.progress.best = s.data.validation.empty() ? 0.0 : row.val.overall;
        auto meta = examples::model_metadata(s.net);
        meta["train.step"] = std::to_string(s.progress.step);
        meta["train.val_score"] = std::to_string(row.val.overall);
        unetpp::checkpoint_save_model(s.path("best.safetensors"), s.net.parameters(), meta);
    }
    Progress saved = s.progress;
    saved.seconds = row.seconds;
    save_last(s.path("last.safetensors"), s.net, s.adam, saved, s.o);

    // log, curves and the summary line
    s.rows.push_back(row);
    log_append(s.path("log.csv"), row);
    curves_write(s.path("curves.svg"), s.rows);
    char summary[512];
    std::snprintf(summary, sizeof summary,
                  "step %lld epoch %.2f: train loss %.4f, validation score %s%s "
                  "[validation %.1f s]",
                  static_cast<long long>(row.step), row.epoch, row.train_loss,
                  examples::score_summary_text(row.val).c_str(), better ? " (best)" : "",
                  seconds_since(t));
    s.logger.end_epoch(summary);
    s.loss_sum = 0;
    s.loss_count = 0;
}

int run(const Options& o) {
    const auto start = Clock::now();
    fs::create_directories(o.out);

    // 1.-2. data, then the model, fresh or resumed
    Data data = data_load(o);
    unetpp::Adam<float> adam(unetpp::AdamSpec{o.lr});
    Progress progress;
    std::unique_ptr<examples::Net> net = model_start(o, adam, progress);
    std::printf("model: %s, %lld parameters\n", net->config().to_string().c_str(),
                static_cast<long long>(net->parameter_count()));

    // the schedule, the sampler and the loss
    const int64_t spe = o.steps_per_epoch > 0 ? o.steps_per_epoch
                                              : steps_per_epoch_default(o, data);
    const int64_t total_steps = spe * o.epochs;
    const int64_t val_every = o.val_every > 0 ? o.val_every : spe;
    const unetpp::LrScheduleSpec schedule = schedule_make(o, total_steps);
    unetpp::BatchSampler sampler(batch_spec_make(o, data), data.train);
    unetpp::CombinedLossSpec loss_spec;
    loss_spec.dice.channel_weights = {1.0, 0.0};  // Dice on the nucleus mask; BCE on both
    unetpp::TrainLogger logger((fs::path(o.out) / "steps.log").string(), o.verbose);
    examples::PredictSpec predict;
    predict.tile = o.tile;
    predict.overlap = std::min<int64_t>(64, o.tile / 4);
    Session session{o, data, *net, adam, progress, logger, spe, predict,
                    log_read((fs::path(o.out) / "log.csv").string()),
                    Clock::now(), 0.0, 0};
    // a resumed run that had already finished (or stopped right after saving) has nothing new
    const int64_t resumed_at = o.resume && !session.rows.empty() ? session.rows.back().step : -1;
    std::printf("training %lld steps (%lld per epoch, %lld epochs) of %lld crops of %lld px",
                static_cast<long long>(total_steps), static_cast<long long>(spe),
                static_cast<long long>(o.epochs), static_cast<long long>(o.batch),
                static_cast<long long>(o.crop));
    if (o.minutes > 0) {
        std::printf(", or fewer: the schedule ends with the %.1f min budget", o.minutes);
    }
    std::printf("\n");
    std::fflush(stdout);
    ScheduleClock clock;
    clock.total = double(total_steps);
    clock.warmup = schedule.warmup_steps;
    clock.p0 = progress.position;
    clock.t0 = Clock::now();
    clock.timed = o.minutes > 0;
    clock.deadline = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o.minutes * 60));

    // 3. the training loop; 6. it ends at the last step, the time budget or a signal
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    unetpp::Batch batch;
    Tensor<float> dlogits;
    bool validated = false;
    while (progress.position < double(total_steps)) {
        if (g_stop_requested) {
            std::printf("\nstop requested: validating and saving\n");
            break;
        }
        if (clock.out_of_time()) break;
        auto t = Clock::now();
        unetpp::TrainStepRecord rec;
        rec.lr = unetpp::lr_schedule_at(schedule, int64_t(progress.position));
        std::tie(rec.loss, rec.grad_norm) = train_step(o, sampler, loss_spec, rec.lr,
                                                       progress.step, *net, adam, batch, dlogits);
        rec.step = ++progress.step;
        progress.position = clock.advance(progress.position);
        rec.epoch = (progress.step - 1) / spe + 1;
        rec.images_per_second = double(o.batch) / seconds_since(t);
        session.loss_sum += rec.loss;
        ++session.loss_count;
        logger.step(rec, (progress.step - 1) % val_every + 1, val_every);
        validated = progress.step % val_every == 0 || progress.position >= double(total_steps);
        if (validated) {
            auto v = Clock::now();
            validate_and_save(session);
            clock.validation_seconds = seconds_since(v);
        }
    }
    // the clock, not the step count, ended the schedule: say so before the last validation
    if (clock.timed && !g_stop_requested && progress.step < total_steps) {
        std::printf("\ntime budget of %.1f min reached after %lld steps%s\n", o.minutes,
                    static_cast<long long>(progress.step),
                    validated ? "" : ": validating and saving");
    }
    if (!validated && progress.step > resumed_at) validate_and_save(session);

    std::printf("done: step %lld, best validation score %.4f\n  best model  %s\n  last state  "
                "%s\n  log         %s\n  curves      %s\n",
                static_cast<long long>(progress.step), progress.best,
                session.path("best.safetensors").c_str(),
                session.path("last.safetensors").c_str(), session.path("log.csv").c_str(),
                session.path("curves.svg").c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // --quick changes the other flags' defaults, so it is looked for before they are defined
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0 || std::strcmp(argv[i], "--quick=true") == 0) {
            quick = true;
        }
    }
    examples::Flags flags;
    flags_define(flags, quick);
    return examples::program_main("nuclei_train", kUsage, flags, argc, argv,
                                  [](const examples::Flags& f) {
                                      Options o = options_read(f);
                                      unetpp::log_set_level(unetpp::LogLevel::warn);
                                      return run(o);
                                  });
}
