#include "quant/q4_1.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/check.h"

namespace ferry::quant {

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK4_1 == 0);
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        const float d = half_to_float(x[b].d);
        const float m = half_to_float(x[b].m);
        float* yb = y + b * QK4_1;
        for (int j = 0; j < QK4_1 / 2; ++j) {
            yb[j] = float(x[b].qs[j] & 15) * d + m;
            yb[j + QK4_1 / 2] = float(x[b].qs[j] >> 4) * d + m;
        }
    }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
    FERRY_CHECK(n % QK4_1 == 0);
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        const float* xb = x + b * QK4_1;
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < QK4_1; ++j) {
            min = std::min(min, xb[j]);
            max = std::max(max, xb[j]);
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = float_to_half(d);
        y[b].m = float_to_half(min);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const int lo = std::min(15, int((xb[j] - min) * id + 0.5f));
            const int hi = std::min(15, int((xb[j + QK4_1 / 2] - min) * id + 0.5f));
            y[b].qs[j] = uint8_t(lo | (hi << 4));
        }
    }
}

namespace {

// The integer dot of one block pair (codes 0..15 of the low nibbles with quants 0..15, of the high with 16..31).
int32_t block_sumi(const BlockQ4_1& w, const BlockQ8_1& a) {
    int32_t sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
        sumi += (w.qs[j] & 15) * a.qs[j];
        sumi += (w.qs[j] >> 4) * a.qs[j + QK4_1 / 2];
    }
    return sumi;
}

}  // namespace

float vec_dot_q4_1_q8_1(int64_t n, const BlockQ4_1* w, const BlockQ8_1* a) {
    FERRY_CHECK(n % QK4_1 == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        sum += (half_to_float(w[b].d) * half_to_float(a[b].d)) * float(block_sumi(w[b], a[b])) +
               half_to_float(w[b].m) * half_to_float(a[b].s);
    }
    return sum;
}

float vec_dot_q4_1_q8_1_one_sum(int64_t n, const BlockQ4_1* w, const BlockQ8_1* a) {
    FERRY_CHECK(n % QK4_1 == 0);
    float acc = 0.0f, off = 0.0f;
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        acc = std::fma(float(block_sumi(w[b], a[b])), half_to_float(w[b].d) * half_to_float(a[b].d), acc);
        off = off + half_to_float(w[b].m) * half_to_float(a[b].s);
    }
    return acc + off;
}

}  // namespace ferry::quant
