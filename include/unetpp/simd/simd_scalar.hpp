#pragma once
// Portable vector primitives: the reference for every ISA and the path for double precision.

#include <algorithm>
#include <cstdint>

namespace unetpp {
namespace detail {
namespace scalar {

// sum_i x[i] * y[i]
template <class T>
T dot(int64_t n, const T* x, const T* y) {
    T acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += x[i] * y[i];
    return acc;
}
// y[i] += alpha * x[i]
template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
// x[i] *= alpha
template <class T>
void scale(int64_t n, T alpha, T* x) {
    for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}
// out[i] = a[i] + b[i]; out may alias a or b.
template <class T>
void add(int64_t n, const T* a, const T* b, T* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
// out[i] = max(a[i], b); out may alias a.
template <class T>
void max_scalar(int64_t n, const T* a, T b, T* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::max(a[i], b);
}
// x[i] += b
template <class T>
void add_scalar(int64_t n, T b, T* x) {
    for (int64_t i = 0; i < n; ++i) x[i] += b;
}
// sum_i x[i]
template <class T>
T sum(int64_t n, const T* x) {
    T acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += x[i];
    return acc;
}

}  // namespace scalar
}  // namespace detail
}  // namespace unetpp
