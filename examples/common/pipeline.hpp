#pragma once
// What the nucleus programs share, written once: the model's input preparation, whole-image
// (tiled) prediction, segmentation into nuclei, model files, id lists and scoring summaries.
//
// The model contract (docs/pipeline.md):
//   input   {1, 1, H, W}: image_normalize of the raw image (gray, nuclei bright on dark, [0, 1])
//   output  {1, 2, H, W} logits: channel 0 nucleus, channel 1 nucleus contour (targets "mask"
//           and "contour", contour width 1), turned into nuclei by postprocess_probs.
// nuclei_train validates with predict_probabilities + segment_nuclei on whole images, and
// nuclei_predict runs exactly the same two functions, so a validation score is what the
// predictions of the same model would score.

#include <unetpp/checkpoint.hpp>
#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/data/image_kind.hpp>
#include <unetpp/data/normalize.hpp>
#include <unetpp/data/split.hpp>
#include <unetpp/error.hpp>
#include <unetpp/label_map.hpp>
#include <unetpp/model/unet.hpp>
#include <unetpp/parallel.hpp>
#include <unetpp/post/metric.hpp>
#include <unetpp/post/postprocess.hpp>
#include <unetpp/tensor.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace examples {

using Net = unetpp::UNet<float>;

// Output channels of a nucleus model.
constexpr int64_t kNucleusChannel = 0;
constexpr int64_t kContourChannel = 1;
constexpr int64_t kNucleiOutputs = 2;
// Metadata that marks a checkpoint as a nucleus model with this input contract.
constexpr const char* kInputKey = "nuclei.input";
constexpr const char* kInputValue = "image_normalize gray v1";
// Optional metadata: the post-processing thresholds chosen by nuclei_tune.
constexpr const char* kPostprocessKey = "nuclei.postprocess";

// ---------------------------------------------------------------------------------------------
// Model input

// A raw image made ready for the model: its kind and its normalised {1, H, W} gray input.
struct PreparedImage {
    unetpp::ImageKind kind = unetpp::ImageKind::fluorescence;
    unetpp::Tensor<float> input;
};

// Classifies and normalises a raw {C, H, W} image in [0, 1] (data/normalize.hpp), the one
// preparation used for training, validation and prediction.
inline PreparedImage prepare_input(const unetpp::Tensor<float>& raw) {
    PreparedImage p;
    p.kind = unetpp::image_kind_classify(raw);
    p.input = unetpp::image_normalize(raw, p.kind);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Whole-image prediction

struct PredictSpec {
    int64_t tile = 512;    // images with a side above this are predicted in tiles of this side
    int64_t overlap = 64;  // tiles overlap by at least this much and blend linearly across it
    bool tta = false;      // average over the 4 flips (none, horizontal, vertical, both)
};

namespace detail {

// Start offsets of tiles of side `tile` covering [0, length), spread evenly so that neighbours
// overlap by at least `overlap`; one tile (of side `length`) when the axis fits in one.
inline std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t overlap) {
    if (length <= tile) return {0};
    const int64_t stride = tile - overlap;
    const int64_t count = std::max<int64_t>(2, (length - overlap + stride - 1) / stride);
    std::vector<int64_t> starts;
    for (int64_t k = 0; k < count; ++k) starts.push_back(k * (length - tile) / (count - 1));
    return starts;
}

// Blend weight of position i of a tile of side `side`: ramps up over `overlap` pixels on a side
// that has a neighbouring tile (ramp_lo / ramp_hi), 1 elsewhere; always > 0.
inline float tile_weight(int64_t i, int64_t side, bool ramp_lo, bool ramp_hi, int64_t overlap) {
    float w = 1.0f;
    if (ramp_lo) w = std::min(w, (float(i) + 0.5f) / float(overlap));
    if (ramp_hi) w = std::min(w, (float(side - i) - 0.5f) / float(overlap));
    return w;
}

// out[c, y, x] = in[c, flip_v ? H-1-y : y, flip_h ? W-1-x : x] for a {C, H, W} tensor.
inline unetpp::Tensor<float> flip_image(const unetpp::Tensor<float>& in, bool flip_v,
                                        bool flip_h) {
    const int64_t C = in.dim(0), H = in.dim(1), W = in.dim(2);
    unetpp::Tensor<float> out(in.shape());
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t y = 0; y < H; ++y) {
            const float* src = in.data() + (c * H + (flip_v ? H - 1 - y : y)) * W;
            float* dst = out.data() + (c * H + y) * W;
            for (int64_t x = 0; x < W; ++x) dst[x] = src[flip_h ? W - 1 - x : x];
        }
    }
    return out;
}

