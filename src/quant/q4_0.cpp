#include "quant/q4_0.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ferry::quant {

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK4_0 == 0);
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const float d = half_to_float(x[b].d);
        float* yb = y + b * QK4_0;
        for (int j = 0; j < QK4_0 / 2; ++j) {
            yb[j] = float((x[b].qs[j] & 15) - 8) * d;
            yb[j + QK4_0 / 2] = float((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
    FERRY_CHECK(n % QK4_0 == 0);
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const float* xb = x + b * QK4_0;
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < QK4_0; ++j) {
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = float_to_half(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const int lo = std::min(15, int(xb[j] * id + 8.5f));
            const int hi = std::min(15, int(xb[j + QK4_0 / 2] * id + 8.5f));
            y[b].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

float vec_dot_q4_0_q8_0(int64_t n, const BlockQ4_0* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK4_0 == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_0 / 2; ++j) {
            sumi += ((w[b].qs[j] & 15) - 8) * a[b].qs[j];
            sumi += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + QK4_0 / 2];
        }
        sum += float(sumi) * half_to_float(w[b].d) * half_to_float(a[b].d);
    }
    return sum;
}

}  // namespace ferry::quant
