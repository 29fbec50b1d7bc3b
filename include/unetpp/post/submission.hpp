#pragma once
// The competition's submission CSV: write predicted label maps, read them back.
//
// Format: the header line `ImageId,EncodedPixels`, then one row per predicted object,
// `<image id>,<run-length encoding>` (see rle.hpp). An image without objects gets one row with
// an empty encoding, as the competition expected, so every image appears in the file.
// Files are written to `<path>.tmp` and renamed over `path`, so a reader never sees half a file.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/post/rle.hpp"

namespace unetpp {

// One CSV row: an object of an image, or the empty-encoding row of an image without objects.
struct SubmissionRow {
    std::string image_id;
    std::string encoded_pixels;
};

// Height and width of an image, to decode its rows.
struct ImageSize {
    int64_t height = 0;
    int64_t width = 0;
};

namespace detail {

inline void submission_id_check(const std::string& id) {
    if (id.empty() || id.find_first_of(",\r\n\"") != std::string::npos) {
        throw Error(concat("submission: image id \"", id,
                           "\" is empty or contains a comma, quote or line break"));
    }
}

}  // namespace detail

// The rows for one image: one per distinct nonzero label in increasing label order, or one
// row with an empty encoding when there are none. Throws Error on a malformed image id.
inline std::vector<SubmissionRow> submission_rows(const std::string& image_id,
                                                  const LabelMap& labels) {
    detail::submission_id_check(image_id);
    std::vector<int32_t> present(labels.labels);
    std::sort(present.begin(), present.end());
    present.erase(std::unique(present.begin(), present.end()), present.end());

    std::vector<SubmissionRow> rows;
    for (int32_t v : present) {
        if (v != 0) rows.push_back({image_id, rle_encode_label(labels, v)});
    }
    if (rows.empty()) rows.push_back({image_id, ""});
    return rows;
}

// Writes the header and `rows` to `path` atomically (temporary file, then rename).
// Throws IoError naming the path when a file cannot be written or renamed.
inline void submission_write(const std::string& path, const std::vector<SubmissionRow>& rows) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) {
            throw IoError(detail::concat("submission_write: cannot open \"", tmp,
                                         "\" for writing (does the folder exist?)"));
        }
        out << "ImageId,EncodedPixels\n";
        for (const SubmissionRow& r : rows) {
            detail::submission_id_check(r.image_id);
            out << r.image_id << ',' << r.encoded_pixels << '\n';
        }
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            throw IoError(detail::concat("submission_write: writing \"", tmp, "\" failed"));
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw IoError(detail::concat("submission_write: cannot rename \"", tmp, "\" to \"", path,
                                     "\""));
    }
}

// Reads a submission CSV into one LabelMap per image: the objects of an image get labels 1, 2,
// ... in the order of their rows. Every id in `sizes` gets a map (empty when the file has no
// rows for it). Throws IoError naming the line number and value for: a missing or wrong header,
// a line without a comma, an id not in `sizes`, a malformed encoding (see rle_parse), a row with
// an empty encoding for an image that also has objects, and objects that overlap. Windows line
// ends are accepted; blank lines are accepted only at the end of the file.
inline std::map<std::string, LabelMap> submission_read(
    const std::string& path, const std::map<std::string, ImageSize>& sizes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw IoError(detail::concat("submission_read: cannot open \"", path, "\""));
    }
    std::map<std::string, LabelMap> images;
    for (const auto& kv : sizes) images[kv.first] = LabelMap(kv.second.height, kv.second.width);
    std::map<std::string, int32_t> objects;  // objects decoded so far, per image
    std::map<std::string, bool> empty_row;   // image had an empty-encoding row

    std::string line;
    int64_t number = 0, blank_since = 0;
    auto where = [&]() { return detail::concat("submission_read: \"", path, "\" line ", number); };
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();

        // 1. header and blank lines
        if (number == 1) {
            if (line != "ImageId,EncodedPixels") {
                throw IoError(detail::concat(where(), ": header is \"", line,
                                             "\", expected \"ImageId,EncodedPixels\""));
            }
            continue;
        }
        if (line.empty()) {
            if (blank_since == 0) blank_since = number;
            continue;
        }
        if (blank_since != 0) {
            throw IoError(detail::concat(where(), ": row after the blank line ", blank_since));
        }

        // 2. split the row and find its image
        size_t comma = line.find(',');
        if (comma == std::string::npos) {
            throw IoError(detail::concat(where(), ": \"", line, "\" has no comma"));
        }
        std::string id = line.substr(0, comma), text = line.substr(comma + 1);
        auto it = images.find(id);
        if (it == images.end()) {
            throw IoError(detail::concat(where(), ": image id \"", id,
                                         "\" is not among the ", sizes.size(), " known images"));
        }
        LabelMap& labels = it->second;

        // 3. decode the object into the image's map
        std::vector<RleRun> runs;
        try {
            runs = rle_parse(text, labels.height, labels.width);
        } catch (const Error& e) {
            throw IoError(detail::concat(where(), " (image ", id, "): ", e.what()));
        }
        if (runs.empty()) empty_row[id] = true;
        if (!runs.empty()) {
            int32_t label = ++objects[id];
            int64_t overlap = rle_paint(runs, label, labels);
            if (overlap != 0) {
                throw IoError(detail::concat(where(), " (image ", id, "): object ", label,
                                             " overlaps earlier objects in ", overlap,
                                             " pixels; predicted masks must not overlap"));
            }
        }
        if (empty_row[id] && objects[id] > 0) {
            throw IoError(detail::concat(where(), " (image ", id, "): the image has both an ",
                                         "empty-encoding row and objects"));
        }
    }
    if (number == 0) {
        throw IoError(detail::concat("submission_read: \"", path, "\" is empty (no header)"));
    }
    return images;
}

}  // namespace unetpp
