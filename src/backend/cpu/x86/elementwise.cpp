// The element-wise kernels of elementwise.h on 8-float (AVX2) and 16-float (AVX-512) registers, compiled
// once per instruction set (FERRY_ISA names the namespace) with that set's flags. Every result is
// bit-identical with the scalar table: per element the same IEEE operations in the same order, fused
// multiply-adds exactly where the reference calls std::fma. Element-wise formulas do not depend on the
// lane an element falls in, so the loops may start anywhere; the last partial vector is done one element
// at a time with builtins (no inline function of a shared header may be compiled with these flags).
#include "backend/cpu/elementwise.h"

#include <immintrin.h>

#include "quant/x86/vexp.h"

#ifndef FERRY_ISA
#error "FERRY_ISA must name the instruction set namespace (avx2, avx512)"
#endif

namespace ferry::backend::cpu::FERRY_ISA {
namespace {

// ggml_expf (ggml_math.h) one element at a time: 2^n applied as two exact power-of-two factors.
float expf_ggml1(float x) {
    const float r = 0x1.8p23f;
    const float z = __builtin_fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = __builtin_fmaf(-n, 0x1.7f7d1cp-20f, __builtin_fmaf(-n, 0x1.62e4p-1f, x));
    if (__builtin_fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : __builtin_inff();
    const float u = b * b;
    const float j = __builtin_fmaf(__builtin_fmaf(__builtin_fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                                  __builtin_fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                                   u, __builtin_fmaf(0x1.ffffecp-1f, b, 1.0f));
    return __builtin_ldexpf(j, int(n));
}

float silu1(float x, bool vec) { return x / (1.0f + (vec ? expf_ggml1(-x) : __builtin_expf(-x))); }

// 8 floats.
struct F8 {
    using T = __m256;
    static constexpr int64_t W = 8;
    static T load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
    static T set1(float x) { return _mm256_set1_ps(x); }
    static T zero() { return _mm256_setzero_ps(); }
    static T add(T a, T b) { return _mm256_add_ps(a, b); }
    static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
    static T div(T a, T b) { return _mm256_div_ps(a, b); }
    static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
    static T fms(T a, T b, T c) { return _mm256_fmsub_ps(a, b, c); }  // a * b - c, one rounding
    static T neg(T a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
    static T swap_pairs(T a) { return _mm256_permute_ps(a, 0xB1); }
    static T blend_odd(T even, T odd) { return _mm256_blend_ps(even, odd, 0xAA); }
    // ggml_v_expf (quant/x86/vexp.h, bit-identical with ggml_expf).
    static T expf(T x) { return quant::FERRY_ISA::v_expf(x); }
};

#if defined(__AVX512F__)
// 16 floats.
struct F16 {
    using T = __m512;
    static constexpr int64_t W = 16;
    static T load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
    static T set1(float x) { return _mm512_set1_ps(x); }
    static T zero() { return _mm512_setzero_ps(); }
    static T add(T a, T b) { return _mm512_add_ps(a, b); }
    static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
    static T div(T a, T b) { return _mm512_div_ps(a, b); }
    static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
    static T fms(T a, T b, T c) { return _mm512_fmsub_ps(a, b, c); }
    static T neg(T a) {
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int(0x80000000u))));
    }
    static T swap_pairs(T a) { return _mm512_permute_ps(a, 0xB1); }
    static T blend_odd(T even, T odd) { return _mm512_mask_blend_ps(__mmask16(0xAAAA), even, odd); }
    // ggml_v_expf of the AVX-512 build (quant/x86/vexp.h: scalef rounds j * 2^n once).
    static T expf(T x) { return quant::FERRY_ISA::v_expf(x); }
};
using FW = F16;  // the widest vector of this build
#else
using FW = F8;
#endif

template <class V>
typename V::T silu_v(typename V::T x) {
    return V::div(x, V::add(V::set1(1.0f), V::expf(V::neg(x))));
}

void silu(int64_t n, const float* x, float* y, int64_t n_vec) {
    using V = FW;
    const int64_t nv = n_vec < n ? n_vec : n;
    int64_t i = 0;
    for (; i + V::W <= nv; i += V::W) V::store(y + i, silu_v<V>(V::load(x + i)));
    for (; i < n; ++i) y[i] = silu1(x[i], i < nv);
}

void swiglu(int64_t n, const float* g, const float* u, float* y, int64_t n_vec) {
    using V = FW;
    const int64_t nv = n_vec < n ? n_vec : n;
    int64_t i = 0;
    for (; i + V::W <= nv; i += V::W) V::store(y + i, V::mul(silu_v<V>(V::load(g + i)), V::load(u + i)));
    for (; i < n; ++i) y[i] = silu1(g[i], i < nv) * u[i];
}

void add(int64_t n, const float* a, const float* b, float* y) {
    using V = FW;
    int64_t i = 0;
    for (; i + V::W <= n; i += V::W) V::store(y + i, V::add(V::load(a + i), V::load(b + i)));
    for (; i < n; ++i) y[i] = a[i] + b[i];
}

void mul(int64_t n, const float* a, const float* b, float* y) {
    using V = FW;
    int64_t i = 0;
    for (; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::load(a + i), V::load(b + i)));
    for (; i < n; ++i) y[i] = a[i] * b[i];
}

void scale(int64_t n, const float* x, float s, float* y) {
    using V = FW;
    const V::T vs = V::set1(s);
    int64_t i = 0;
    for (; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::load(x + i), vs));
    for (; i < n; ++i) y[i] = x[i] * s;
}

