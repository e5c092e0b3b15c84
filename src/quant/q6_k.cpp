#include "quant/q6_k.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "quant/fit.h"
#include "quant/kquant_util.h"

namespace ferry::quant {
namespace {

// Where element i's bits live: low nibble in ql[ql_index] at ql_shift, high pair in qh[qh_index] at
// qh_shift.
struct Q6Pos {
    int ql_index, ql_shift, qh_index, qh_shift;
};

Q6Pos position(int i) {
    const int n = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    return {64 * n + l + 32 * (quarter % 2), 4 * (quarter / 2), 32 * n + l, 2 * quarter};
}

int code(const BlockQ6K& blk, int i) {
    const Q6Pos p = position(i);
    return (((blk.ql[p.ql_index] >> p.ql_shift) & 15) | ((blk.qh[p.qh_index] >> p.qh_shift) & 3) << 4) - 32;
}

}  // namespace

void dequantize_row_q6_k(const BlockQ6K* x, float* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float d = half_to_float(x[b].d);
        for (int i = 0; i < QK_K; ++i) {
            const float dl = d * float(x[b].scales[i / 16]);
            y[b * QK_K + i] = dl * float(code(x[b], i));
        }
    }
}

void quantize_row_q6_k(const float* x, BlockQ6K* y, int64_t n) {
    FERRY_CHECK(n % QK_K == 0);
    constexpr int kSub = 16;
    float w[kSub];
    std::fill(w, w + kSub, 1.0f);
    int8_t L[QK_K];
    float scale[QK_K / kSub];
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockQ6K& blk = y[b];
        float max_scale = 0;
        for (int j = 0; j < QK_K / kSub; ++j) {
            scale[j] = fit_scale_symmetric(kSub, 32, xb + kSub * j, w, L + kSub * j);
            if (std::fabs(scale[j]) > std::fabs(max_scale)) max_scale = scale[j];
        }
        blk.d = float_to_half(max_scale / -128);
        const float d = half_to_float(blk.d);
        for (int j = 0; j < QK_K / kSub; ++j) {
            const int sc = detail::code_signed(scale[j], d, -128, 127);
            blk.scales[j] = int8_t(sc);
            detail::recode_symmetric(kSub, 32, xb + kSub * j, d * float(sc), L + kSub * j);
        }
        std::fill(blk.ql, blk.ql + QK_K / 2, uint8_t(0));
        std::fill(blk.qh, blk.qh + QK_K / 4, uint8_t(0));
        for (int i = 0; i < QK_K; ++i) {
            const int u = L[i] + 32;  // 0..63
            const Q6Pos p = position(i);
            blk.ql[p.ql_index] |= uint8_t((u & 15) << p.ql_shift);
            blk.qh[p.qh_index] |= uint8_t((u >> 4) << p.qh_shift);
        }
    }
}

float vec_dot_q6_k_q8_k(int64_t n, const BlockQ6K* w, const BlockQ8K* a) {
    FERRY_CHECK(n % QK_K == 0);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            int32_t sub = 0;
            for (int i = 16 * j; i < 16 * j + 16; ++i) sub += code(w[b], i) * a[b].qs[i];
            sumi += w[b].scales[j] * sub;
        }
        sum += (half_to_float(w[b].d) * a[b].d) * float(sumi);
    }
    return sum;
}

}  // namespace ferry::quant
