#pragma once
// im2col and col2im for convolutions (see conv2d.hpp for how they are used).
//
//   col[(c*R + r)*S + s, i*OW + j] = x[c, i*stride + r - pad, j*stride + s - pad]   (0 outside)
// x: one image, C H W; col: C*R*S rows of OH*OW. col2im_add is the adjoint: it adds every column
// entry back onto the input pixel it was read from.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "unetpp/kernels/conv2d_reference.hpp"
#include "unetpp/kernels/gemm.hpp"

namespace unetpp {
namespace detail {

// Input and output extents of one convolution call.
struct ConvGeometry {
    int64_t H = 0, W = 0, OH = 0, OW = 0;
    ConvGeometry(const Conv2dSpec& s, int64_t h, int64_t w)
        : H(h), W(w), OH(s.out_h(h)), OW(s.out_w(w)) {}
};

// Output columns j whose tap s lands inside the image: [j_lo, j_hi).
inline void conv_valid_columns(const Conv2dSpec& sp, const ConvGeometry& g, int64_t s,
                               int64_t& j_lo, int64_t& j_hi) {
    // j*stride + s - pad >= 0  and  j*stride + s - pad <= W - 1
    int64_t lo_num = sp.pad - s;
    j_lo = lo_num <= 0 ? 0 : (lo_num + sp.stride - 1) / sp.stride;
    int64_t hi_num = g.W - 1 + sp.pad - s;
    j_hi = hi_num < 0 ? 0 : std::min(g.OW, hi_num / sp.stride + 1);
    j_lo = std::min(j_lo, j_hi);
}

// One run of an im2col row without the buffer: out[t] = col[crs, p0 + t] for t < len.
// Used by the GEMM panel packers, which read the image directly (implicit im2col).
template <class T>
void im2col_segment(const Conv2dSpec& sp, const ConvGeometry& g, const T* x, int64_t crs,
                    int64_t p0, int64_t len, T* out) {
    const int64_t c = crs / (sp.R * sp.S), r = crs / sp.S % sp.R, s = crs % sp.S;
    int64_t j_lo, j_hi;
    conv_valid_columns(sp, g, s, j_lo, j_hi);
    int64_t i = p0 / g.OW, j = p0 % g.OW;
    while (len > 0) {
        const int64_t run = std::min(g.OW - j, len);
        const int64_t h = i * sp.stride + r - sp.pad;
        if (h < 0 || h >= g.H) {
            std::fill(out, out + run, T(0));
        } else {
            const T* in = x + (c * g.H + h) * g.W;
            const int64_t shift = s - sp.pad;
            const int64_t lo = std::clamp(j_lo, j, j + run), hi = std::clamp(j_hi, lo, j + run);
            std::fill(out, out + (lo - j), T(0));
            if (sp.stride == 1) {
                copy_span(hi - lo, in + lo + shift, out + (lo - j));
            } else {
                for (int64_t t = lo; t < hi; ++t) out[t - j] = in[t * sp.stride + shift];
            }
            std::fill(out + (hi - j), out + run, T(0));
        }
        out += run;
        len -= run;
        j = 0;
        ++i;
    }
}

template <class T>
void im2col(const Conv2dSpec& sp, const ConvGeometry& g, const T* x, T* col) {
    const int64_t pixels = g.OH * g.OW;
    for (int64_t c = 0; c < sp.C; ++c)
        for (int64_t r = 0; r < sp.R; ++r)
            for (int64_t s = 0; s < sp.S; ++s) {
                T* row = col + ((c * sp.R + r) * sp.S + s) * pixels;
                int64_t j_lo, j_hi;
                conv_valid_columns(sp, g, s, j_lo, j_hi);
                for (int64_t i = 0; i < g.OH; ++i) {
                    T* out = row + i * g.OW;
                    int64_t h = i * sp.stride + r - sp.pad;
                    if (h < 0 || h >= g.H) {
                        std::fill(out, out + g.OW, T(0));
                        continue;
                    }
                    const T* in = x + (c * g.H + h) * g.W;
                    const int64_t shift = s - sp.pad;
                    std::fill(out, out + j_lo, T(0));
                    if (sp.stride == 1) {
                        std::memcpy(out + j_lo, in + j_lo + shift, (j_hi - j_lo) * sizeof(T));
                    } else {
                        for (int64_t j = j_lo; j < j_hi; ++j) out[j] = in[j * sp.stride + shift];
                    }
                    std::fill(out + j_hi, out + g.OW, T(0));
                }
            }
}

template <class T>
void col2im_add(const Conv2dSpec& sp, const ConvGeometry& g, const T* col, T* x) {
    const int64_t pixels = g.OH * g.OW;
    for (int64_t c = 0; c < sp.C; ++c)
        for (int64_t r = 0; r < sp.R; ++r)
            for (int64_t s = 0; s < sp.S; ++s) {
                const T* row = col + ((c * sp.R + r) * sp.S + s) * pixels;
                int64_t j_lo, j_hi;
                conv_valid_columns(sp, g, s, j_lo, j_hi);
                for (int64_t i = 0; i < g.OH; ++i) {
                    int64_t h = i * sp.stride + r - sp.pad;
                    if (h < 0 || h >= g.H) continue;
                    T* out = x + (c * g.H + h) * g.W;
                    const T* in = row + i * g.OW;
                    const int64_t shift = s - sp.pad;
                    for (int64_t j = j_lo; j < j_hi; ++j) out[j * sp.stride + shift] += in[j];
                }
            }
}

}  // namespace detail
}  // namespace unetpp
