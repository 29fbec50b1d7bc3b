#pragma once
// Exact squared Euclidean distance transform (Felzenszwalb and Huttenlocher, "Distance
// Transforms of Sampled Functions", Theory of Computing 8, 2012), shared by the training
// targets (data/targets.hpp, in float) and the post-processing (post/morphology.hpp, in
// double). A 2-D transform is a 1-D transform down every column, then along every row.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace unetpp::detail {

// d[q] = min_p (q - p)^2 + f[p] for q in [0, n): the lower envelope of the parabolas rooted at
// (p, f[p]). f and d have n entries, v and z are scratch of n and n + 1. f must be finite
// (mark "no feature" with a large finite value, so the parabolas still intersect).
template <class F>
void squared_distance_1d(const F* f, int64_t n, F* d, int64_t* v, F* z) {
    const F inf = std::numeric_limits<F>::infinity();
    // 1. the envelope: v holds the roots of its parabolas, z the boundaries between them
    int64_t k = 0;
    v[0] = 0;
    z[0] = -inf;
    z[1] = inf;
    for (int64_t q = 1; q < n; ++q) {
        F s;
        while (true) {
            const int64_t p = v[k];
            s = ((f[q] + F(q) * F(q)) - (f[p] + F(p) * F(p))) / F(2 * (q - p));
            if (s > z[k] || k == 0) break;
            --k;
        }
        if (s <= z[k]) s = z[k];
        ++k;
        v[k] = q;
        z[k] = s;
        z[k + 1] = inf;
    }
    // 2. read the envelope at every q
    k = 0;
    for (int64_t q = 0; q < n; ++q) {
        while (z[k + 1] < F(q)) ++k;
        const F dq = F(q - v[k]);
        d[q] = dq * dq + f[v[k]];
    }
}

// In place on a row-major h x w grid: 0 at feature pixels and a large finite value elsewhere
// in, the squared distance to the nearest feature pixel out (about that value where a grid
// has no feature at all).
template <class F>
void squared_distance_2d(F* grid, int64_t h, int64_t w) {
    const auto n = static_cast<size_t>(std::max(h, w));
    std::vector<F> f(n), d(n), z(n + 1);
    std::vector<int64_t> v(n);
    for (int64_t x = 0; x < w; ++x) {  // columns
        for (int64_t y = 0; y < h; ++y) f[size_t(y)] = grid[y * w + x];
        squared_distance_1d(f.data(), h, d.data(), v.data(), z.data());
        for (int64_t y = 0; y < h; ++y) grid[y * w + x] = d[size_t(y)];
    }
    for (int64_t y = 0; y < h; ++y) {  // rows
        F* row = grid + y * w;
        squared_distance_1d(row, w, d.data(), v.data(), z.data());
        std::copy(d.begin(), d.begin() + w, row);
    }
}

}  // namespace unetpp::detail
