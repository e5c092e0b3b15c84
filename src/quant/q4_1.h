// Q4_1 (ggml type 3): 5 bits per weight. Block of 32 elements, 20 bytes:
//
//   offset 0  d       fp16   scale
//   offset 2  m       fp16   minimum (offset)
//   offset 4  qs[16]  uint8  element j in the low nibble of qs[j], element j+16 in the high nibble
//
//   y[j]    = d * (qs[j] & 15) + m
//   y[j+16] = d * (qs[j] >> 4) + m
//
// Quantizer (ggml's reference rule, exact): min, max over the block; d = (max - min) / 15;
// id = d ? 1/d : 0; q = min(15, trunc((x - min) * id + 0.5)); d and m = min stored as fp16.
//
// Pairs with Q8_1 activations: per block sumi = sum q_w * q_a,
//   sum += (w.d * a.d) * sumi + w.m * a.s     (a.s = a.d * sum q_a, precomputed by the quantizer)
// Because a.s is rounded to fp16, this differs from dot(dequant(w), dequant(a)) by up to
// |w.m * a.s| * 2^-11 per block.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_1.h"

namespace ferry::quant {

struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
float vec_dot_q4_1_q8_1(int64_t n, const BlockQ4_1* w, const BlockQ8_1* a);
// The one-sum order (KernelTable::gemm_one_sum, steps of several sequences): per block the whole integer dot
// converted once and added as fma(sumi, d_w * d_a, acc), blocks in order; the m_w * s_a products summed apart in
// block order; acc + that sum at the end.
float vec_dot_q4_1_q8_1_one_sum(int64_t n, const BlockQ4_1* w, const BlockQ8_1* a);

}  // namespace ferry::quant
