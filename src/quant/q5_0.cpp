#include "quant/q5_0.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ferry::quant {

void detail::unpack_q5(const uint8_t qh[4], const uint8_t qs[16], int q[32]) {
    const uint32_t h = uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
    for (int j = 0; j < 16; ++j) {
        q[j] = (qs[j] & 15) | int((h >> j) & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | int((h >> (j + 16)) & 1) << 4;
    }
}

void detail::pack_q5(const int q[32], uint8_t qh[4], uint8_t qs[16]) {
    uint32_t h = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = uint8_t((q[j] & 15) | (q[j + 16] & 15) << 4);
        h |= uint32_t(q[j] >> 4) << j;
        h |= uint32_t(q[j + 16] >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) qh[k] = uint8_t(h >> (8 * k));
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK5_0 == 0);
    int q[QK5_0];
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        const float d = half_to_float(x[b].d);
        detail::unpack_q5(x[b].qh, x[b].qs, q);
        for (int j = 0; j < QK5_0; ++j) y[b * QK5_0 + j] = float(q[j] - 16) * d;
    }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
    FERRY_CHECK(n % QK5_0 == 0);
    int q[QK5_0];
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        const float* xb = x + b * QK5_0;
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < QK5_0; ++j) {
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = float_to_half(d);
        for (int j = 0; j < QK5_0; ++j) q[j] = std::min(31, int(xb[j] * id + 16.5f));
        detail::pack_q5(q, y[b].qh, y[b].qs);
    }
}

float vec_dot_q5_0_q8_0(int64_t n, const BlockQ5_0* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK5_0 == 0);
    int q[QK5_0];
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        detail::unpack_q5(w[b].qh, w[b].qs, q);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_0; ++j) sumi += (q[j] - 16) * a[b].qs[j];
        sum += (half_to_float(w[b].d) * half_to_float(a[b].d)) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