// One pass of tiled prediction without flips; see predict_probabilities.
inline unetpp::Tensor<float> predict_tiled(Net& net, const unetpp::Tensor<float>& input,
                                           const PredictSpec& spec) {
    const int64_t H = input.dim(1), W = input.dim(2), K = net.config().out_channels;

    // 1. a single forward when the image fits in one tile (the model pads it itself)
    if (H <= spec.tile && W <= spec.tile) {
        unetpp::ConstTensorView<float> x(input.data(), unetpp::Shape{1, 1, H, W});
        const unetpp::Tensor<float>& p = net.predict_probabilities(x);
        unetpp::Tensor<float> out({K, H, W});
        std::copy(p.begin(), p.end(), out.begin());
        return out;
    }

    // 2. overlapping tiles, each weighted by its blend ramps, then divided by the weight sum
    const int64_t th = std::min(H, spec.tile), tw = std::min(W, spec.tile);
    const std::vector<int64_t> ys = tile_starts(H, spec.tile, spec.overlap);
    const std::vector<int64_t> xs = tile_starts(W, spec.tile, spec.overlap);
    unetpp::Tensor<float> sum({K, H, W}), weight({1, H, W}), tile({1, 1, th, tw});
    sum.zero();
    weight.zero();
    for (size_t a = 0; a < ys.size(); ++a) {
        for (size_t b = 0; b < xs.size(); ++b) {
            const int64_t y0 = ys[a], x0 = xs[b];
            for (int64_t y = 0; y < th; ++y) {
                std::copy_n(input.data() + (y0 + y) * W + x0, tw, tile.data() + y * tw);
            }
            const unetpp::Tensor<float>& p = net.predict_probabilities(tile.view());
            for (int64_t y = 0; y < th; ++y) {
                const float wy = tile_weight(y, th, a > 0, a + 1 < ys.size(), spec.overlap);
                for (int64_t x = 0; x < tw; ++x) {
                    const float w = wy * tile_weight(x, tw, b > 0, b + 1 < xs.size(),
                                                     spec.overlap);
                    weight[(y0 + y) * W + x0 + x] += w;
                    for (int64_t k = 0; k < K; ++k) {
                        sum[(k * H + y0 + y) * W + x0 + x] += w * p[(k * th + y) * tw + x];
                    }
                }
            }
        }
    }
    for (int64_t k = 0; k < K; ++k) {
        for (int64_t q = 0; q < H * W; ++q) sum[k * H * W + q] /= weight[q];
    }
    return sum;
}

}  // namespace detail

// Per-pixel probabilities {K, H, W} (K = the model's out_channels) of a prepared {1, H, W}
// input of any size: one forward when it fits in spec.tile, else overlapping tiles blended
// linearly; with spec.tta, the mean over the four flips. Requires 0 <= overlap < tile.
inline unetpp::Tensor<float> predict_probabilities(Net& net, const unetpp::Tensor<float>& input,
                                                   const PredictSpec& spec) {
    if (input.rank() != 3 || input.dim(0) != 1) {
        throw unetpp::ShapeError(unetpp::detail::concat(
            "predict_probabilities: expected a prepared {1, H, W} input, got ",
            input.shape().str()));
    }
    if (spec.tile < 16 || spec.overlap < 0 || spec.overlap >= spec.tile) {
        throw unetpp::Error(unetpp::detail::concat("predict_probabilities: tile ", spec.tile,
                                                   " and overlap ", spec.overlap,
                                                   " need tile >= 16 and 0 <= overlap < tile"));
    }
    if (!spec.tta) return detail::predict_tiled(net, input, spec);
    unetpp::Tensor<float> mean;
    for (int f = 0; f < 4; ++f) {
        const bool v = f & 1, h = f & 2;
        unetpp::Tensor<float> p =
            detail::flip_image(detail::predict_tiled(net, detail::flip_image(input, v, h), spec),
                               v, h);
        if (f == 0) {
            mean = std::move(p);
        } else {
            for (int64_t i = 0; i < mean.numel(); ++i) mean[i] += p[i];
        }
    }
    for (float& m : mean) m *= 0.25f;
    return mean;
}

