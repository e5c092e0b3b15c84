// IQ4_NL (ggml type 20): 4.5 bits per weight. Block of 32 elements, 18 bytes:
//
//   offset 0  d       fp16   scale
//   offset 2  qs[16]  uint8  4-bit codes: element j in the low nibble of qs[j], element j+16 in the
//                            high nibble (j = 0..15)
//
//   y[j] = d * kIq4nlValues[code j],  kIq4nlValues = {-127,-104,-83,-65,-49,-35,-22,-10,
//                                                      1, 13, 25, 38, 53, 69, 89, 113}
//
// A non-uniform ("non-linear") 4-bit grid, denser near zero, as suits bell-shaped weights.
// Quantizer (ours, not ggml's): fit_scale_grid over the block with unit weights, d stored as fp16,
// then every element re-coded to the grid value nearest x / fp16(d).
//
// Pairs with Q8_0 activations: per block sumi = sum kIq4nlValues[code] * q_a, sum += (w.d * a.d) * sumi.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_0.h"

namespace ferry::quant {

struct BlockIQ4NL {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
};
static_assert(sizeof(BlockIQ4NL) == 18);

void dequantize_row_iq4_nl(const BlockIQ4NL* x, float* y, int64_t n);
void quantize_row_iq4_nl(const float* x, BlockIQ4NL* y, int64_t n);
float vec_dot_iq4_nl_q8_0(int64_t n, const BlockIQ4NL* w, const BlockQ8_0* a);

}  // namespace ferry::quant
