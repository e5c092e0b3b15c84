#include "quant/q5_k.h"

#include <algorithm>

#include "core/check.h"
#include "quant/q4_k.h"

namespace ferry::quant {
namespace {

int code(const BlockQ5K& blk, int i) {
    const int j = i / 32, l = i % 32;
    const int low = (blk.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
    return low | ((blk.qh[l] >> j) & 1) << 4;
}

}  // namespace

void dequantize_row_q5_k(const BlockQ5K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ5K& blk = x[b];
        const float d = half_to_float(blk.d);
        const float dmin = half_to_float(blk.dmin);
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            detail::scale_min_k4(blk.scales, j, &sc, &m);
            const float d1 = d * float(sc);
            const float m1 = dmin * float(m);
            for (int i = 32 * j; i < 32 * j + 32; ++i) y[b * QK_K + i] = d1 * float(code(blk, i)) - m1;
        }
    }
}

void quantize_row_q5_k(const float* x, BlockQ5K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        BlockQ5K& blk = y[b];
        detail::quantize_superblock_k4(x + b * QK_K, 31, &blk.d, &blk.dmin, blk.scales, L);
        std::fill(blk.qh, blk.qh + QK_K / 8, uint8_t(0));
        for (int g = 0; g < 4; ++g) {
            for (int l = 0; l < 32; ++l) {
                blk.qs[32 * g + l] = uint8_t((L[64 * g + l] & 15) | (L[64 * g + 32 + l] & 15) << 4);
            }
        }
        for (int i = 0; i < QK_K; ++i) blk.qh[i % 32] |= uint8_t((L[i] >> 4) << (i / 32));
    }
}

float vec_dot_q5_k_q8_k(int64_t n, const BlockQ5K* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const BlockQ5K& blk = w[b];
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            detail::scale_min_k4(blk.scales, j, &sc, &m);
            int32_t sub = 0;
            for (int i = 32 * j; i < 32 * j + 32; ++i) sub += code(blk, i) * a[b].qs[i];
            sumi += sc * sub;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum += a[b].d * (half_to_float(blk.d) * float(sumi)) - a[b].d * (half_to_float(blk.dmin) * float(summ));
    }
    return sum;
}

}  // namespace ferry::quant
