// BF16 (ggml type 30): bfloat16, the top 16 bits of an IEEE binary32. 16 bits per weight, block of
// 1 element (2 bytes).
//
//   y = bits << 16 reinterpreted as float (exact);
//   quantize rounds to nearest even on the dropped 16 bits and turns NaN into a quiet NaN
//   (fp32_to_bf16 in core/fp16.h, the rule ggml and gguf-py use).
//
// Pairs with F32 activations here: vec_dot_bf16_f32 = sum f32(w[i]) * a[i], accumulated in double.
// (ggml's CPU backend converts the activations to BF16 first; see the note in f16.h.)
#pragma once

#include <cstdint>

namespace ferry::quant {

void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n);
void quantize_row_bf16(const float* x, uint16_t* y, int64_t n);
float vec_dot_bf16_f32(int64_t n, const uint16_t* w, const float* a);

}  // namespace ferry::quant