// The post-processing of a model without tuned thresholds (post/postprocess.hpp defaults:
// nucleus channel 0, contour channel 1). nuclei_tune stores tuned ones in the model file.
inline unetpp::PostprocessConfig nuclei_postprocess_config() { return unetpp::PostprocessConfig{}; }

// Post-processing per image kind. nuclei_tune tunes a kind on its own where the validation
// split holds enough images of it (metadata "nuclei.postprocess.<kind>"); the other kinds use
// the overall config ("nuclei.postprocess"). Built from one config, every kind uses that one.
struct KindPostprocess {
    unetpp::PostprocessConfig overall;
    std::array<unetpp::PostprocessConfig, unetpp::kImageKindCount> by_kind;

    KindPostprocess(const unetpp::PostprocessConfig& all = nuclei_postprocess_config())
        : overall(all) {
        by_kind.fill(all);
    }
    const unetpp::PostprocessConfig& operator()(unetpp::ImageKind kind) const {
        return by_kind[size_t(kind)];
    }
};

// The metadata key of one kind's own post-processing.
inline std::string kind_postprocess_key(unetpp::ImageKind kind) {
    return std::string(kPostprocessKey) + "." + unetpp::image_kind_name(kind);
}

// The configs as text: one line when every kind uses the same, else a line per kind.
inline std::string kind_postprocess_text(const KindPostprocess& post) {
    const std::string first = unetpp::postprocess_config_to_string(post.by_kind[0]);
    bool same = true;
    for (const auto& c : post.by_kind) {
        same = same && unetpp::postprocess_config_to_string(c) == first;
    }
    if (same) return first;
    std::string text;
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        text += std::string("\n  ") + unetpp::image_kind_name(unetpp::ImageKind(k)) + ": " +
                unetpp::postprocess_config_to_string(post.by_kind[size_t(k)]);
    }
    return text;
}

// Separate, non-overlapping nuclei (labels 1..n) from {2, H, W} probabilities.
inline unetpp::LabelMap segment_nuclei(
    const unetpp::Tensor<float>& probabilities,
    const unetpp::PostprocessConfig& post = nuclei_postprocess_config()) {
    return unetpp::postprocess_probs(post, probabilities);
}

// ---------------------------------------------------------------------------------------------
// Model files

// The architecture of a nucleus model: 1 input channel, 2 outputs.
inline unetpp::UNetConfig nuclei_config(int64_t width, int64_t depth, bool batch_norm,
                                        uint64_t seed) {
    unetpp::UNetConfig c;
    c.in_channels = 1;
    c.out_channels = kNucleiOutputs;
    c.base_width = width;
    c.depth = depth;
    c.batch_norm = batch_norm;
    c.seed = seed;
    c.validate();
    return c;
}

// The metadata every nucleus checkpoint carries.
inline std::map<std::string, std::string> model_metadata(const Net& net) {
    return {{"unetpp.config", net.config().to_string()},
            {kInputKey, kInputValue},
            {"nuclei.outputs", "nucleus,contour"}};
}

