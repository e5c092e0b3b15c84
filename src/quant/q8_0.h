// Q8_0 (ggml type 8): 8.5 bits per weight. Block of 32 elements, 34 bytes:
//
//   offset 0  d      fp16   scale
//   offset 2  qs[32] int8   quants
//
//   y[j] = d * qs[j]
//
// Both a weight format and the activation format that Q4_0, Q5_0, Q8_0, IQ4_NL and MXFP4 weights
// are multiplied with. The quantizer is ggml's reference activation quantizer, reproduced exactly
// (later we compare logits with llama.cpp):
//   amax = max |x[j]|;  d = amax / 127;  id = d != 0 ? 1 / d : 0;
//   qs[j] = roundf(x[j] * id)   (round half away from zero);  d stored as fp16(d) (nearest even).
// Note the quants use the unrounded d; only the stored scale is rounded to fp16.
//
// quantize_act_row_q8_0 is the quantizer matmul applies to its activations, reproducing ggml-cpu's
// x86 quantize_row_q8_0 (what llama.cpp runs on this hardware), which differs from the reference in
// two roundings:  d = amax / 127 (stored as fp16, as above);  id = amax != 0 ? 127 / amax : 0;
//   qs[j] = nearbyint(x[j] * id)   (round half to even).
//
// vec_dot_q8_0_q8_0: per block sumi = sum w.qs[j] * a.qs[j] (int32), sum += sumi * (w.d * a.d).
#pragma once

#include <cstdint>

#include "quant/common.h"

namespace ferry::quant {

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_act_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
float vec_dot_q8_0_q8_0(int64_t n, const BlockQ8_0* w, const BlockQ8_0* a);
// The one-sum order (KernelTable::gemm_one_sum, steps of several sequences): per block the whole integer dot
// converted once and added as fma(sumi, d_w * d_a, acc), blocks in order.
float vec_dot_q8_0_q8_0_one_sum(int64_t n, const BlockQ8_0* w, const BlockQ8_0* a);

}  // namespace ferry::quant
