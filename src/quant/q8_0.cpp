#include "quant/q8_0.h"

#include <cmath>

#include "core/check.h"

namespace ferry::quant {

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK8_0 == 0);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const float d = half_to_float(x[b].d);
        for (int j = 0; j < QK8_0; ++j) y[b * QK8_0 + j] = float(x[b].qs[j]) * d;
    }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
    FERRY_CHECK(n % QK8_0 == 0);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const float* xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = float_to_half(d);
        for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = int8_t(round_away(xb[j] * id));
    }
}

void quantize_act_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
    FERRY_CHECK(n % QK8_0 == 0);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const float* xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = float_to_half(amax / 127.0f);
        for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = int8_t(round_even(xb[j] * id));
    }
}

namespace {

// The integer dot of one block pair.
int32_t block_sumi(const BlockQ8_0& w, const BlockQ8_0& a) {
    int32_t sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += int32_t(w.qs[j]) * int32_t(a.qs[j]);
    return sumi;
}

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const BlockQ8_0* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK8_0 == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; ++b)
        sum += float(block_sumi(w[b], a[b])) * (half_to_float(w[b].d) * half_to_float(a[b].d));
    return sum;
}

float vec_dot_q8_0_q8_0_one_sum(int64_t n, const BlockQ8_0* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK8_0 == 0);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; ++b)
        acc = std::fma(float(block_sumi(w[b], a[b])), half_to_float(w[b].d) * half_to_float(a[b].d), acc);
    return acc;
}

}  // namespace ferry::quant