// A nucleus model read from a checkpoint written by nuclei_train (best.safetensors, or
// last.safetensors) or nuclei_tune. Throws IoError naming the file when it is missing, is not a
// nucleus model or does not match its stored architecture. `ckpt_out`, when given, receives
// the checkpoint; `post_out` the model's tuned post-processing per kind, or the defaults
// without one.
inline std::unique_ptr<Net> model_load(const std::string& path,
                                       unetpp::Checkpoint* ckpt_out = nullptr,
                                       KindPostprocess* post_out = nullptr) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw unetpp::IoError("no model file \"" + path + "\": train one with nuclei_train "
                              "(see docs/pipeline.md) and pass it with --model FILE");
    }
    unetpp::Checkpoint ckpt = unetpp::checkpoint_read(path);
    auto config_it = ckpt.metadata.find("unetpp.config");
    auto input_it = ckpt.metadata.find(kInputKey);
    if (config_it == ckpt.metadata.end() || input_it == ckpt.metadata.end() ||
        input_it->second != kInputValue) {
        throw unetpp::IoError("\"" + path + "\" is not a nucleus model of this version (needs "
                              "metadata unetpp.config and " + kInputKey + " = \"" + kInputValue +
                              "\"; write it with nuclei_train)");
    }
    const unetpp::UNetConfig config = unetpp::UNetConfig::parse(config_it->second);
    if (config.in_channels != 1 || config.out_channels != kNucleiOutputs) {
        throw unetpp::IoError(unetpp::detail::concat("\"", path, "\": the model has ",
                                                     config.in_channels, " input and ",
                                                     config.out_channels, " output channels, a ",
                                                     "nucleus model has 1 and 2"));
    }
    auto parse = [&](const std::string& key, const unetpp::PostprocessConfig& base) {
        auto it = ckpt.metadata.find(key);
        if (it == ckpt.metadata.end()) return base;
        try {
            return unetpp::postprocess_config_parse(it->second, base);
        } catch (const unetpp::Error& e) {
            throw unetpp::IoError("\"" + path + "\": bad " + key + ": " + e.what());
        }
    };
    const unetpp::PostprocessConfig overall = parse(kPostprocessKey, nuclei_postprocess_config());
    KindPostprocess post(overall);
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        post.by_kind[size_t(k)] = parse(kind_postprocess_key(unetpp::ImageKind(k)), overall);
    }
    auto net = std::make_unique<Net>(config);
    unetpp::checkpoint_load_parameters(ckpt, net->parameters(), config.to_string());
    if (post_out != nullptr) *post_out = post;
    if (ckpt_out != nullptr) *ckpt_out = std::move(ckpt);
    return net;
}

// ---------------------------------------------------------------------------------------------
// Id lists

// Ids from "a,b,c" or "@FILE" (one id per line, blank lines and # comments ignored).
inline std::vector<std::string> ids_parse(const std::string& text) {
    std::vector<std::string> ids;
    auto add = [&](std::string id) {
        id.erase(0, id.find_first_not_of(" \t\r"));
        id.erase(id.find_last_not_of(" \t\r") + 1);
        if (!id.empty() && id[0] != '#') ids.push_back(id);
    };
    if (!text.empty() && text[0] == '@') {
        std::ifstream in(text.substr(1));
        if (!in) throw unetpp::IoError("cannot read the id list \"" + text.substr(1) + "\"");
        for (std::string line; std::getline(in, line);) add(line);
    } else {
        std::stringstream in(text);
        for (std::string item; std::getline(in, item, ',');) add(item);
    }
    if (ids.empty()) throw unetpp::Error("the id list \"" + text + "\" holds no id");
    return ids;
}

// Writes one id per line.
inline void ids_write(const std::string& path, const std::vector<std::string>& ids) {
    std::ofstream out(path);
    for (const std::string& id : ids) out << id << '\n';
    if (!out) throw unetpp::IoError("cannot write the id list \"" + path + "\"");
}

// Keeps the ids of `all` that are in `wanted`, in `wanted`'s order; throws naming the first id
// of `wanted` that `all` lacks.
inline std::vector<std::string> ids_select(const std::vector<std::string>& all,
                                           const std::vector<std::string>& wanted,
                                           const std::string& where) {
    for (const std::string& id : wanted) {
        if (!std::binary_search(all.begin(), all.end(), id)) {
            throw unetpp::Error("id \"" + id + "\" is not a sample of " + where);
        }
    }
    return wanted;
}

