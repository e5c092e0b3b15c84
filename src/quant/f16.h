// F16 (ggml type 1): IEEE binary16, 16 bits per weight, block of 1 element (2 bytes).
//
//   bits: sign(1) exponent(5, bias 15) mantissa(10); y = fp16_to_fp32(bits), exact.
//   quantize rounds to nearest even (fp32_to_fp16 in core/fp16.h), overflowing to infinity.
//
// Pairs with F32 activations here: vec_dot_f16_f32 = sum f32(w[i]) * a[i], accumulated in double.
// (ggml's CPU backend instead converts the activations to F16 first; a kernel that must match it
// bit for bit would quantize the activations with quantize_row_f16 and call this with their floats.)
#pragma once

#include <cstdint>

namespace ferry::quant {

void dequantize_row_f16(const uint16_t* x, float* y, int64_t n);
void quantize_row_f16(const float* x, uint16_t* y, int64_t n);
float vec_dot_f16_f32(int64_t n, const uint16_t* w, const float* a);

}  // namespace ferry::quant
