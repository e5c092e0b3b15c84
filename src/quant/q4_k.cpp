#include "quant/q4_k.h"

#include <algorithm>

#include "core/check.h"
#include "quant/fit.h"
#include "quant/kquant_util.h"

namespace ferry::quant {

void detail::quantize_superblock_k4(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                                    uint8_t scales[K_SCALE_SIZE], uint8_t L[QK_K]) {
    constexpr int kSub = 32;
    float w[kSub];
    std::fill(w, w + kSub, 1.0f);
    float scale[8], min[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float offset = 0;
        scale[j] = fit_scale_offset(kSub, nmax, x + kSub * j, w, L + kSub * j, &offset);
        min[j] = -offset;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, min[j]);
    }
    *d_out = float_to_half(max_scale / 63);
    *dmin_out = float_to_half(max_min / 63);
    const float d = half_to_float(*d_out), dmin = half_to_float(*dmin_out);
    int sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
        sc[j] = code_unsigned(scale[j], d, 63);
        m[j] = code_unsigned(min[j], dmin, 63);
        recode_affine(kSub, nmax, x + kSub * j, d * float(sc[j]), dmin * float(m[j]), L + kSub * j);
    }
    for (int j = 0; j < 4; ++j) {
        scales[j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
        scales[j + 4] = uint8_t(m[j] | (m[j + 4] >> 4) << 6);
        scales[j + 8] = uint8_t((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

void dequantize_row_q4_k(const BlockQ4K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ4K& blk = x[b];
        const float d = half_to_float(blk.d);
        const float dmin = half_to_float(blk.dmin);
        float* yb = y + b * QK_K;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            detail::scale_min_k4(blk.scales, j, &sc, &m);
            const float d1 = d * float(sc);
            const float m1 = dmin * float(m);
            const uint8_t* q = blk.qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; ++l) yb[32 * j + l] = d1 * float((q[l] >> shift) & 15) - m1;
        }
    }
}

void quantize_row_q4_k(const float* x, BlockQ4K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        BlockQ4K& blk = y[b];
        detail::quantize_superblock_k4(x + b * QK_K, 15, &blk.d, &blk.dmin, blk.scales, L);
        for (int g = 0; g < 4; ++g) {
            for (int l = 0; l < 32; ++l) blk.qs[32 * g + l] = uint8_t(L[64 * g + l] | L[64 * g + 32 + l] << 4);
        }
    }
}

float vec_dot_q4_k_q8_k(int64_t n, const BlockQ4K* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ4K& blk = w[b];
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            detail::scale_min_k4(blk.scales, j, &sc, &m);
            const uint8_t* q = blk.qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            int32_t sub = 0;
            for (int l = 0; l < 32; ++l) sub += ((q[l] >> shift) & 15) * a[b].qs[32 * j + l];
            sumi += sc * sub;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum += a[b].d * (half_to_float(blk.d) * float(sumi)) - a[b].d * (half_to_float(blk.dmin) * float(summ));
    }
    return sum;
}

}  // namespace ferry::quant
