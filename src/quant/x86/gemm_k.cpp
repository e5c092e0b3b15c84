// GEMM tiles for the K-quants Q4_K, Q5_K, Q6_K against Q8_K activations.
//
// A super-block (256 elements) is unpacked once per tile into eight 32-byte vectors of unsigned codes
// plus int16 multiplier vectors for its sub-block scales, then used for every column of the tile:
//   sumi (8 x int32) = sum over the 8 pieces of madd(maddubs(codes, a.qs), scale multipliers)
//   msum (8 x int32) = madd(a.bsums, min multipliers)         (the per-sub-block offsets)
// Q4_K / Q5_K: acc += sumi * (a.d * d) and accm += msum * (a.d * dmin); result hsum(acc) - hsum(accm),
// the reference's formula. Q6_K stores codes + 32: its offset is exact in integers,
// sumi - 32 * sum_j sc_j * bsums_j, so it is folded in before the conversion to float.
// Every column runs the same operations whatever the tile width (see gemm_q32.cpp).
#include "quant/q4_k.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {
namespace {

#if defined(__AVX512F__)
constexpr int kMaxCols = 8;
#else
constexpr int kMaxCols = 4;
#endif

struct UnpackedK {
    __m256i q[8];   // codes of elements 32i .. 32i + 31, unsigned
    __m256i sc[8];  // int16 multipliers for the 16 pairs maddubs makes of piece i
    __m256i mins;   // int16 multipliers for a.bsums[0..15]
    float d, dmin;
};

// The 6-bit scale and min codes of Q4_K / Q5_K (see q4_k.h), all eight at once.
inline void scales_k4(const uint8_t s[12], int sc[8], int m[8]) {
    for (int j = 0; j < 4; ++j) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 15) | (s[j] >> 6) << 4;
        m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
    }
}

inline void fill_k4_scales(const uint8_t scales[12], UnpackedK& u) {
    int sc[8], m[8];
    scales_k4(scales, sc, m);
    for (int j = 0; j < 8; ++j) u.sc[j] = _mm256_set1_epi16(int16_t(sc[j]));
    u.mins = _mm256_setr_epi16(int16_t(m[0]), int16_t(m[0]), int16_t(m[1]), int16_t(m[1]), int16_t(m[2]), int16_t(m[2]),
                               int16_t(m[3]), int16_t(m[3]), int16_t(m[4]), int16_t(m[4]), int16_t(m[5]), int16_t(m[5]),
                               int16_t(m[6]), int16_t(m[6]), int16_t(m[7]), int16_t(m[7]));
}

struct KQ4K {
    using W = BlockQ4K;
    static constexpr bool kIntMin = false;
    static void unpack(const W& w, UnpackedK& u) {
        const __m256i low = _mm256_set1_epi8(15);
        for (int g = 0; g < 4; ++g) {
            const __m256i q = load256(w.qs + 32 * g);
            u.q[2 * g] = _mm256_and_si256(q, low);
            u.q[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
        }
        fill_k4_scales(w.scales, u);
        u.d = h2f(w.d);
        u.dmin = h2f(w.dmin);
    }
};

struct KQ5K {
    using W = BlockQ5K;
    static constexpr bool kIntMin = false;
    static void unpack(const W& w, UnpackedK& u) {
        const __m256i low = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
        const __m256i qh = load256(w.qh);
        for (int g = 0; g < 4; ++g) {
            const __m256i q = load256(w.qs + 32 * g);
            const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), one);
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g + 1), one);
            u.q[2 * g] = _mm256_or_si256(_mm256_and_si256(q, low), _mm256_slli_epi16(h0, 4));
            u.q[2 * g + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), _mm256_slli_epi16(h1, 4));
        }
        fill_k4_scales(w.scales, u);
        u.d = h2f(w.d);
        u.dmin = h2f(w.dmin);
    }
};

struct KQ6K {
    using W = BlockQ6K;
    static constexpr bool kIntMin = true;
    static void unpack(const W& w, UnpackedK& u) {
        const __m256i low = _mm256_set1_epi8(15), two = _mm256_set1_epi8(3);
        for (int n = 0; n < 2; ++n) {
            const __m256i l0 = load256(w.ql + 64 * n);
            const __m256i l1 = load256(w.ql + 64 * n + 32);
            const __m256i h = load256(w.qh + 32 * n);
            auto hi = [&](int shift) {
                return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, shift), two), 4);
            };
            u.q[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(l0, low), hi(0));
            u.q[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(l1, low), hi(2));
            u.q[4 * n + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), hi(4));
            u.q[4 * n + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), hi(6));
        }
        for (int i = 0; i < 8; ++i) {
            u.sc[i] = _mm256_set_m128i(_mm_set1_epi16(w.scales[2 * i + 1]), _mm_set1_epi16(w.scales[2 * i]));
        }
        u.mins = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
        u.d = h2f(w.d);
        u.dmin = 0.0f;
    }
};

template <class K, int NC>
void tile(const GemmArgs& g, int64_t c0) {
    using W = typename K::W;
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a[NC];
    for (int c = 0; c < NC; ++c) {
        a[c] = reinterpret_cast<const BlockQ8K*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
    }
    UnpackedK u;
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc[NC], accm[NC];
        for (int c = 0; c < NC; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            if constexpr (NC == 1) prefetch_ahead<int64_t(sizeof(W))>(w + b);
            K::unpack(w[b], u);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8K& ab = a[c][b];
                __m256i sumi = _mm256_setzero_si256();
                for (int i = 0; i < 8; ++i) {
                    const __m256i p = _mm256_maddubs_epi16(u.q[i], load256(ab.qs + 32 * i));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, u.sc[i]));
                }
                const __m256i msum = _mm256_madd_epi16(load256(ab.bsums), u.mins);
                if constexpr (K::kIntMin) {
                    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(msum, 5));
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ab.d * u.d), acc[c]);
                } else {
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ab.d * u.d), acc[c]);
                    accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(ab.d * u.dmin), accm[c]);
                }
            }
        }
        for (int c = 0; c < NC; ++c) {
            g.y[(c0 + c) * g.ldy + r] = K::kIntMin ? hsum(acc[c]) : hsum(acc[c]) - hsum(accm[c]);
        }
    }
}

template <class K>
void gemm(const GemmArgs& g) {
    int64_t c = 0;
    for (; c + kMaxCols <= g.nc; c += kMaxCols) tile<K, kMaxCols>(g, c);
    switch (g.nc - c) {
        case 0: break;
        case 1: tile<K, 1>(g, c); break;
        case 2: tile<K, 2>(g, c); break;
        case 3: tile<K, 3>(g, c); break;
        case 4: tile<K, 4>(g, c); break;
        case 5: tile<K, 5>(g, c); break;
        case 6: tile<K, 6>(g, c); break;
        default: tile<K, 7>(g, c); break;
    }
}

}  // namespace

void fill_gemm_k(KernelTable& t) {
    t.gemm[int(GgmlType::Q4_K)] = gemm<KQ4K>;
    t.gemm[int(GgmlType::Q5_K)] = gemm<KQ5K>;
    t.gemm[int(GgmlType::Q6_K)] = gemm<KQ6K>;
}

}  // namespace ferry::quant::FERRY_ISA
