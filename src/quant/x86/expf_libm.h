// libm's expf on 8 or 16 lanes, bit for bit: llama.cpp's one-row flash attention calls the C library's
// expf once per key, so ferry's must produce the same float for every argument.
//
// The x86-64 glibc (2.28 and later) runs __expf_fma on machines with AVX2 and FMA, every machine these
// kernels run on. Its arithmetic, in double: z = x * 32/ln2; k = round(z) by adding 1.5 * 2^52 in the
// same fused operation (kd = fma(32/ln2, x, 1.5 * 2^52), whose low bits are k); r = fma(32/ln2, x,
// -(kd - 1.5 * 2^52)); s = 2^(k/32) as a table entry 2^((k mod 32)/32) whose exponent field is raised
// by k div 32 (the entries are stored minus (i << 47), so adding k << 47 does both); then
// y = fma(fma(C0, r, C1), r * r, fma(C2, r, 1)) * s, rounded to float once. Arguments with |x| >= 88
// (exponent field above that of 88.0) and NaN take glibc's special-case paths (overflow, underflow,
// infinities): those lanes call the library. The constants are the library's (the nearest doubles to
// 2^(i/32), and its polynomial); KernelTable::expf_libm checks the result against the library when the
// kernel table is built and calls the library instead if they differ (another C library or version).
#pragma once

#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {

// Whether the vector path below gives this process's C library's results (probed once, expf_libm.cpp).
bool expf_libm_agrees();

namespace {

namespace expf_libm_data {
// bits(2^(i/32)) - (i << 47), i = 0..31.
alignas(64) constexpr uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;
constexpr double kC0 = 0x1.c6af84b912394p-20;
constexpr double kC1 = 0x1.ebfce50fac4f3p-13;
constexpr double kC2 = 0x1.62e42ff0c52d6p-6;
// Exponent fields (bits 20..30 of the float) above this take the library's special cases.
constexpr uint32_t kTopLimit = 0x42a;
}  // namespace expf_libm_data

// Lanes whose argument needs the library (|x| >= 88, infinities, NaN).
inline int expf_libm_special_mask(__m256 x) {
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const __m256i over = _mm256_cmpgt_epi32(top, _mm256_set1_epi32(int(expf_libm_data::kTopLimit)));
    return _mm256_movemask_ps(_mm256_castsi256_ps(over));
}

#if defined(__AVX512F__)
// 8 arguments (as doubles) -> 8 results (as doubles, not yet rounded to float).
inline __m512d expf_libm_pd(__m512d xd) {
    using namespace expf_libm_data;
    const __m512d inv = _mm512_set1_pd(kInvLn2N), shift = _mm512_set1_pd(kShift);
    const __m512d kd_shifted = _mm512_fmadd_pd(inv, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd_shifted);
    const __m512d r = _mm512_fmsub_pd(inv, xd, _mm512_sub_pd(kd_shifted, shift));
    const __m512i* tab = reinterpret_cast<const __m512i*>(kTable);
    const __m512i lo = _mm512_permutex2var_epi64(_mm512_load_si512(tab), ki, _mm512_load_si512(tab + 1));
    const __m512i hi = _mm512_permutex2var_epi64(_mm512_load_si512(tab + 2), ki, _mm512_load_si512(tab + 3));
    const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, lo, hi), _mm512_maskz_slli_epi64(0xff, ki, 47));
    const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(kC0), r, _mm512_set1_pd(kC1));
    const __m512d y =
        _mm512_fmadd_pd(z, _mm512_mul_pd(r, r), _mm512_fmadd_pd(_mm512_set1_pd(kC2), r, _mm512_set1_pd(1.0)));
    return _mm512_mul_pd(y, _mm512_castsi512_pd(t));
}

// 8 lanes, without the special cases.
// (The maskz forms: GCC 12 warns that the plain ones' undefined merge source is uninitialized.)
inline __m256 expf_libm_core(__m256 x) {
    return _mm512_maskz_cvtpd_ps(0xff, expf_libm_pd(_mm512_maskz_cvtps_pd(0xff, x)));
}
#else
// 4 arguments (as doubles) -> 4 results (as doubles, not yet rounded to float).
inline __m256d expf_libm_pd(__m256d xd) {
    using namespace expf_libm_data;
    const __m256d inv = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift);
    const __m256d kd_shifted = _mm256_fmadd_pd(inv, xd, shift);
    const __m256i ki = _mm256_castpd_si256(kd_shifted);
    const __m256d r = _mm256_fmsub_pd(inv, xd, _mm256_sub_pd(kd_shifted, shift));
    const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
    const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), idx, 8),
                                       _mm256_slli_epi64(ki, 47));
    const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(kC0), r, _mm256_set1_pd(kC1));
    const __m256d y =
        _mm256_fmadd_pd(z, _mm256_mul_pd(r, r), _mm256_fmadd_pd(_mm256_set1_pd(kC2), r, _mm256_set1_pd(1.0)));
    return _mm256_mul_pd(y, _mm256_castsi256_pd(t));
}

// 8 lanes, without the special cases.
inline __m256 expf_libm_core(__m256 x) {
    const __m128 lo = _mm256_cvtpd_ps(expf_libm_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    const __m128 hi = _mm256_cvtpd_ps(expf_libm_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    return _mm256_set_m128(hi, lo);
}
#endif

// expf of 8 lanes, the special-case lanes through the library.
inline __m256 expf_libm8(__m256 x) {
    __m256 y = expf_libm_core(x);
    if (const int special = expf_libm_special_mask(x); special != 0) {
        alignas(32) float xs[8], ys[8];
        _mm256_store_ps(xs, x);
        _mm256_store_ps(ys, y);
        for (int i = 0; i < 8; ++i)
            if (special & (1 << i)) ys[i] = __builtin_expf(xs[i]);
        y = _mm256_load_ps(ys);
    }
    return y;
}

// y[i] = expf(x[i]) for n values, as the library computes them.
inline void expf_libm_n(int64_t n, const float* x, float* y) {
    const int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8) _mm256_storeu_ps(y + i, expf_libm8(_mm256_loadu_ps(x + i)));
    if (n8 < n) {
        // The tail through one more vector, in a zero-padded copy.
        alignas(32) float xs[8] = {}, ys[8];
        std::memcpy(xs, x + n8, size_t(n - n8) * sizeof(float));
        _mm256_store_ps(ys, expf_libm8(_mm256_load_ps(xs)));
        std::memcpy(y + n8, ys, size_t(n - n8) * sizeof(float));
    }
}

// y[i] = expf(x[i]) as the C library computes it: the vector path if it agrees with the library,
// otherwise the library itself.
inline void expf_library_n(int64_t n, const float* x, float* y) {
    static const bool vector = expf_libm_agrees();
    if (vector) {
        expf_libm_n(n, x, y);
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = __builtin_expf(x[i]);
    }
}

}  // namespace
}  // namespace ferry::quant::FERRY_ISA
