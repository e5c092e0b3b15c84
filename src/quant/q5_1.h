// Q5_1 (ggml type 7): 6 bits per weight. Block of 32 elements, 24 bytes:
//
//   offset 0  d       fp16    scale
//   offset 2  m       fp16    minimum (offset)
//   offset 4  qh[4]   uint8   fifth bits, as in Q5_0 (bit j of the little-endian uint32 = element j)
//   offset 8  qs[16]  uint8   low 4 bits, as in Q5_0
//
//   y[i] = d * q[i] + m      (q[i] the unsigned 5-bit code, 0..31)
//
// Quantizer (ggml's reference rule, exact): min, max; d = (max - min) / 31; id = d ? 1/d : 0;
// q = min(31, trunc((x - min) * id + 0.5)); d, m = min stored as fp16.
//
// Pairs with Q8_1 activations: sum += (w.d * a.d) * sum(q_w * q_a) + w.m * a.s (see q4_1.h for the
// fp16 rounding of a.s).
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_1.h"

namespace ferry::quant {

struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
float vec_dot_q5_1_q8_1(int64_t n, const BlockQ5_1* w, const BlockQ8_1* a);

}  // namespace ferry::quant
