// F32 (ggml type 0): IEEE binary32, 32 bits per weight, block of 1 element (4 bytes).
//
//   y[i] = x[i]
//
// Pairs with F32 activations: vec_dot_f32_f32 = sum x[i] * a[i], accumulated in double and rounded
// once to float.
#pragma once

#include <cstdint>

namespace ferry::quant {

void dequantize_row_f32(const float* x, float* y, int64_t n);
void quantize_row_f32(const float* x, float* y, int64_t n);
float vec_dot_f32_f32(int64_t n, const float* w, const float* a);

}  // namespace ferry::quant
