// Helpers for the reference quantizers of the K-quants (internal to src/quant).
#pragma once

#include <algorithm>
#include <cstdint>

#include "quant/common.h"

namespace ferry::quant::detail {

// Code for a non-negative value v against step d: round(v / d) clamped to [0, max_code]; 0 if d == 0.
inline int code_unsigned(float v, float d, int max_code) {
    return d > 0 ? std::clamp(round_even(v / d), 0, max_code) : 0;
}

// Code for a signed value v against step d: round(v / d) clamped to [lo, hi]; 0 if d == 0.
inline int code_signed(float v, float d, int lo, int hi) { return d != 0 ? std::clamp(round_even(v / d), lo, hi) : 0; }

// A super-scale as it will be decoded: fp16(v) widened again.
inline float through_half(float v) { return half_to_float(float_to_half(v)); }

// Codes for an affine sub-block as the decoder will see it: y = scale * L - min (min >= 0).
inline void recode_affine(int n, int nmax, const float* x, float scale, float min, uint8_t* L) {
    for (int i = 0; i < n; ++i) {
        L[i] = scale > 0 ? uint8_t(std::clamp(round_even((x[i] + min) / scale), 0, nmax)) : 0;
    }
}

// Codes for a symmetric sub-block as the decoder will see it: y = scale * L, L in [-nneg, nneg-1].
inline void recode_symmetric(int n, int nneg, const float* x, float scale, int8_t* L) {
    for (int i = 0; i < n; ++i) {
        L[i] = scale != 0 ? int8_t(std::clamp(round_even(x[i] / scale), -nneg, nneg - 1)) : 0;
    }
}

}  // namespace ferry::quant::detail
