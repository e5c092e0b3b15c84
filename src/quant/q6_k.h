// Q6_K (ggml type 14): 6.5625 bits per weight. Super-block of 256 elements = 16 sub-blocks of 16,
// 210 bytes:
//
//   offset 0    ql[128]     uint8  low 4 bits of the 6-bit codes
//   offset 128  qh[64]      uint8  high 2 bits
//   offset 192  scales[16]  int8   sub-block scales
//   offset 208  d           fp16   super-scale
//
//   For each 128-element half n = 0..1 and l = 0..31, with L = ql + 64n, H = qh + 32n:
//     element 128n +      l: (L[l]      & 15) | ((H[l] >> 0) & 3) << 4
//     element 128n + 32 + l: (L[l + 32] & 15) | ((H[l] >> 2) & 3) << 4
//     element 128n + 64 + l: (L[l]      >> 4) | ((H[l] >> 4) & 3) << 4
//     element 128n + 96 + l: (L[l + 32] >> 4) | ((H[l] >> 6) & 3) << 4
//   q[i] = that code - 32 (so -32..31);  y[i] = (d * scales[i / 16]) * q[i]
//
// Quantizer (ours): per sub-block fit_scale_symmetric with codes -32..31 (unit weights); the signed
// scales are coded on int8 against d = (scale of largest magnitude) / -128; codes recomputed with the
// decoded scales.
//
// Pairs with Q8_K activations: sumi = sum_j scales[j] * sum_{i in j} q[i] * a.qs[i];
//   sum += (d * a.d) * sumi
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockQ6K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

void dequantize_row_q6_k(const BlockQ6K* x, float* y, int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6K* y, int64_t n);
float vec_dot_q6_k_q8_k(int64_t n, const BlockQ6K* w, const BlockQ8K* a);

}  // namespace ferry::quant
