#pragma once
// A deterministic train / validation split by image id, stratified by image kind.
//
// Each id gets a 64-bit key, a hash of (seed, id): FNV-1a over the id's bytes, mixed with the
// seed through the splitmix64 finaliser. Within each kind, ids are ordered by key (ties by id)
// and the first n_val go to validation, where
//   n_val = round(fraction * n_kind), raised to 1 when the kind has at least 2 images,
//           and lowered to n_kind - 1 so a kind never leaves training entirely.
// A kind with a single image stays in training. The result depends only on the set of (id, kind)
// pairs, the fraction and the seed: not on the order in which ids are given.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "unetpp/data/image_kind.hpp"
#include "unetpp/error.hpp"

namespace unetpp {

struct Split {
    std::vector<std::string> train;       // sorted
    std::vector<std::string> validation;  // sorted
};

// The key that orders `id` for `seed`.
inline uint64_t split_key(const std::string& id, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
    for (unsigned char ch : id) {
        h ^= ch;
        h *= 0x100000001b3ULL;
    }
    uint64_t z = h ^ (seed + 0x9e3779b97f4a7c15ULL);  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Splits `ids` (with kinds[i] the kind of ids[i]) as the header comment says.
// Requires ids.size() == kinds.size(), unique ids and 0 <= validation_fraction < 1.
inline Split split_by_kind(const std::vector<std::string>& ids, const std::vector<ImageKind>& kinds,
                           double validation_fraction, uint64_t seed) {
    if (ids.size() != kinds.size()) {
        throw Error(detail::concat("split_by_kind: ", ids.size(), " ids but ", kinds.size(),
                                   " kinds; give one kind per id"));
    }
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
        throw Error(detail::concat("split_by_kind: validation_fraction must be in [0, 1), got ",
                                   validation_fraction));
    }
    Split split;
    for (int k = 0; k < kImageKindCount; ++k) {
        // 1. this kind's ids in key order
        std::vector<std::pair<uint64_t, std::string>> keyed;
        for (size_t i = 0; i < ids.size(); ++i) {
            if (int(kinds[i]) == k) keyed.emplace_back(split_key(ids[i], seed), ids[i]);
        }
        std::sort(keyed.begin(), keyed.end());
        for (size_t i = 1; i < keyed.size(); ++i) {
            if (keyed[i].second == keyed[i - 1].second) {
                throw Error(detail::concat("split_by_kind: id \"", keyed[i].second,
                                           "\" is given twice"));
            }
        }

        // 2. the first n_val to validation
        auto n = int64_t(keyed.size());
        auto n_val = int64_t(std::llround(validation_fraction * double(n)));
        if (n >= 2 && validation_fraction > 0.0) {
            n_val = std::min(n - 1, std::max<int64_t>(1, n_val));
        }
        if (n < 2) n_val = 0;
        for (int64_t i = 0; i < n; ++i) {
            (i < n_val ? split.validation : split.train).push_back(keyed[size_t(i)].second);
        }
    }
    std::sort(split.train.begin(), split.train.end());
    std::sort(split.validation.begin(), split.validation.end());
    return split;
}

}  // namespace unetpp
