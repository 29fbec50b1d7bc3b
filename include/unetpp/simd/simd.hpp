#pragma once
// Vector primitives, chosen in this one place by the instruction set the code is compiled for:
// AVX-512F, else AVX2 with FMA, else the portable scalar loops. Double precision always takes the
// scalar path (it serves gradient checks, not speed). Define UNETPP_NO_SIMD to force the scalar
// path for floats too.
//
// Every primitive takes the element count first, then inputs, then outputs. Results depend only
// on the inputs and n, never on threads, so callers stay deterministic.

#include <cstdint>

#include "unetpp/simd/simd_scalar.hpp"

#if !defined(UNETPP_NO_SIMD) && defined(__AVX512F__)
#include "unetpp/simd/simd_avx512.hpp"
#define UNETPP_SIMD_AVX512 1
#define UNETPP_SIMD_NAME "avx512"
#elif !defined(UNETPP_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#include "unetpp/simd/simd_avx2.hpp"
#define UNETPP_SIMD_AVX2 1
#define UNETPP_SIMD_NAME "avx2"
#else
#define UNETPP_SIMD_NAME "scalar"
#endif

namespace unetpp {
namespace simd {

#if defined(UNETPP_SIMD_AVX512)
namespace isa = detail::avx512;
#elif defined(UNETPP_SIMD_AVX2)
namespace isa = detail::avx2;
#else
namespace isa = detail::scalar;
#endif

// The instruction set the float primitives use: "avx512", "avx2" or "scalar".
inline const char* isa_name() { return UNETPP_SIMD_NAME; }

template <class T>
T dot(int64_t n, const T* x, const T* y) {
    return detail::scalar::dot(n, x, y);
}
inline float dot(int64_t n, const float* x, const float* y) { return isa::dot(n, x, y); }

template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
    detail::scalar::axpy(n, alpha, x, y);
}
inline void axpy(int64_t n, float alpha, const float* x, float* y) { isa::axpy(n, alpha, x, y); }

template <class T>
void scale(int64_t n, T alpha, T* x) {
    detail::scalar::scale(n, alpha, x);
}
inline void scale(int64_t n, float alpha, float* x) { isa::scale(n, alpha, x); }

template <class T>
void add(int64_t n, const T* a, const T* b, T* out) {
    detail::scalar::add(n, a, b, out);
}
inline void add(int64_t n, const float* a, const float* b, float* out) { isa::add(n, a, b, out); }

template <class T>
void max_scalar(int64_t n, const T* a, T b, T* out) {
    detail::scalar::max_scalar(n, a, b, out);
}
inline void max_scalar(int64_t n, const float* a, float b, float* out) {
    isa::max_scalar(n, a, b, out);
}

template <class T>
void add_scalar(int64_t n, T b, T* x) {
    detail::scalar::add_scalar(n, b, x);
}
inline void add_scalar(int64_t n, float b, float* x) { isa::add_scalar(n, b, x); }

template <class T>
T sum(int64_t n, const T* x) {
    return detail::scalar::sum(n, x);
}
inline float sum(int64_t n, const float* x) { return isa::sum(n, x); }

}  // namespace simd
}  // namespace unetpp