// At most `count` of `ids` (sorted), spread evenly over the list so a subset keeps a mix.
inline std::vector<std::string> ids_subset(const std::vector<std::string>& ids, int64_t count) {
    if (count <= 0 || count >= int64_t(ids.size())) return ids;
    std::vector<std::string> out;
    for (int64_t i = 0; i < count; ++i) out.push_back(ids[size_t(i * int64_t(ids.size()) / count)]);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Scores

// One scored image.
struct ScoredImage {
    std::string id;
    unetpp::ImageKind kind = unetpp::ImageKind::fluorescence;
    unetpp::ImageScore score;
};

// Mean score overall and per kind; a kind without images has count 0 and mean NaN.
struct ScoreSummary {
    double overall = std::nan("");
    std::array<double, unetpp::kImageKindCount> by_kind{};
    std::array<int64_t, unetpp::kImageKindCount> count{};
};

inline ScoreSummary score_summary(const std::vector<ScoredImage>& images) {
    ScoreSummary s;
    std::array<double, unetpp::kImageKindCount> sum{};
    double total = 0;
    for (const ScoredImage& im : images) {
        sum[size_t(im.kind)] += im.score.score;
        ++s.count[size_t(im.kind)];
        total += im.score.score;
    }
    if (!images.empty()) s.overall = total / double(images.size());
    for (size_t k = 0; k < s.by_kind.size(); ++k) {
        s.by_kind[k] = s.count[k] > 0 ? sum[k] / double(s.count[k]) : std::nan("");
    }
    return s;
}

// "0.512 (fluorescence 0.601 n=54, brightfield 0.301 n=2, he 0.288 n=11)"
inline std::string score_summary_text(const ScoreSummary& s) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.4f (", s.overall);
    std::string text = buf;
    for (int k = 0; k < unetpp::kImageKindCount; ++k) {
        std::snprintf(buf, sizeof buf, "%s%s %.4f n=%lld", k ? ", " : "",
                      unetpp::image_kind_name(unetpp::ImageKind(k)), s.by_kind[size_t(k)],
                      static_cast<long long>(s.count[size_t(k)]));
        text += buf;
    }
    return text + ")";
}

// Writes one row per image: id, kind, object counts, score and the precision at each threshold.
inline void scores_write_csv(const std::string& path, const std::vector<ScoredImage>& images) {
    std::ofstream out(path);
    out << "image_id,kind,true_objects,predicted_objects,score";
    for (int k = unetpp::kMetricFirstTwentieth; k <= unetpp::kMetricLastTwentieth; ++k) {
        char name[16];
        std::snprintf(name, sizeof name, ",p%.2f", k / 20.0);
        out << name;
    }
    out << '\n';
    char buf[32];
    for (const ScoredImage& im : images) {
        out << im.id << ',' << unetpp::image_kind_name(im.kind) << ',' << im.score.true_objects
            << ',' << im.score.predicted_objects;
        std::snprintf(buf, sizeof buf, ",%.5f", im.score.score);
        out << buf;
        for (const unetpp::ThresholdCounts& t : im.score.thresholds) {
            std::snprintf(buf, sizeof buf, ",%.5f", t.precision);
            out << buf;
        }
        out << '\n';
    }
    if (!out) throw unetpp::IoError("cannot write scores to \"" + path + "\"");
}

// ---------------------------------------------------------------------------------------------
// Labelled images (validation and scoring)

// A training-stage sample ready for validation: its kind, model input and true nuclei.
struct LabelledImage {
    std::string id;
    unetpp::ImageKind kind = unetpp::ImageKind::fluorescence;
    unetpp::Tensor<float> input;  // {1, H, W}, prepare_input
    unetpp::LabelMap labels;
};

// Loads samples `ids` of `stage_dir` with their masks, one per parallel_for iteration. Throws
// IoError naming a sample without masks (a test-stage folder given where stage1_train belongs).
inline std::vector<LabelledImage> labelled_load(const std::string& stage_dir,
                                                const std::vector<std::string>& ids) {
    std::vector<LabelledImage> out(ids.size());
    unetpp::parallel_for(0, int64_t(ids.size()), [&](int64_t i) {
        unetpp::DsbSample s = unetpp::dsb_load_sample(stage_dir, ids[size_t(i)]);
        if (!s.has_labels) {
            throw unetpp::IoError("sample \"" + s.id + "\" of \"" + stage_dir + "\" has no " +
                                  "masks/ folder: give a training stage (stage1_train)");
        }
        PreparedImage p = prepare_input(s.image);
        out[size_t(i)] = LabelledImage{s.id, p.kind, std::move(p.input), std::move(s.labels)};
    });
    return out;
}

// Predicts, segments and scores every image with the competition metric, in order.
inline std::vector<ScoredImage> evaluate(
    Net& net, const std::vector<LabelledImage>& images, const PredictSpec& spec,
    const KindPostprocess& post = KindPostprocess()) {
    std::vector<ScoredImage> scores;
    for (const LabelledImage& im : images) {
        unetpp::LabelMap found =
            segment_nuclei(predict_probabilities(net, im.input, spec), post(im.kind));
        scores.push_back(ScoredImage{im.id, im.kind, unetpp::metric_image(im.labels, found)});
    }
    return scores;
}

}  // namespace examples
