#include "quant/q2_k.h"

#include <algorithm>

#include "core/check.h"
#include "quant/fit.h"
#include "quant/kquant_util.h"

namespace ferry::quant {

void dequantize_row_q2_k(const BlockQ2K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ2K& blk = x[b];
        const float d = half_to_float(blk.d);
        const float dmin = half_to_float(blk.dmin);
        float* yb = y + b * QK_K;
        for (int i = 0; i < QK_K; ++i) {
            const int h = i / 128, s = (i / 32) % 4, l = i % 32;
            const int q = (blk.qs[32 * h + l] >> (2 * s)) & 3;
            const float dl = d * float(blk.scales[i / 16] & 15);
            const float ml = dmin * float(blk.scales[i / 16] >> 4);
            yb[i] = dl * float(q) - ml;
        }
    }
}

void quantize_row_q2_k(const float* x, BlockQ2K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    constexpr int kSub = 16;
    float w[kSub];
    std::fill(w, w + kSub, 1.0f);
    uint8_t L[QK_K];
    float scale[QK_K / kSub], min[QK_K / kSub];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockQ2K& blk = y[b];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / kSub; ++j) {
            float offset = 0;
            scale[j] = fit_scale_offset(kSub, 3, xb + kSub * j, w, L + kSub * j, &offset);
            min[j] = -offset;
            max_scale = std::max(max_scale, scale[j]);
            max_min = std::max(max_min, min[j]);
        }
        blk.d = float_to_half(max_scale / 15);
        blk.dmin = float_to_half(max_min / 15);
        const float d = half_to_float(blk.d), dmin = half_to_float(blk.dmin);
        for (int j = 0; j < QK_K / kSub; ++j) {
            const int sc = detail::code_unsigned(scale[j], d, 15);
            const int m = detail::code_unsigned(min[j], dmin, 15);
            blk.scales[j] = uint8_t(sc | m << 4);
            detail::recode_affine(kSub, 3, xb + kSub * j, d * float(sc), dmin * float(m), L + kSub * j);
        }
        std::fill(blk.qs, blk.qs + QK_K / 4, uint8_t(0));
        for (int i = 0; i < QK_K; ++i) {
            const int h = i / 128, s = (i / 32) % 4, l = i % 32;
            blk.qs[32 * h + l] |= uint8_t(L[i] << (2 * s));
        }
    }
}

float vec_dot_q2_k_q8_k(int64_t n, const BlockQ2K* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ2K& blk = w[b];
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            int32_t sub = 0;
            for (int i = 16 * j; i < 16 * j + 16; ++i) {
                const int h = i / 128, s = (i / 32) % 4, l = i % 32;
                sub += ((blk.qs[32 * h + l] >> (2 * s)) & 3) * a[b].qs[i];
            }
            sumi += (blk.scales[j] & 15) * sub;
            summ += (blk.scales[j] >> 4) * a[b].bsums[j];
        }
        sum += a[b].d * (half_to_float(blk.d) * float(sumi)) - a[b].d * (half_to_float(blk.dmin) * float(summ));
    }
    return sum;
}

}  // namespace ferry::quant