void scale_mul(int64_t n, const float* x, float s, const float* w, float* y) {
    using V = FW;
    const V::T vs = V::set1(s);
    int64_t i = 0;
    for (; i + V::W <= n; i += V::W) V::store(y + i, V::mul(V::mul(V::load(x + i), vs), V::load(w + i)));
    for (; i < n; ++i) y[i] = x[i] * s * w[i];
}

void rope1(float x0, float x1, float c, float s, float* y0, float* y1) {
    *y0 = __builtin_fmaf(x0, c, -(x1 * s));
    *y1 = __builtin_fmaf(x0, s, x1 * c);
}

// Normal mode: a vector holds W / 2 pairs; cos and sin duplicated per pair from W / 2 values.
template <class V>
void rope_normal(int64_t n_pairs, const float* c, const float* s, const float* x, float* y);

template <>
void rope_normal<F8>(int64_t n_pairs, const float* c, const float* s, const float* x, float* y) {
    int64_t i = 0;
    for (; i + 4 <= n_pairs; i += 4) {
        const __m128 c4 = _mm_loadu_ps(c + i), s4 = _mm_loadu_ps(s + i);
        const __m256 vc = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
        const __m256 vs = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
        const __m256 xv = F8::load(x + 2 * i), xs = F8::swap_pairs(xv);
        // Even lanes: x0 = xv, x1 = xs; odd lanes: x0 = xs, x1 = xv.
        const __m256 even = F8::fms(xv, vc, F8::mul(xs, vs));
        const __m256 odd = F8::fma(xs, vs, F8::mul(xv, vc));
        F8::store(y + 2 * i, F8::blend_odd(even, odd));
    }
    for (; i < n_pairs; ++i) rope1(x[2 * i], x[2 * i + 1], c[i], s[i], y + 2 * i, y + 2 * i + 1);
}

#if defined(__AVX512F__)
template <>
void rope_normal<F16>(int64_t n_pairs, const float* c, const float* s, const float* x, float* y) {
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    int64_t i = 0;
    for (; i + 8 <= n_pairs; i += 8) {
        const __m512 vc = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(c + i)));
        const __m512 vs = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(s + i)));
        const __m512 xv = F16::load(x + 2 * i), xs = F16::swap_pairs(xv);
        const __m512 even = F16::fms(xv, vc, F16::mul(xs, vs));
        const __m512 odd = F16::fma(xs, vs, F16::mul(xv, vc));
        F16::store(y + 2 * i, F16::blend_odd(even, odd));
    }
    rope_normal<F8>(n_pairs - i, c + i, s + i, x + 2 * i, y + 2 * i);
}
#endif

void rope(int64_t n_pairs, bool neox, const float* c, const float* s, const float* x, float* y) {
    using V = FW;
    if (!neox) {
        rope_normal<V>(n_pairs, c, s, x, y);
        return;
    }
    const float* x1 = x + n_pairs;
    float* y1 = y + n_pairs;
    int64_t i = 0;
    for (; i + V::W <= n_pairs; i += V::W) {
        const V::T a = V::load(x + i), b = V::load(x1 + i), vc = V::load(c + i), vs = V::load(s + i);
        V::store(y + i, V::fms(a, vc, V::mul(b, vs)));
        V::store(y1 + i, V::fma(a, vs, V::mul(b, vc)));
    }
    for (; i < n_pairs; ++i) rope1(x[i], x1[i], c[i], s[i], y + i, y1 + i);
}

void conv_silu(int64_t n, int64_t kw, const float* const* u, const float* w, int64_t w_stride, float* y,
               int64_t n_vec) {
    using V = FW;
    const int64_t nv = n_vec < n ? n_vec : n;
    int64_t c = 0;
    for (; c + V::W <= n; c += V::W) {
        V::T acc = V::zero();
        for (int64_t j = 0; j < kw; ++j) acc = V::fma(V::load(u[j] + c), V::load(w + j * w_stride + c), acc);
        if (c + V::W <= nv) {
            acc = silu_v<V>(acc);
        } else {
            alignas(64) float t[V::W];
            V::store(t, acc);
            for (int64_t l = 0; l < V::W; ++l) t[l] = silu1(t[l], c + l < nv);
            acc = V::load(t);
        }
        V::store(y + c, acc);
    }
    for (; c < n; ++c) {
        float acc = 0.0f;
        for (int64_t j = 0; j < kw; ++j) acc = __builtin_fmaf(u[j][c], w[j * w_stride + c], acc);
        y[c] = silu1(acc, c < nv);
    }
}

