// Q8_K (ggml type 15): 9.125 bits per weight. Super-block of 256 elements, 292 bytes:
//
//   offset 0    d          float32  scale (a full float, unlike the fp16 scales elsewhere)
//   offset 4    qs[256]    int8     quants
//   offset 260  bsums[16]  int16    bsums[g] = sum of qs[16g .. 16g+15]
//
//   y[j] = d * qs[j]
//
// Activation format only: the K-quants (Q2_K..Q6_K) and IQ4_XS multiply with it; the group sums let
// a dot fold the per-sub-block minimum of Q2_K/Q4_K/Q5_K in without touching the quants again.
// The quantizer is ggml's reference quantize_row_q8_K, reproduced exactly:
//   max = the element of largest |x| (first one on ties), keeping its sign;
//   if max == 0: d = 0 and all quants 0 (we also zero bsums; ggml leaves them unwritten);
//   else iscale = -127 / max; qs[j] = min(127, nearest_int(iscale * x[j])) with nearest_int rounding
//   half to even; d = 1 / iscale (float); bsums from the stored quants.
// The largest element therefore maps to -127 (the scale d is negative when max > 0).
#pragma once

#include <cstdint>

#include "quant/common.h"

namespace ferry::quant {

struct BlockQ8K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

void dequantize_row_q8_k(const BlockQ8K* x, float* y, int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8K* y, int64_t n);

}  // namespace ferry::quant
