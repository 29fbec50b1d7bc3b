#pragma once
// Seeded, deterministic random numbers and weight initialisers.
//
// Rng is xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators",
// arXiv:1805.01407) seeded through splitmix64. Unlike std::normal_distribution its output is the
// same on every platform and standard library, so a seed fixes a training run everywhere.

#include <cmath>
#include <cstdint>

#include "unetpp/tensor.hpp"

namespace unetpp {

class Rng {
public:
    explicit Rng(uint64_t seed = 0x5eed) { reseed(seed); }

    void reseed(uint64_t seed) {
        uint64_t x = seed;
        for (auto& s : state_) s = splitmix64(x);
        has_spare_ = false;
    }

    // Uniform 64-bit integer.
    uint64_t next_u64() {
        uint64_t result = rotl(state_[1] * 5, 7) * 9;
        uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
    // Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n); n must be positive.
    uint64_t below(uint64_t n) {
        UNETPP_ASSERT(n > 0, "Rng::below(0)");
        return next_u64() % n;
    }
    // Standard normal by the Marsaglia polar method.
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u, v, s;
        do {
            u = uniform(-1.0, 1.0);
            v = uniform(-1.0, 1.0);
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        double f = std::sqrt(-2.0 * std::log(s) / s);
        spare_ = v * f;
        has_spare_ = true;
        return u * f;
    }
    double normal(double mean, double stddev) { return mean + stddev * normal(); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix64(uint64_t& x) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    uint64_t state_[4];
    double spare_ = 0.0;
    bool has_spare_ = false;
};

// Fills x with values uniform in [lo, hi).
template <class T>
void init_uniform(Tensor<T>& x, Rng& rng, double lo, double hi) {
    for (auto& v : x) v = static_cast<T>(rng.uniform(lo, hi));
}

// Fills x with normal values.
template <class T>
void init_normal(Tensor<T>& x, Rng& rng, double mean, double stddev) {
    for (auto& v : x) v = static_cast<T>(rng.normal(mean, stddev));
}

// He (Kaiming) normal init for a layer followed by ReLU: stddev sqrt(2 / fan_in)
// (He et al., arXiv:1502.01852).
template <class T>
void init_he_normal(Tensor<T>& w, Rng& rng, int64_t fan_in) {
    if (fan_in <= 0) throw Error(detail::concat("init_he_normal: fan_in must be positive, got ", fan_in));
    init_normal(w, rng, 0.0, std::sqrt(2.0 / double(fan_in)));
}

// Glorot (Xavier) uniform init: limit sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010).
template <class T>
void init_glorot_uniform(Tensor<T>& w, Rng& rng, int64_t fan_in, int64_t fan_out) {
    if (fan_in + fan_out <= 0) {
        throw Error(detail::concat("init_glorot_uniform: fan_in + fan_out must be positive, got ",
                                   fan_in, " + ", fan_out));
    }
    double limit = std::sqrt(6.0 / double(fan_in + fan_out));
    init_uniform(w, rng, -limit, limit);
}

}  // namespace unetpp