// The delta rule for columns [j0, j0 + V::W) of one head over all tokens: columns are independent, so the
// block's slice of S stays in L1 while the tokens go by. Per token, as delta_rule_run with every mad fused:
//   S[i] *= decay; acc[i % 64] = fma(S[i], k_i, acc[i % 64]) (i < dk - dk % 64), the 64 accumulators
//   reduced as column_dots does, then fma(S[i], k_i, .) for the tail rows; delta = (v - dots) * b;
//   S[i] = fma(delta, k_i, S[i]); the same dots with q; o = dots * scale.
// Accumulator a = 16 m + l (m < 4, l < 16) takes rows a, a + 64, ...; v_l = (acc_l + acc_{32+l}) +
// (acc_{16+l} + acc_{48+l}); then v_l = v_{l+8} + v_l (l < 8), v_l = v_{l+4} + v_l (l < 4), (v_0 + v_2) + (v_1 + v_3).
template <class V>
void gdn_block(const GdnRun& r, int64_t j0) {
    using T = typename V::T;
    const int64_t dk = r.dk, np = dk - dk % 64;
    // The block's slice of S, copied to rows of V::W contiguous floats (in place, rows dv floats apart,
    // it maps to few cache sets and would not stay in L1), one row of padding after every 64 so that
    // rows i and i + 64, read one after the other, are not 4 KiB apart.
    float* const work = r.work;
    auto row = [&](int64_t i) { return work + (i + i / 64) * V::W; };
    for (int64_t i = 0; i < dk; ++i) V::store(row(i), V::load(r.S + i * r.dv + j0));
    // The reduced dots of the block's columns with x; update(s, i) gives row i's new value of S first.
    auto dots = [&](const float* x, auto update) {
        T v[16];
        for (int64_t l = 0; l < 16; ++l) {
            T a[4];
            for (int64_t m = 0; m < 4; ++m) {
                T acc = V::zero();
                for (int64_t i = 16 * m + l; i < np; i += 64) {
                    const T s = update(V::load(row(i)), i);
                    V::store(row(i), s);
                    acc = V::fma(s, V::set1(x[i]), acc);
                }
                a[m] = acc;
            }
            v[l] = V::add(V::add(a[0], a[2]), V::add(a[1], a[3]));
        }
        for (int64_t l = 0; l < 8; ++l) v[l] = V::add(v[l + 8], v[l]);
        for (int64_t l = 0; l < 4; ++l) v[l] = V::add(v[l + 4], v[l]);
        T out = V::add(V::add(v[0], v[2]), V::add(v[1], v[3]));
        for (int64_t i = np; i < dk; ++i) {
            const T s = update(V::load(row(i)), i);
            V::store(row(i), s);
            out = V::fma(s, V::set1(x[i]), out);
        }
        return out;
    };
    for (int64_t t = 0; t < r.n; ++t) {
        const float* q = r.q + t * r.qk_stride;
        const float* k = r.k + t * r.qk_stride;
        const T decay = V::set1(r.decay[t]);
        const T dk_dots = dots(k, [&](T s, int64_t) { return V::mul(s, decay); });
        const T delta = V::mul(V::sub(V::load(r.v + t * r.v_stride + j0), dk_dots), V::set1(r.b[t]));
        const T dq = dots(q, [&](T s, int64_t i) { return V::fma(delta, V::set1(k[i]), s); });
        V::store(r.o + t * r.o_stride + j0, V::mul(dq, V::set1(r.scale)));
    }
    for (int64_t i = 0; i < dk; ++i) V::store(r.S + i * r.dv + j0, V::load(row(i)));
}

void gdn(const GdnRun& r) {
    int64_t j = 0;
#if defined(__AVX512F__)
    for (; j + 16 <= r.dv; j += 16) gdn_block<F16>(r, j);
#endif
    for (; j + 8 <= r.dv; j += 8) gdn_block<F8>(r, j);
}

}  // namespace

const EwKernels& ew_table() {
    static const EwKernels t = [] {
        EwKernels k{};
#if defined(__AVX512F__)
        k.isa = quant::Isa::Avx512;
#else
        k.isa = quant::Isa::Avx2;
#endif
        k.silu = silu;
        k.swiglu = swiglu;
        k.add = add;
        k.mul = mul;
        k.scale = scale;
        k.scale_mul = scale_mul;
        k.rope = rope;
        k.conv_silu = conv_silu;
        k.gdn = gdn;
        return k;
    }();
    return t;
}

}  // namespace ferry::backend::cpu::FERRY_ISA
