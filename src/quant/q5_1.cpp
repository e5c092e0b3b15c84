#include "quant/q5_1.h"

#include <algorithm>
#include <cfloat>

#include "core/check.h"
#include "quant/q5_0.h"

namespace ferry::quant {

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK5_1 == 0);
    int q[QK5_1];
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        const float d = half_to_float(x[b].d);
        const float m = half_to_float(x[b].m);
        detail::unpack_q5(x[b].qh, x[b].qs, q);
        for (int j = 0; j < QK5_1; ++j) y[b * QK5_1 + j] = float(q[j]) * d + m;
    }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
    FERRY_CHECK(n % QK5_1 == 0);
    int q[QK5_1];
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        const float* xb = x + b * QK5_1;
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < QK5_1; ++j) {
            min = std::min(min, xb[j]);
            max = std::max(max, xb[j]);
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = float_to_half(d);
        y[b].m = float_to_half(min);
        for (int j = 0; j < QK5_1; ++j) q[j] = std::min(31, int((xb[j] - min) * id + 0.5f));
        detail::pack_q5(q, y[b].qh, y[b].qs);
    }
}

float vec_dot_q5_1_q8_1(int64_t n, const BlockQ5_1* w, const BlockQ8_1* a) {
    FERRY_CHECK(n % QK5_1 == 0);
    int q[QK5_1];
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        detail::unpack_q5(w[b].qh, w[b].qs, q);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_1; ++j) sumi += q[j] * a[b].qs[j];
        sum += (half_to_float(w[b].d) * half_to_float(a[b].d)) * float(sumi) +
               half_to_float(w[b].m) * half_to_float(a[b].s);
    }
    return sum;
}

}  // namespace ferry::quant
