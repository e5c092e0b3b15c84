#include "quant/q3_k.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "quant/fit.h"
#include "quant/kquant_util.h"

namespace ferry::quant {
namespace {

int scale_code(const BlockQ3K& blk, int j) {
    const int low = j < 8 ? blk.scales[j] & 15 : blk.scales[j - 8] >> 4;
    const int high = (blk.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return low | high << 4;
}

// The signed 3-bit code of element i.
int code(const BlockQ3K& blk, int i) {
    const int h = i / 128, s = (i / 32) % 4, l = i % 32;
    const int low = (blk.qs[32 * h + l] >> (2 * s)) & 3;
    const bool high = (blk.hmask[l] >> (i / 32)) & 1;
    return low - (high ? 0 : 4);
}

}  // namespace

void dequantize_row_q3_k(const BlockQ3K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float d = half_to_float(x[b].d);
        for (int i = 0; i < QK_K; ++i) {
            const float dl = d * float(scale_code(x[b], i / 16) - 32);
            y[b * QK_K + i] = dl * float(code(x[b], i));
        }
    }
}

void quantize_row_q3_k(const float* x, BlockQ3K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    constexpr int kSub = 16;
    float w[kSub];
    std::fill(w, w + kSub, 1.0f);
    int8_t L[QK_K];
    float scale[QK_K / kSub];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockQ3K& blk = y[b];
        float max_scale = 0;  // signed: the scale of largest magnitude
        for (int j = 0; j < QK_K / kSub; ++j) {
            scale[j] = fit_scale_symmetric(kSub, 4, xb + kSub * j, w, L + kSub * j);
            if (std::fabs(scale[j]) > std::fabs(max_scale)) max_scale = scale[j];
        }
        blk.d = float_to_half(max_scale / -32);
        const float d = half_to_float(blk.d);
        std::fill(blk.scales, blk.scales + 12, uint8_t(0));
        for (int j = 0; j < QK_K / kSub; ++j) {
            const int sc = detail::code_signed(scale[j], d, -32, 31);
            const int u = sc + 32;
            blk.scales[j % 8] |= uint8_t((u & 15) << (j < 8 ? 0 : 4));
            blk.scales[8 + j % 4] |= uint8_t((u >> 4) << (2 * (j / 4)));
            detail::recode_symmetric(kSub, 4, xb + kSub * j, d * float(sc), L + kSub * j);
        }
        std::fill(blk.qs, blk.qs + QK_K / 4, uint8_t(0));
        std::fill(blk.hmask, blk.hmask + QK_K / 8, uint8_t(0));
        for (int i = 0; i < QK_K; ++i) {
            const int u = L[i] + 4;  // 0..7
            const int h = i / 128, s = (i / 32) % 4, l = i % 32;
            blk.qs[32 * h + l] |= uint8_t((u & 3) << (2 * s));
            blk.hmask[l] |= uint8_t((u >> 2) << (i / 32));
        }
    }
}

float vec_dot_q3_k_q8_k(int64_t n, const BlockQ3K* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            int32_t sub = 0;
            for (int i = 16 * j; i < 16 * j + 16; ++i) sub += code(w[b], i) * a[b].qs[i];
            sumi += (scale_code(w[b], j) - 32) * sub;
        }
        sum += (half_to_float(w[b].d) * a[b].d) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
