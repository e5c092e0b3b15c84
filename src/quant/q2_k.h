// Q2_K (ggml type 10): 2.625 bits per weight. Super-block of 256 elements = 16 sub-blocks of 16,
// 84 bytes:
//
//   offset 0   scales[16]  uint8  sub-block j: scale code sc_j = scales[j] & 15, min code
//                                 m_j = scales[j] >> 4
//   offset 16  qs[64]      uint8  2-bit codes: element 128h + 32s + l (h = 0..1, s = 0..3,
//                                 l = 0..31) is (qs[32h + l] >> 2s) & 3
//   offset 80  d           fp16   super-scale of the scale codes
//   offset 82  dmin        fp16   super-scale of the min codes
//
//   for element i in sub-block j = i / 16:  y[i] = (d * sc_j) * q[i] - (dmin * m_j)
//
// Quantizer (ours): per sub-block fit_scale_offset with nmax 3 (unit weights), then the 16 scales and
// 16 mins are coded on 4 bits against d = max scale / 15 and dmin = max min / 15 (both rounded to
// fp16 first), and the codes are recomputed with the scales and mins as they will be decoded.
//
// Pairs with Q8_K activations: per super-block
//   sumi = sum_j sc_j * sum_{i in j} q[i] * a.qs[i],  summ = sum_j m_j * a.bsums[j]
//   sum += a.d * (d * sumi) - a.d * (dmin * summ)
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockQ2K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2K) == 84);

void dequantize_row_q2_k(const BlockQ2K* x, float* y, int64_t n);
void quantize_row_q2_k(const float* x, BlockQ2K* y, int64_t n);
float vec_dot_q2_k_q8_k(int64_t n, const BlockQ2K* w, const BlockQ8K* a);

}  // namespace ferry::quant
