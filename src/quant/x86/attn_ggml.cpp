// llama.cpp's attention arithmetic (kernels.h: dot_f16_lanes16 ... reduce_lanes16) on 256-bit registers:
// a lanes16 accumulator is two __m256 (lanes 0-7, 8-15), and hsum(lo + hi) adds 16 lanes in the order of
// GCC's _mm512_reduce_add_ps. Both instruction sets use this code; results are bit-identical with the
// scalar table (every multiply-add fused, every other operation a single IEEE operation). Builtins, not
// <cmath>, for the scalar tails: no inline function of a shared header may be compiled with these flags.

#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {
namespace {

__m256 load8(const float* x) { return _mm256_loadu_ps(x); }
__m256 load8(const uint16_t* x) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))); }
float one(float x) { return x; }
float one(uint16_t x) { return h2f(x); }

template <class T>
float dot_lanes16(int64_t n, const T* x, const T* y) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(load8(x + i), load8(y + i), lo);
        hi = _mm256_fmadd_ps(load8(x + i + 8), load8(y + i + 8), hi);
    }
    return hsum(_mm256_add_ps(lo, hi));
}

float dot_f16_ggml(int64_t n, const uint16_t* x, const uint16_t* y) {
    const int64_t np = n / 64 * 64;
    __m256 acc[8];
    for (__m256& a : acc) a = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64) {
        for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(load8(x + i + 8 * k), load8(y + i + 8 * k), acc[k]);
    }
    // acc[2a + h] holds lanes 8h .. 8h + 7 of accumulator a.
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    double s = hsum(_mm256_add_ps(lo, hi));
    for (int64_t i = np; i < n; ++i) s += double(h2f(x[i]) * h2f(y[i]));
    return float(s);
}

template <class T>
void fmad(int64_t n, float* y, const T* x, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(load8(x + i), vs, _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] = __builtin_fmaf(one(x[i]), s, y[i]);
}

void store_f16(uint16_t* y, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

void fmad_f16_acc16(int64_t n, uint16_t* y, const uint16_t* x, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_fmadd_ps(load8(x + i), vs, load8(y + i)));
    for (; i < n; ++i) y[i] = f2h(__builtin_fmaf(h2f(x[i]), s, h2f(y[i])));
}

void scale_f16(int64_t n, uint16_t* y, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_mul_ps(load8(y + i), vs));
    for (; i < n; ++i) y[i] = f2h(h2f(y[i]) * s);
}

// 2^e for normal exponents e in [-126, 127], per lane.
__m256 pow2(__m256i e) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

// ggml_v_expf's algorithm (see the scalar table) on 8 lanes; scalef(j, n) = j * 2^n as two power-of-two
// factors, the first exact, so the product is rounded once.
__m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b =
        _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p, u, q), u,
                                     _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 nan = _mm256_cmp_ps(n, n, _CMP_UNORD_Q);
    const __m256 safe = _mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-192.0f)), _mm256_set1_ps(192.0f));
    const __m256i e = _mm256_cvttps_epi32(safe);
    const __m256i e1 = _mm256_srai_epi32(e, 1);
    const __m256i e2 = _mm256_sub_epi32(e, e1);
    __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pow2(e1)), pow2(e2));
    const __m256 alt = _mm256_blendv_ps(_mm256_set1_ps(__builtin_inff()), _mm256_setzero_ps(),
                                        _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ));
    res = _mm256_blendv_ps(res, alt, big);
    return _mm256_blendv_ps(res, n, nan);
}

double soft_max_ggml(int64_t n, float* y, const float* x, float max) {
    const __m256 vm = _mm256_set1_ps(max);
    double sum = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 lo = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        const __m256 hi = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        _mm256_storeu_ps(y + i, lo);
        _mm256_storeu_ps(y + i + 8, hi);
        sum += double(hsum(_mm256_add_ps(lo, hi)));
    }
    for (; i < n; ++i) {
        y[i] = __builtin_expf(x[i] - max);
        sum += double(y[i]);
    }
    return sum;
}

void reduce_lanes16(int64_t n, const float* acc, float* out) {
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 t[8];
        for (int i = 0; i < 8; ++i) t[i] = _mm256_add_ps(load8(acc + i * n + d), load8(acc + (i + 8) * n + d));
        __m256 u[4];
        for (int i = 0; i < 4; ++i) u[i] = _mm256_add_ps(t[i], t[i + 4]);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(u[0], u[2]), _mm256_add_ps(u[1], u[3])));
    }
    for (; d < n; ++d) {
        float t[8], u[4];
        for (int i = 0; i < 8; ++i) t[i] = acc[i * n + d] + acc[(i + 8) * n + d];
        for (int i = 0; i < 4; ++i) u[i] = t[i] + t[i + 4];
        out[d] = (u[0] + u[2]) + (u[1] + u[3]);
    }
}

}  // namespace

void fill_attn_ggml(KernelTable& t) {
    t.dot_f16_lanes16 = dot_lanes16<uint16_t>;
    t.dot_f32_lanes16 = dot_lanes16<float>;
    t.dot_f16_ggml = dot_f16_ggml;
    t.fmad_f32 = fmad<float>;
    t.fmad_f16 = fmad<uint16_t>;
    t.fmad_f16_acc16 = fmad_f16_acc16;
    t.scale_f16 = scale_f16;
    t.soft_max_ggml = soft_max_ggml;
    t.reduce_lanes16 = reduce_lanes16;
}

}  // namespace ferry::quant::FERRY_ISA
