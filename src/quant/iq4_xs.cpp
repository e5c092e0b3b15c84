#include "quant/iq4_xs.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "quant/fit.h"
#include "quant/kquant_util.h"

namespace ferry::quant {
namespace {

int scale_code(const BlockIQ4XS& blk, int j) {
    const int low = (blk.scales_l[j / 2] >> (4 * (j % 2))) & 15;
    const int high = (blk.scales_h >> (2 * j)) & 3;
    return low | high << 4;
}

int grid_code(const BlockIQ4XS& blk, int i) {
    const int j = i / 32, r = i % 32;
    return (blk.qs[16 * j + r % 16] >> (4 * (r / 16))) & 15;
}

}  // namespace

void dequantize_row_iq4_xs(const BlockIQ4XS* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float d = half_to_float(x[b].d);
        for (int j = 0; j < QK_K / 32; ++j) {
            const float dl = d * float(scale_code(x[b], j) - 32);
            for (int i = 32 * j; i < 32 * j + 32; ++i) y[b * QK_K + i] = dl * float(kIq4nlValues[grid_code(x[b], i)]);
        }
    }
}

void quantize_row_iq4_xs(const float* x, BlockIQ4XS* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    constexpr int kSub = 32;
    float w[kSub];
    std::fill(w, w + kSub, 1.0f);
    uint8_t L[QK_K];
    float scale[QK_K / kSub];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockIQ4XS& blk = y[b];
        float max_scale = 0;
        for (int j = 0; j < QK_K / kSub; ++j) {
            scale[j] = fit_scale_grid(kSub, kIq4nlValues, xb + kSub * j, w, L + kSub * j);
            if (std::fabs(scale[j]) > std::fabs(max_scale)) max_scale = scale[j];
        }
        blk.d = float_to_half(max_scale / -32);
        const float d = half_to_float(blk.d);
        blk.scales_h = 0;
        std::fill(blk.scales_l, blk.scales_l + QK_K / 64, uint8_t(0));
        for (int j = 0; j < QK_K / kSub; ++j) {
            const int sc = detail::code_signed(scale[j], d, -32, 31);
            const int ls = sc + 32;
            blk.scales_l[j / 2] |= uint8_t((ls & 15) << (4 * (j % 2)));
            blk.scales_h |= uint16_t((ls >> 4) << (2 * j));
            const float dl = d * float(sc);
            const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
            for (int i = kSub * j; i < kSub * j + kSub; ++i)
                L[i] = uint8_t(nearest_grid_index(kIq4nlValues, xb[i] * idl));
        }
        for (int j = 0; j < QK_K / kSub; ++j) {
            for (int l = 0; l < 16; ++l) blk.qs[16 * j + l] = uint8_t(L[32 * j + l] | L[32 * j + 16 + l] << 4);
        }
    }
}

float vec_dot_iq4_xs_q8_k(int64_t n, const BlockIQ4XS* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            int32_t sub = 0;
            for (int i = 32 * j; i < 32 * j + 32; ++i) sub += kIq4nlValues[grid_code(w[b], i)] * a[b].qs[i];
            sumi += (scale_code(w[b], j) - 32) * sub;
        }
        sum += (half_to_float(w[b].d) * a[b].d) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
