#include "quant/f32.h"

#include <cstring>

namespace ferry::quant {

void dequantize_row_f32(const float* x, float* y, int64_t n) { std::memmove(y, x, size_t(n) * sizeof(float)); }

void quantize_row_f32(const float* x, float* y, int64_t n) { std::memmove(y, x, size_t(n) * sizeof(float)); }

float vec_dot_f32_f32(int64_t n, const float* w, const float* a) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(w[i]) * double(a[i]);
    return float(sum);
}

}  // namespace ferry::quant
