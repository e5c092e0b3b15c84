// Q3_K (ggml type 11): 3.4375 bits per weight. Super-block of 256 elements = 16 sub-blocks of 16,
// 110 bytes:
//
//   offset 0    hmask[32]   uint8  high bit of each 3-bit code: element 32k + l (k = 0..7,
//                                  l = 0..31) has its high bit in bit k of hmask[l]
//   offset 32   qs[64]      uint8  low 2 bits: element 128h + 32s + l (h = 0..1, s = 0..3,
//                                  l = 0..31) is (qs[32h + l] >> 2s) & 3
//   offset 96   scales[12]  uint8  sixteen 6-bit scale codes u_j (0..63, meaning u_j - 32):
//                                  low 4 bits of u_j = scales[j] & 15 for j < 8,
//                                                      scales[j - 8] >> 4 for j >= 8;
//                                  high 2 bits of u_j = (scales[8 + j % 4] >> 2 * (j / 4)) & 3
//   offset 108  d           fp16   super-scale
//
//   q[i] = low2(i) - (highbit(i) ? 0 : 4)          (so q in -4..3; a set high bit means "no -4")
//   y[i] = (d * (u_j - 32)) * q[i]                  for i in sub-block j = i / 16
//
// Quantizer (ours): per sub-block fit_scale_symmetric with codes -4..3 (unit weights); the 16 signed
// scales are coded against d = (the scale of largest magnitude) / -32, so that one lands on -32;
// codes are recomputed with the decoded scales.
//
// Pairs with Q8_K activations: per super-block sumi = sum_j (u_j - 32) * sum_{i in j} q[i] * a.qs[i];
//   sum += (d * a.d) * sumi
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockQ3K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
static_assert(sizeof(BlockQ3K) == 110);

void dequantize_row_q3_k(const BlockQ3K* x, float* y, int64_t n);
void quantize_row_q3_k(const float* x, BlockQ3K* y, int64_t n);
float vec_dot_q3_k_q8_k(int64_t n, const BlockQ3K* w, const BlockQ8K* a);

}  // namespace ferry::quant
