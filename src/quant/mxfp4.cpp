#include "quant/mxfp4.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ferry::quant {
namespace {

int nearest_code(float x, float d) {
    int best = 0;
    float best_err = std::fabs(float(kMxfp4Values[0]) * d - x);
    for (int k = 1; k < 16; ++k) {
        const float err = std::fabs(float(kMxfp4Values[k]) * d - x);
        if (err < best_err) {
            best = k;
            best_err = err;
        }
    }
    return best;
}

}  // namespace

void dequantize_row_mxfp4(const BlockMXFP4* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_MXFP4 == 0);
    for (int64_t b = 0; b < n / QK_MXFP4; ++b) {
        const float d = e8m0_to_float_half(x[b].e);
        float* yb = y + b * QK_MXFP4;
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            yb[j] = float(kMxfp4Values[x[b].qs[j] & 15]) * d;
            yb[j + QK_MXFP4 / 2] = float(kMxfp4Values[x[b].qs[j] >> 4]) * d;
        }
    }
}

void quantize_row_mxfp4(const float* x, BlockMXFP4* y, int64_t n) {
    FERRY_CHECK(n % QK_MXFP4 == 0);
    for (int64_t b = 0; b < n / QK_MXFP4; ++b) {
        const float* xb = x + b * QK_MXFP4;
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float e = amax > 0.0f ? std::floor(std::log2(amax)) - 2.0f + 127.0f : 0.0f;
        y[b].e = uint8_t(std::clamp(e, 0.0f, 255.0f));
        const float d = e8m0_to_float_half(y[b].e);
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            y[b].qs[j] = uint8_t(nearest_code(xb[j], d) | nearest_code(xb[j + QK_MXFP4 / 2], d) << 4);
        }
    }
}

float vec_dot_mxfp4_q8_0(int64_t n, const BlockMXFP4* w, const BlockQ8_0* a) {
    FERRY_CHECK(n % QK_MXFP4 == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_MXFP4; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            sumi += kMxfp4Values[w[b].qs[j] & 15] * a[b].qs[j];
            sumi += kMxfp4Values[w[b].qs[j] >> 4] * a[b].qs[j + QK_MXFP4 / 2];
        }
        sum += (half_to_float(a[b].d) * e8m0_to_float_half(w[b].e)) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
