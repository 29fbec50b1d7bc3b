#pragma once
// The 2018 Data Science Bowl layout: listing sample ids and loading an image with its nuclei.
//
// A stage folder holds one folder per sample:
//   <stage>/<id>/images/<id>.png   the image (RGBA PNG in the competition data)
//   <stage>/<id>/masks/*.png       one binary PNG per nucleus, same size as the image
// Test stages have no masks/ folder. Loading builds an instance LabelMap: mask files are sorted
// by file name and the i-th (from 1) paints label i. Masks should not overlap, but in the
// corrected stage1_train 6 images have 1 or 2 pixels claimed by two masks. By default
// (DsbOverlap::keep_first) the earlier mask keeps such a pixel, the sample counts it in
// overlap_pixels and an info line is logged; DsbOverlap::error throws naming both files.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/image_io.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/log.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// What to do when two masks of one sample claim the same pixel.
enum class DsbOverlap {
    error,       // throw IoError naming both mask files and the pixel
    keep_first,  // the mask earlier in file-name order keeps it; counted in overlap_pixels
};

struct DsbLoadOptions {
    ImageChannels channels = ImageChannels::rgb;  // the competition images are RGBA; drop alpha
    bool masks = true;  // false: image only (also what a sample without masks/ gives)
    DsbOverlap overlap = DsbOverlap::keep_first;
};

// One loaded sample.
struct DsbSample {
    std::string id;
    Tensor<float> image;   // {C, H, W} in [0, 1]
    LabelMap labels;       // H x W, 0 background, 1..n nuclei; empty (0x0) when has_labels false
    bool has_labels = false;
    int64_t mask_count = 0;      // number of mask files read
    int64_t overlap_pixels = 0;  // pixels lost to an earlier mask (keep_first only)
};

namespace detail {
inline std::vector<std::string> dsb_sorted_entries(const std::filesystem::path& dir,
                                                   bool directories, const std::string& ext) {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
        bool is_dir = it->is_directory(ec);
        if (directories != is_dir) continue;
        std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') continue;
        if (!ext.empty() && it->path().extension() != ext) continue;
        names.push_back(name);
    }
    if (ec) {
        throw IoError(concat("dsb: cannot list \"", dir.string(), "\": ", ec.message()));
    }
    std::sort(names.begin(), names.end());
    return names;
}
}  // namespace detail

// The sample ids of a stage folder (its subfolders that contain images/<id>.png), sorted.
// Throws IoError when the folder is missing, or holds no sample at all.
inline std::vector<std::string> dsb_list_ids(const std::string& stage_dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(stage_dir, ec)) {
        throw IoError(detail::concat("dsb_list_ids: \"", stage_dir, "\" is not a folder ",
                                     "(expected a stage folder such as dsb2018/stage1_train)"));
    }
    std::vector<std::string> ids;
    for (const auto& name : detail::dsb_sorted_entries(stage_dir, true, "")) {
        auto image = std::filesystem::path(stage_dir) / name / "images" / (name + ".png");
        if (std::filesystem::is_regular_file(image, ec)) ids.push_back(name);
    }
    if (ids.empty()) {
        throw IoError(detail::concat("dsb_list_ids: \"", stage_dir, "\" holds no sample (no ",
                                     "<id>/images/<id>.png below it)"));
    }
    return ids;
}

// The mask files of a sample, sorted by file name; empty when it has no masks/ folder.
inline std::vector<std::string> dsb_mask_paths(const std::string& stage_dir,
                                               const std::string& id) {
    auto dir = std::filesystem::path(stage_dir) / id / "masks";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return {};
    std::vector<std::string> paths;
    for (const auto& name : detail::dsb_sorted_entries(dir, false, ".png")) {
        paths.push_back((dir / name).string());
    }
    return paths;
}

// Loads sample `id` of `stage_dir`. With options.masks, a sample with a masks/ folder gets its
// label map (has_labels true); a sample without one loads as image only.
// Throws IoError naming the file for: a missing images/<id>.png, an unreadable PNG, a masks/
// folder without any PNG, a mask whose size differs from the image, and (DsbOverlap::error)
// overlapping masks.
inline DsbSample dsb_load_sample(const std::string& stage_dir, const std::string& id,
                                 const DsbLoadOptions& options = {}) {
    namespace fs = std::filesystem;
    DsbSample sample;
    sample.id = id;
    auto image_path = (fs::path(stage_dir) / id / "images" / (id + ".png")).string();
    sample.image = image_read(image_path, options.channels);
    if (!options.masks) return sample;

    // 1. find the masks; a test-stage sample has none
    auto mask_dir = fs::path(stage_dir) / id / "masks";
    std::error_code ec;
    if (!fs::is_directory(mask_dir, ec)) return sample;
    std::vector<std::string> paths = dsb_mask_paths(stage_dir, id);
    if (paths.empty()) {
        throw IoError(detail::concat("dsb_load_sample: \"", mask_dir.string(),
                                     "\" holds no mask PNG (remove the empty folder, or load ",
                                     "with DsbLoadOptions::masks = false)"));
    }

    // 2. paint label i for mask i, checking sizes and overlaps
    int64_t h = sample.image.dim(1), w = sample.image.dim(2);
    sample.labels = LabelMap(h, w);
    for (size_t i = 0; i < paths.size(); ++i) {
        BinaryImage mask = mask_read(paths[i]);
        if (mask.height != h || mask.width != w) {
            throw IoError(detail::concat("dsb_load_sample: mask \"", paths[i], "\" is ",
                                         mask.height, "x", mask.width, ", its image \"",
                                         image_path, "\" is ", h, "x", w));
        }
        int32_t label = int32_t(i + 1);
        for (int64_t p = 0; p < h * w; ++p) {
            if (!mask.pixels[size_t(p)]) continue;
            int32_t& dst = sample.labels.labels[size_t(p)];
            if (dst == 0) {
                dst = label;
            } else if (options.overlap == DsbOverlap::keep_first) {
                ++sample.overlap_pixels;
            } else {
                throw IoError(detail::concat("dsb_load_sample: mask \"", paths[i],
                                             "\" overlaps mask \"", paths[size_t(dst - 1)],
                                             "\" at pixel (y=", p / w, ", x=", p % w,
                                             ") (load with DsbOverlap::keep_first to resolve)"));
            }
        }
    }
    if (sample.overlap_pixels > 0) {
        log_info("dsb_load_sample: ", id, ": ", sample.overlap_pixels,
                 " pixel(s) claimed by two masks went to the earlier mask");
    }
    sample.has_labels = true;
    sample.mask_count = int64_t(paths.size());
    return sample;
}

// Loads the given samples in parallel (one sample per parallel_for iteration), in the order of
// `ids`. The first error is rethrown.
inline std::vector<DsbSample> dsb_load_samples(const std::string& stage_dir,
                                               const std::vector<std::string>& ids,
                                               const DsbLoadOptions& options = {}) {
    std::vector<DsbSample> samples(ids.size());
    parallel_for(0, int64_t(ids.size()), [&](int64_t i) {
        samples[size_t(i)] = dsb_load_sample(stage_dir, ids[size_t(i)], options);
    });
    return samples;
}

}  // namespace unetpp
