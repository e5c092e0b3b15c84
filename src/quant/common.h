// Shared pieces of the block formats: block lengths, fp16 field access, the two rounding rules the
// reference quantizers use, and the 4-bit lookup tables.
//
// Conventions for every format header in this folder:
//   - a row of n elements is n / block_size consecutive blocks; n must be a multiple of the block size
//     (checked with FERRY_CHECK: callers validate untrusted shapes before they get here);
//   - `dequantize_row_<fmt>(const Block*, float* y, n)`, `quantize_row_<fmt>(const float* x, Block*, n)`;
//   - weight formats have `vec_dot_<fmt>_<act>(n, const Block* w, const ActBlock* a)`, the dot product of
//     a weight row with an activation row quantized to the paired activation format. It sums integer
//     products inside a block and accumulates the per-block results in float;
//   - fp16 fields are stored as raw IEEE half bits (uint16_t); all multi-byte fields are little-endian,
//     which is also the host order on every machine ferry targets.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/fp16.h"

namespace ferry::quant {

inline constexpr int QK4_0 = 32;
inline constexpr int QK4_1 = 32;
inline constexpr int QK5_0 = 32;
inline constexpr int QK5_1 = 32;
inline constexpr int QK8_0 = 32;
inline constexpr int QK8_1 = 32;
inline constexpr int QK4_NL = 32;
inline constexpr int QK_MXFP4 = 32;
inline constexpr int QK_K = 256;         // super-block of the K-quants and IQ4_XS
inline constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

inline float half_to_float(uint16_t h) { return fp16_to_fp32(h); }
inline uint16_t float_to_half(float f) { return fp32_to_fp16(f); }

// Round half away from zero (C roundf): the rule of ggml's Q8_0 / Q8_1 reference quantizers.
inline int round_away(float x) { return int(std::round(x)); }

// Round half to even (the FPU's default mode): the rule ggml's K-quant code calls nearest_int and
// the Q8_K quantizer uses. Valid for |x| < 2^22.
inline int round_even(float x) { return int(std::nearbyint(x)); }

// Non-uniform 4-bit grid of IQ4_NL and IQ4_XS (int8 values, index = the 4-bit code).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// The 16 values of an E2M1 (fp4) code, doubled so they are integers: code 0..7 positive, 8..15 the
// same magnitudes negated (8 is -0). Used by MXFP4 together with a halved E8M0 scale.
inline constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace ferry::quant
