#include "quant/bf16.h"

#include "core/fp16.h"

namespace ferry::quant {

void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

void quantize_row_bf16(const float* x, uint16_t* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

float vec_dot_bf16_f32(int64_t n, const uint16_t* w, const float* a) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(bf16_to_fp32(w[i])) * double(a[i]);
    return float(sum);
}

}  // namespace ferry::quant
