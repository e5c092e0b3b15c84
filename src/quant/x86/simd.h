// Shared helpers of the x86 kernels. Included only by the sources of this folder, which are compiled
// once per instruction set with FERRY_ISA naming the namespace (avx2, avx512) and that set's flags.
//
// Everything here has internal linkage (an unnamed namespace): an inline function compiled with
// -mavx512f must never be merged by the linker with a same-named copy used on an AVX2-only path.
// For the same reason these sources call no inline functions of shared headers (fp16 conversions
// use F16C instructions directly).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/kernels.h"

#ifndef FERRY_ISA
#error "FERRY_ISA must name the instruction set namespace (avx2, avx512)"
#endif

namespace ferry::quant::FERRY_ISA {
namespace {

// VNNI (AVX512-VNNI on 256-bit registers) fuses the u8 x s8 multiply-add; without it, maddubs + madd.
// Both are exact here: the operands never reach maddubs' int16 saturation (|u| <= 128, |s| <= 127).
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
constexpr bool kVnni = true;
#else
constexpr bool kVnni = false;
#endif

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t f2h(float f) { return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// Decode streams weights from memory once: a software prefetch one page ahead of the weights being
// read keeps the loads ahead of the hardware prefetcher, which restarts at every 4 KiB page and every
// work item. Prefetches never fault, so reaching past the end of a tensor is harmless.
constexpr int64_t kPrefetchBytes = 4096;

// Prefetches the cache lines of the Bytes bytes that start kPrefetchBytes after p.
template <int64_t Bytes = 64>
inline void prefetch_ahead(const void* p) {
    for (int64_t l = 0; l < Bytes; l += 64) {
        _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes + l, _MM_HINT_T0);
    }
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sum over groups of 4 of u[i] * s[i] (u unsigned bytes, s signed bytes) -> 8 int32.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
    if constexpr (kVnni) {
        return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
    } else {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
    }
}

// Same for two signed operands (|x| <= 128, |y| <= 127): |x| * (y with x's sign).
inline __m256i dot_s8s8(__m256i x, __m256i y) { return dot_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }

// 16 bytes of packed nibbles -> 32 bytes: low nibbles first (elements 0..15), then high nibbles.
inline __m256i unpack_nibbles_16(const uint8_t* q) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

// 32 bits -> 32 bytes, byte j = 0xff if bit j is set, else 0.
inline __m256i bits_to_bytes(uint32_t bits) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x7fbfdfeff7fbfdfe));
    v = _mm256_or_si256(v, bit);
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

// Packs 4 x 8 int32 (each in [-128, 127]) into 32 int8 in element order.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace
}  // namespace ferry::quant::FERRY_ISA
