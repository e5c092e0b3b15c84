// Activation quantizers Q8_0, Q8_1, Q8_K, bit-identical to the scalar activation quantizers in
// quant/q8_*.cpp (quant::activation_quantizer).
//
// What makes them exact: the same float operations in the same order per element (x * id as one
// rounded multiply, never fused), max/abs are exact whatever the order, nearbyint from the FPU's
// round-to-nearest-even, and fp16 scales through vcvtps2ph with the rounding of core/fp16.h.
#include "quant/q8_0.h"
#include "quant/q8_1.h"
#include "quant/q8_k.h"
#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {
namespace {

// A function, not a namespace-scope constant: static initializers must not run AVX code on any CPU.
inline __m256 abs_mask() { return _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)); }

// nearbyint(v) (round half to even) as int32.
inline __m256i round_even(__m256 v) {
    return _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// One 32-element block: the int quants (4 x 8 int32) and the unrounded scale d.
struct Q8Block {
    __m256i q[4];
    float d;
};

inline Q8Block quantize_block_32(const float* x) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], abs_mask()));
    }
    Q8Block b;
    const float m = hmax(amax);
    b.d = m / 127.0f;
    const __m256 vid = _mm256_set1_ps(m != 0.0f ? 127.0f / m : 0.0f);
    for (int i = 0; i < 4; ++i) b.q[i] = round_even(_mm256_mul_ps(v[i], vid));
    return b;
}

void quantize_q8_0(const float* x, void* out, int64_t n) {
    auto* y = static_cast<BlockQ8_0*>(out);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const Q8Block q = quantize_block_32(x + b * QK8_0);
        y[b].d = f2h(q.d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), pack_i32_to_i8(q.q[0], q.q[1], q.q[2], q.q[3]));
    }
}

void quantize_q8_1(const float* x, void* out, int64_t n) {
    auto* y = static_cast<BlockQ8_1*>(out);
    for (int64_t b = 0; b < n / QK8_1; ++b) {
        const Q8Block q = quantize_block_32(x + b * QK8_1);
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q.q[0], q.q[1]), _mm256_add_epi32(q.q[2], q.q[3]));
        y[b].d = f2h(q.d);
        y[b].s = f2h(float(hsum_i32(s)) * q.d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), pack_i32_to_i8(q.q[0], q.q[1], q.q[2], q.q[3]));
    }
}

void quantize_q8_k(const float* x, void* out, int64_t n) {
    auto* y = static_cast<BlockQ8K*>(out);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* xb = x + b * QK_K;
        BlockQ8K& o = y[b];
        __m256 amax_v = _mm256_setzero_ps();
        for (int i = 0; i < QK_K; i += 8)
            amax_v = _mm256_max_ps(amax_v, _mm256_and_ps(_mm256_loadu_ps(xb + i), abs_mask()));
        const float amax = hmax(amax_v);
        if (amax == 0.0f) {
            o.d = 0.0f;
            std::memset(o.qs, 0, sizeof(o.qs));
            std::memset(o.bsums, 0, sizeof(o.bsums));
            continue;
        }
        // The reference keeps the sign of the first element whose magnitude is amax.
        float max = 0.0f;
        const __m256 target = _mm256_set1_ps(amax);
        for (int i = 0; i < QK_K; i += 8) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xb + i), abs_mask());
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, target, _CMP_EQ_OQ));
            if (mask != 0) {
                max = xb[i + __builtin_ctz(unsigned(mask))];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i k127 = _mm256_set1_epi32(127);
        for (int g = 0; g < QK_K / 32; ++g) {
            __m256i q[4];
            for (int i = 0; i < 4; ++i) {
                const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(xb + 32 * g + 8 * i), vs);
                q[i] = _mm256_min_epi32(
                    _mm256_cvtps_epi32(_mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), k127);
            }
            o.bsums[2 * g] = int16_t(hsum_i32(_mm256_add_epi32(q[0], q[1])));
            o.bsums[2 * g + 1] = int16_t(hsum_i32(_mm256_add_epi32(q[2], q[3])));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.qs + 32 * g), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
        }
        o.d = 1.0f / iscale;
    }
}

}  // namespace

void fill_quantizers(KernelTable& t) {
    t.quantize_q8_0 = quantize_q8_0;
    t.quantize_q8_1 = quantize_q8_1;
    t.quantize_q8_k = quantize_q8_k;
}

}  // namespace ferry::quant::FERRY_ISA
