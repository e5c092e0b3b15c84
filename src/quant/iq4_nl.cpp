#include "quant/iq4_nl.h"

#include "core/check.h"
#include "quant/fit.h"

namespace ferry::quant {

void dequantize_row_iq4_nl(const BlockIQ4NL* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK4_NL == 0);
    for (int64_t b = 0; b < n / QK4_NL; ++b) {
        const float d = half_to_float(x[b].d);
        float* yb = y + b * QK4_NL;
        for (int j = 0; j < QK4_NL / 2; ++j) {
            yb[j] = d * float(kIq4nlValues[x[b].qs[j] & 15]);
            yb[j + QK4_NL / 2] = d * float(kIq4nlValues[x[b].qs[j] >> 4]);
        }
    }
}

void quantize_row_iq4_nl(const float* x, BlockIQ4NL* y, int64_t n) {
    FERRY_CHECK(n % QK4_NL == 0);
    float w[QK4_NL];
    uint8_t L[QK4_NL];
    for (float& v : w) v = 1.0f;
    for (int64_t b = 0; b < n / QK4_NL; ++b) {
        const float* xb = x + b * QK4_NL;
        y[b].d = float_to_half(fit_scale_grid(QK4_NL, kIq4nlValues, xb, w, L));
        const float d = half_to_float(y[b].d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK4_NL; ++j) L[j] = uint8_t(nearest_grid_index(kIq4nlValues, xb[j] * id));
        for (int j = 0; j < QK4_NL / 2; ++j) y[b].qs[j] = uint8_t(L[j] | L[j + QK4_NL / 2] << 4);
    }
}

float vec_dot_iq4_nl_q8_0(int64_t n, const BlockIQ4NL* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK4_NL == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_NL; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_NL / 2; ++j) {
            sumi += kIq4nlValues[w[b].qs[j] & 15] * a[b].qs[j];
            sumi += kIq4nlValues[w[b].qs[j] >> 4] * a[b].qs[j + QK4_NL / 2];
        }
        sum += (half_to_float(w[b].d) * half_to_float(a[b].d)) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
