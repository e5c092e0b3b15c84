// Q5_K (ggml type 13): 5.5 bits per weight. Super-block of 256 elements = 8 sub-blocks of 32,
// 176 bytes:
//
//   offset 0   d           fp16   super-scale of the scale codes
//   offset 2   dmin        fp16   super-scale of the min codes
//   offset 4   scales[12]  uint8  6-bit scale and min codes, packed exactly as in Q4_K (q4_k.h)
//   offset 16  qh[32]      uint8  fifth bits: element 32k + l (k = 0..7, l = 0..31) has its high bit
//                                 in bit k of qh[l]
//   offset 48  qs[128]     uint8  low 4 bits, laid out exactly as Q4_K's codes
//
//   q[i] = low4(i) | highbit(i) << 4  (0..31);  y[i] = (d * sc_j) * q[i] - (dmin * m_j), j = i / 32
//
// Quantizer (ours): as Q4_K with nmax 31.
//
// Pairs with Q8_K activations, with the same formula as Q4_K (q4_k.h) on 5-bit codes.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockQ5K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ5K) == 176);

void dequantize_row_q5_k(const BlockQ5K* x, float* y, int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5K* y, int64_t n);
float vec_dot_q5_k_q8_k(int64_t n, const BlockQ5K* w, const BlockQ8K* a);

}  // namespace ferry::quant
