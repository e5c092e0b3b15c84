#include "quant/q8_1.h"

#include <cmath>

#include "core/check.h"

namespace ferry::quant {

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK8_1 == 0);
    for (int64_t b = 0; b < n / QK8_1; ++b) {
        const float d = half_to_float(x[b].d);
        for (int j = 0; j < QK8_1; ++j) y[b * QK8_1 + j] = float(x[b].qs[j]) * d;
    }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
    FERRY_CHECK(n % QK8_1 == 0);
    for (int64_t b = 0; b < n / QK8_1; ++b) {
        const float* xb = x + b * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            y[b].qs[j] = int8_t(round_away(xb[j] * id));
            sum += y[b].qs[j];
        }
        y[b].d = float_to_half(d);
        y[b].s = float_to_half(float(sum) * d);
    }
}

void quantize_act_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
    FERRY_CHECK(n % QK8_1 == 0);
    for (int64_t b = 0; b < n / QK8_1; ++b) {
        const float* xb = x + b * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            y[b].qs[j] = int8_t(round_even(xb[j] * id));
            sum += y[b].qs[j];
        }
        y[b].d = float_to_half(d);
        y[b].s = float_to_half(float(sum) * d);
    }
}

}  // namespace ferry::quant
