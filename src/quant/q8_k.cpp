#include "quant/q8_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"

namespace ferry::quant {

void dequantize_row_q8_k(const BlockQ8K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        for (int j = 0; j < QK_K; ++j) y[b * QK_K + j] = x[b].d * float(x[b].qs[j]);
    }
}

void quantize_row_q8_k(const float* x, BlockQ8K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockQ8K& out = y[b];
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            out.d = 0.0f;
            std::memset(out.qs, 0, sizeof(out.qs));
            std::memset(out.bsums, 0, sizeof(out.bsums));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; ++j) out.qs[j] = int8_t(std::min(127, round_even(iscale * xb[j])));
        for (int g = 0; g < QK_K / 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += out.qs[16 * g + l];
            out.bsums[g] = int16_t(sum);
        }
        out.d = 1.0f / iscale;
    }
}

}  // namespace ferry::quant
