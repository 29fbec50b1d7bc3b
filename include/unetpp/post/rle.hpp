#pragma once
// Run-length encoding of object masks in the format of the 2018 Data Science Bowl.
//
// A mask is written as space-separated "start length" pairs. Pixels are numbered from 1 in
// column-major order: down the first column, then down the second, and so on, so pixel (y, x)
// of an H x W image has number x * H + y + 1. Runs appear in increasing order of start.
// Example, a 3x3 mask (rows top to bottom):
//   1 1 0
//   0 1 0          numbers:  1 4 7      encoding: "1 1 4 2 9 1"
//   0 0 1                    2 5 8
//                            3 6 9
//
// Masks are LabelMaps: rle_encode_label encodes the pixels equal to one label, rle_encode_mask
// the nonzero pixels. Decoding validates every token and names the offending value.

#include <cstdint>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"

namespace unetpp {

// One run: `length` consecutive pixels starting at pixel number `start` (1-indexed, column-major).
struct RleRun {
    int64_t start = 0;
    int64_t length = 0;
};

namespace detail {

// Runs of the pixels for which keep(label) holds, in column-major order.
template <class Keep>
std::vector<RleRun> rle_runs(const LabelMap& labels, Keep keep) {
    std::vector<RleRun> runs;
    int64_t h = labels.height;
    bool open = false;
    for (int64_t x = 0; x < labels.width; ++x) {
        for (int64_t y = 0; y < h; ++y) {
            bool on = keep(labels.at(y, x));
            if (on && open) {
                ++runs.back().length;
            } else if (on) {
                runs.push_back({x * h + y + 1, 1});
            }
            open = on;
        }
    }
    return runs;
}

inline std::string rle_format(const std::vector<RleRun>& runs) {
    std::string out;
    for (const RleRun& r : runs) {
        if (!out.empty()) out += ' ';
        out += std::to_string(r.start);
        out += ' ';
        out += std::to_string(r.length);
    }
    return out;
}

// Parses a non-negative decimal integer token; throws Error naming the token otherwise.
inline int64_t rle_parse_int(const std::string& token) {
    constexpr int64_t kLimit = int64_t(1) << 53;
    if (token.empty()) {
        throw Error("rle_decode: empty token where a number was expected");
    }
    int64_t value = 0;
    for (char c : token) {
        if (c < '0' || c > '9') {
            throw Error(concat("rle_decode: token \"", token, "\" is not a non-negative integer"));
        }
        value = value * 10 + (c - '0');
        if (value > kLimit) {
            throw Error(concat("rle_decode: number \"", token, "\" is too large"));
        }
    }
    return value;
}

}  // namespace detail

// Runs of the pixels whose label equals `label` (label > 0), in increasing order of start.
inline std::vector<RleRun> rle_runs_label(const LabelMap& labels, int32_t label) {
    return detail::rle_runs(labels, [label](int32_t v) { return v == label; });
}

// "start length ..." for the pixels whose label equals `label`; "" when there are none.
inline std::string rle_encode_label(const LabelMap& labels, int32_t label) {
    return detail::rle_format(rle_runs_label(labels, label));
}

// "start length ..." for the nonzero pixels of `mask`; "" when there are none.
inline std::string rle_encode_mask(const LabelMap& mask) {
    return detail::rle_format(detail::rle_runs(mask, [](int32_t v) { return v != 0; }));
}

// Parses and validates an encoding for an image of height x width pixels.
// Requires: tokens separated by spaces or tabs (leading/trailing blanks allowed), an even
// number of them, every start >= 1 and length >= 1, each run inside the image
// (start + length - 1 <= height * width), and every run starting after the previous one ends
// (runs may touch, never overlap or go backwards). Throws Error naming the bad value otherwise.
inline std::vector<RleRun> rle_parse(const std::string& text, int64_t height, int64_t width) {
    // 1. split into tokens
    std::vector<std::string> tokens;
    std::string current;
    for (char c : text) {
        if (c == ' ' || c == '\t') {
            if (!current.empty()) tokens.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) tokens.push_back(current);
    if (tokens.size() % 2 != 0) {
        throw Error(detail::concat("rle_decode: odd number of values (", tokens.size(),
                                   "); expected \"start length\" pairs, the last is \"",
                                   tokens.back(), "\""));
    }

    // 2. check each run against the image and the previous run
    const int64_t pixels = height * width;
    std::vector<RleRun> runs;
    int64_t previous_end = 0;  // last pixel number covered so far
    for (size_t i = 0; i < tokens.size(); i += 2) {
        RleRun r{detail::rle_parse_int(tokens[i]), detail::rle_parse_int(tokens[i + 1])};
        if (r.start < 1) {
            throw Error(detail::concat("rle_decode: start \"", tokens[i],
                                       "\" is below 1 (pixel numbers are 1-indexed)"));
        }
        if (r.length < 1) {
            throw Error(detail::concat("rle_decode: run at start ", r.start, " has length \"",
                                       tokens[i + 1], "\", expected at least 1"));
        }
        if (r.start + r.length - 1 > pixels) {
            throw Error(detail::concat("rle_decode: run \"", tokens[i], " ", tokens[i + 1],
                                       "\" ends at pixel ", r.start + r.length - 1,
                                       ", past the last pixel ", pixels, " of a ", height, "x",
                                       width, " image"));
        }
        if (r.start <= previous_end) {
            throw Error(detail::concat("rle_decode: run start ", r.start,
                                       " is not after the previous run's end ", previous_end,
                                       " (runs must be increasing and not overlap)"));
        }
        previous_end = r.start + r.length - 1;
        runs.push_back(r);
    }
    return runs;
}

// Writes `value` into every pixel of `runs` in `labels`. Requires runs inside the image
// (as rle_parse guarantees). Returns the number of pixels that already held a nonzero label,
// which a caller decoding several objects into one map uses to detect overlaps.
inline int64_t rle_paint(const std::vector<RleRun>& runs, int32_t value, LabelMap& labels) {
    int64_t overlapped = 0;
    for (const RleRun& r : runs) {
        for (int64_t p = r.start - 1; p < r.start - 1 + r.length; ++p) {
            int64_t x = p / labels.height;
            int64_t y = p % labels.height;
            int32_t& dst = labels.at(y, x);
            if (dst != 0) ++overlapped;
            dst = value;
        }
    }
    return overlapped;
}

// Decodes `text` into a height x width mask whose pixels are 1 on the object, 0 elsewhere.
// Throws Error (see rle_parse) on malformed input, ShapeError on a negative size.
inline LabelMap rle_decode(const std::string& text, int64_t height, int64_t width) {
    LabelMap mask(height, width);
    rle_paint(rle_parse(text, height, width), 1, mask);
    return mask;
}

}  // namespace unetpp
