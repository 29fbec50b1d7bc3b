#pragma once
// Connected-component labelling of binary masks, and consecutive relabelling of label maps.
//
// A mask is a LabelMap read as binary: nonzero pixels are foreground. Components are numbered
// 1..n in raster order (row by row, left to right) of their first pixel, so the result is fully
// determined by the mask and the connectivity.

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "unetpp/label_map.hpp"

namespace unetpp {

// Which neighbours join two foreground pixels: the 4 edge neighbours, or also the 4 diagonals.
enum class Connectivity { Four, Eight };

namespace detail {

// Calls fn(ny, nx) for each in-image neighbour of (y, x) under `conn`, in a fixed order.
template <class Fn>
void for_each_neighbour(int64_t y, int64_t x, int64_t h, int64_t w, Connectivity conn, Fn&& fn) {
    static constexpr int kDy[8] = {-1, 0, 0, 1, -1, -1, 1, 1};
    static constexpr int kDx[8] = {0, -1, 1, 0, -1, 1, -1, 1};
    int count = conn == Connectivity::Four ? 4 : 8;
    for (int k = 0; k < count; ++k) {
        int64_t ny = y + kDy[k];
        int64_t nx = x + kDx[k];
        if (ny >= 0 && ny < h && nx >= 0 && nx < w) fn(ny, nx);
    }
}

}  // namespace detail

// Labels the connected components of the nonzero pixels of `mask`.
// Guarantees: background stays 0; components get 1..n in raster order of their first pixel.
inline LabelMap connected_components_label(const LabelMap& mask,
                                           Connectivity conn = Connectivity::Eight) {
    const int64_t h = mask.height, w = mask.width;
    LabelMap out(h, w);
    std::vector<int64_t> stack;
    int32_t next = 0;
    for (int64_t start = 0; start < mask.size(); ++start) {
        if (mask.labels[start] == 0 || out.labels[start] != 0) continue;
        // flood the new component with a depth-first stack
        out.labels[start] = ++next;
        stack.push_back(start);
        while (!stack.empty()) {
            int64_t p = stack.back();
            stack.pop_back();
            detail::for_each_neighbour(p / w, p % w, h, w, conn, [&](int64_t ny, int64_t nx) {
                int64_t q = ny * w + nx;
                if (mask.labels[q] != 0 && out.labels[q] == 0) {
                    out.labels[q] = next;
                    stack.push_back(q);
                }
            });
        }
    }
    return out;
}

// Renumbers the nonzero labels of `labels` to 1..n in raster order of each label's first pixel.
// Pixels that shared a label keep sharing one; background stays 0. Labels are not split, so a
// label present in two disconnected pieces stays one object.
inline LabelMap labels_relabel(const LabelMap& labels) {
    LabelMap out(labels.height, labels.width);
    std::unordered_map<int32_t, int32_t> renumber;
    for (int64_t p = 0; p < labels.size(); ++p) {
        int32_t v = labels.labels[p];
        if (v == 0) continue;
        auto it = renumber.find(v);
        if (it == renumber.end()) {
            it = renumber.emplace(v, static_cast<int32_t>(renumber.size()) + 1).first;
        }
        out.labels[p] = it->second;
    }
    return out;
}

// Number of distinct nonzero labels in `labels`.
inline int64_t labels_count(const LabelMap& labels) {
    std::vector<int32_t> seen(labels.labels);
    std::sort(seen.begin(), seen.end());
    int64_t count = 0;
    for (size_t i = 0; i < seen.size(); ++i) {
        if (seen[i] != 0 && (i == 0 || seen[i] != seen[i - 1])) ++count;
    }
    return count;
}

}  // namespace unetpp
