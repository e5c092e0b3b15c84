// Q8_1 (ggml type 9): 9 bits per weight. Block of 32 elements, 36 bytes:
//
//   offset 0  d      fp16   scale
//   offset 2  s      fp16   d * sum(qs)   (lets a dot with an offset format fold the offset in)
//   offset 4  qs[32] int8   quants
//
//   y[j] = d * qs[j]        (s is redundant: it only serves the dot products)
//
// Activation format only (paired with Q4_1 and Q5_1 weights); no dot of its own. The quantizer is
// ggml's reference quantize_row_q8_1, reproduced exactly: as Q8_0 (amax / 127, id = 1/d or 0,
// roundf = half away from zero), plus s = fp16(float(sum of the int quants) * d) with the unrounded d.
// quantize_act_row_q8_1, the quantizer matmul applies to activations, is ggml-cpu's x86 version:
// id = 127 / amax (0 when amax is 0) and round half to even, as quantize_act_row_q8_0; s as above.
#pragma once

#include <cstdint>

#include "quant/common.h"

namespace ferry::quant {

struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[QK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36);

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
void quantize_act_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);

}  // namespace ferry::quant
