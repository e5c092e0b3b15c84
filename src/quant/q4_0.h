// Q4_0 (ggml type 2): 4.5 bits per weight. Block of 32 elements, 18 bytes:
//
//   offset 0  d       fp16   scale
//   offset 2  qs[16]  uint8  two 4-bit quants per byte: element j in the low nibble of qs[j],
//                            element j+16 in the high nibble (j = 0..15)
//
//   y[j]    = d * ((qs[j] & 15) - 8)
//   y[j+16] = d * ((qs[j] >> 4) - 8)
//
// Quantizer (ggml's reference rule, kept exactly so a Q4_0 KV cache matches llama.cpp's): max = the
// element of largest |x| (first on ties) with its sign; d = max / -8; id = d ? 1/d : 0;
// q = min(15, trunc(x * id + 8.5)). The largest element lands on code 0 (= -8), so the asymmetric
// range [-8, 7] is used fully on the side where the block needs it.
//
// Pairs with Q8_0 activations: per block sumi = sum (q_w - 8) * q_a, sum += sumi * w.d * a.d.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_0.h"

namespace ferry::quant {

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
float vec_dot_q4_0_q8_0(int64_t n, const BlockQ4_0* w, const BlockQ8_0* a);

}  // namespace ferry::quant
