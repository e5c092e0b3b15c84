// GEMM tiles for the K-quants Q4_K, Q5_K, Q6_K against Q8_K activations, in ggml's float order (the
// golden logits are ggml's; a different order flips roundings of the next re-quantized input).
//
// A super-block (256 elements) is unpacked once per tile into eight 32-byte vectors of unsigned codes
// plus int16 multiplier vectors for its sub-block scales, then used for every column of the tile.
// Integer sums are exact; what matters is where they become floats:
//   - tile (ggml's x86 vec_dot_q*_K_q8_K): sumi (8 x int32, lane l = bytes 4l..4l+3 of every 32-byte
//     piece times its scale) -> acc += float(sumi) * (a.d * d), 8 lanes, hsum at the end.
//     Q4_K: the mins in 4 lanes, lane i = sub-blocks 2i and 2i+1 (bsums added pairwise first):
//       accm += float(mins) * (a.d * dmin); result hsum(acc) - (accm0 + accm2 + (accm1 + accm3)).
//     Q5_K: the mins summed in integers per super-block: summs += float(imin) * (a.d * dmin) (scalar);
//       result hsum(acc) - summs. With AVX-512 a decode's single column takes gemv_q5k_zmm (the same
//       integers from 512-bit registers).
//     Q6_K: the -32 offset applied per 16-bit pair before the scales (maddubs(q, a) - maddubs(32, a)),
//       so every lane carries its own offset; result hsum(acc). With 4 or more columns, groups of 16
//       (AVX-512) or 8 rows run with the rows in the float lanes (q6k_rows_gemm): the same 8 float
//       chains per output, as 8 vectors, a super-block unpacked once per 64 columns. With AVX-512 a
//       decode's single column takes gemv_q6k_zmm: the same 8 int32 lanes formed two pieces per
//       512-bit register.
//   - tile_q4k_8x8 (ggml's repacked Q4_K, q4_K_8x8_q8_K, which llama.cpp uses for Q4_K weights with a
//     multiple of 8 rows). llama.cpp multiplies the first nc - nc % 4 columns with ggml_gemm_q4_K_8x8_q8_K
//     and each remaining column with ggml_gemv_q4_K_8x8_q8_K, whose float orders differ:
//       GEMM: per pair of sub-blocks (64 elements) in order, acc = fma(float(isum), d * a.d, acc) and
//             accm = fma(float(imin), dmin * a.d, accm);
//       GEMV: the pairs' isum and imin summed in integers per super-block, then one fma each per
//             super-block;
//     result acc - accm. gemm_q4k_8x8 takes the GEMV order for products of 1..3 columns (a decode's single
//     column, as in llama.cpp) and the GEMM order for every column of a wider one, its last nc % 4 too:
//     then a prompt split into micro-batches gets the bits of one large batch (llama.cpp's for a batch of
//     a multiple of 4 tokens, as the golden files' 200-token batches) instead of llama.cpp's own
//     dependence on the split.
//     GEMM (q4k_rows_gemm): each group of 16 (AVX-512) or 8 rows runs with the rows in the float lanes
//     (lane r = row r's chain); a super-block of the group is unpacked once into that lane order
//     (block_q4_Kx8's, unpacked) for up to 64 columns, so a column's integer sums need only broadcast
//     activations (VNNI dpbusd, else maddubs). GEMV (tile_q4k_8rows): 8 rows per float vector, the
//     8 rows' integer sums by one transpose-add; with AVX-512 these 1..3 columns take
//     gemv_q4k_8rows_zmm, the same integers from 512-bit registers (two sub-blocks per register, scales
//     by dpwssd). The rows after the last group of 8 one at a time.
// For the other tiles every column runs the same operations whatever the tile width (see gemm_q32.cpp).
#include <algorithm>

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
    int m[8];       // Q4_K / Q5_K: the sub-block mins as integers
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
    for (int j = 0; j < 8; ++j) u.m[j] = m[j];
    for (int j = 0; j < 8; ++j) u.sc[j] = _mm256_set1_epi16(int16_t(sc[j]));
    u.mins = _mm256_setr_epi16(int16_t(m[0]), int16_t(m[0]), int16_t(m[1]), int16_t(m[1]), int16_t(m[2]), int16_t(m[2]),
                               int16_t(m[3]), int16_t(m[3]), int16_t(m[4]), int16_t(m[4]), int16_t(m[5]), int16_t(m[5]),
                               int16_t(m[6]), int16_t(m[6]), int16_t(m[7]), int16_t(m[7]));
}

// The Q8_K activation blocks of columns c0 .. c0 + NC - 1, and the Q4_K weight rows r0 .. r0 + 7.
template <int NC>
inline void act_columns(const GemmArgs& g, int64_t c0, const BlockQ8K* (&a)[NC]) {
    for (int c = 0; c < NC; ++c)
        a[c] = reinterpret_cast<const BlockQ8K*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
}
inline void q4k_rows8(const GemmArgs& g, int64_t r0, const BlockQ4K* (&w)[8]) {
    for (int r = 0; r < 8; ++r)
        w[r] = reinterpret_cast<const BlockQ4K*>(static_cast<const uint8_t*>(g.w) + (r0 + r) * g.w_stride);
}

enum class MinOrder { Lanes4, Scalar, Offset32 };

struct KQ4K {
    using W = BlockQ4K;
    static constexpr MinOrder kMins = MinOrder::Lanes4;
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
    static constexpr MinOrder kMins = MinOrder::Scalar;
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
    static constexpr MinOrder kMins = MinOrder::Offset32;
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

// One fused multiply-add (an intrinsic, not std::fma: no library inline compiled with these flags).
inline float fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// The integer mins of sub-blocks 2i and 2i+1 (Q4_K / Q5_K): m * (bsums of the 32 elements).
inline int pair_mins(const UnpackedK& u, const BlockQ8K& a, int i) {
    return u.m[2 * i] * (a.bsums[4 * i] + a.bsums[4 * i + 1]) +
           u.m[2 * i + 1] * (a.bsums[4 * i + 2] + a.bsums[4 * i + 3]);
}

template <class K, int NC>
void tile(const GemmArgs& g, int64_t c0) {
    using W = typename K::W;
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a[NC];
    act_columns(g, c0, a);
    const __m256i m32 = _mm256_set1_epi8(32);
    UnpackedK u;
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc[NC];
        __m128 accm[NC];
        float summs[NC];
        for (int c = 0; c < NC; ++c) {
            acc[c] = _mm256_setzero_ps();
            accm[c] = _mm_setzero_ps();
            summs[c] = 0.0f;
        }
        for (int64_t b = 0; b < nb; ++b) {
            if constexpr (NC == 1) prefetch_ahead<int64_t(sizeof(W))>(w + b);
            K::unpack(w[b], u);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8K& ab = a[c][b];
                __m256i sumi = _mm256_setzero_si256();
                for (int i = 0; i < 8; ++i) {
                    const __m256i aq = load256(ab.qs + 32 * i);
                    __m256i p = _mm256_maddubs_epi16(u.q[i], aq);
                    if constexpr (K::kMins == MinOrder::Offset32)
                        p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(m32, aq));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, u.sc[i]));
                }
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ab.d * u.d), acc[c]);
                if constexpr (K::kMins == MinOrder::Lanes4) {
                    const __m128i mins = _mm_setr_epi32(pair_mins(u, ab, 0), pair_mins(u, ab, 1), pair_mins(u, ab, 2),
                                                        pair_mins(u, ab, 3));
                    accm[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(mins), _mm_set1_ps(ab.d * u.dmin), accm[c]);
                } else if constexpr (K::kMins == MinOrder::Scalar) {
                    const int imin =
                        pair_mins(u, ab, 0) + pair_mins(u, ab, 1) + pair_mins(u, ab, 2) + pair_mins(u, ab, 3);
                    summs[c] = fma1(float(imin), ab.d * u.dmin, summs[c]);
                }
            }
        }
        for (int c = 0; c < NC; ++c) {
            float v = hsum(acc[c]);
            if constexpr (K::kMins == MinOrder::Lanes4) {
                const __m128 h = _mm_add_ps(accm[c], _mm_movehl_ps(accm[c], accm[c]));
                v -= _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
            } else if constexpr (K::kMins == MinOrder::Scalar) {
                v -= summs[c];
            }
            g.y[(c0 + c) * g.ldy + r] = v;
        }
    }
}

// llama.cpp's repacked Q4_K order (see the top): one float chain per output, over pairs of sub-blocks
// for 4-column tiles (GEMM), over super-blocks for narrower ones (GEMV, one column at a time).
// One row at a time: the rows from r_begin on (those after the last group of 8).
template <int NC>
void tile_q4k_rows(const GemmArgs& g, int64_t c0, int64_t r_begin) {
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a[NC];
    act_columns(g, c0, a);
    UnpackedK u;
    for (int64_t r = r_begin; r < g.nr; ++r) {
        const BlockQ4K* w = reinterpret_cast<const BlockQ4K*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        float acc[NC], accm[NC];
        for (int c = 0; c < NC; ++c) acc[c] = accm[c] = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
            if constexpr (NC == 1) prefetch_ahead<int64_t(sizeof(BlockQ4K))>(w + b);
            KQ4K::unpack(w[b], u);
            for (int c = 0; c < NC; ++c) {
                const BlockQ8K& ab = a[c][b];
                const float dd = u.d * ab.d, dm = u.dmin * ab.d;
                int isum = 0, imin = 0;  // GEMV: the super-block's sums
                for (int i = 0; i < 4; ++i) {
                    const __m256i s0 =
                        _mm256_madd_epi16(_mm256_maddubs_epi16(u.q[2 * i], load256(ab.qs + 64 * i)), u.sc[2 * i]);
                    const __m256i s1 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(u.q[2 * i + 1], load256(ab.qs + 64 * i + 32)), u.sc[2 * i + 1]);
                    const int pair_sum = hsum_i32(_mm256_add_epi32(s0, s1)), pair_min = pair_mins(u, ab, i);
                    if constexpr (NC < 4) {
                        isum += pair_sum;
                        imin += pair_min;
                    } else {
                        acc[c] = fma1(float(pair_sum), dd, acc[c]);
                        accm[c] = fma1(float(pair_min), dm, accm[c]);
                    }
                }
                if constexpr (NC < 4) {
                    acc[c] = fma1(float(isum), dd, acc[c]);
                    accm[c] = fma1(float(imin), dm, accm[c]);
                }
            }
        }
        for (int c = 0; c < NC; ++c) g.y[(c0 + c) * g.ldy + r] = acc[c] - accm[c];
    }
}

// Lane r = the sum of v[r]'s 8 lanes (exact integer sums, any order).
inline __m256i transpose_add8(const __m256i v[8]) {
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                            _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

// The GEMV order of tile_q4k_rows (NC < 4 columns), for 8 rows at once: lane r of every vector belongs
// to row r0 + r, so each output still runs its own chain of single-rounding fmas (_mm256_fmadd_ps lane =
// fma1), with dd lane r = d[r] * a.d rounded once as in tile_q4k_rows.
template <int NC>
void tile_q4k_8rows(const GemmArgs& g, int64_t c0, int64_t r0) {
    static_assert(NC < 4, "4-column tiles take the GEMM order: q4k_rows_gemm");
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a[NC];
    act_columns(g, c0, a);
    const BlockQ4K* w[8];
    q4k_rows8(g, r0, w);
    UnpackedK u[8];
    __m256 acc[NC], accm[NC];
    for (int c = 0; c < NC; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        for (int r = 0; r < 8; ++r) {
            prefetch_ahead<int64_t(sizeof(BlockQ4K))>(w[r] + b);
            KQ4K::unpack(w[r][b], u[r]);
        }
        const __m256 d = _mm256_setr_ps(u[0].d, u[1].d, u[2].d, u[3].d, u[4].d, u[5].d, u[6].d, u[7].d);
        const __m256 dmin =
            _mm256_setr_ps(u[0].dmin, u[1].dmin, u[2].dmin, u[3].dmin, u[4].dmin, u[5].dmin, u[6].dmin, u[7].dmin);
        __m256i m[8];  // lane r = row r's min of sub-block j
        for (int j = 0; j < 8; ++j) {
            m[j] = _mm256_setr_epi32(u[0].m[j], u[1].m[j], u[2].m[j], u[3].m[j], u[4].m[j], u[5].m[j], u[6].m[j],
                                     u[7].m[j]);
        }
        for (int c = 0; c < NC; ++c) {
            const BlockQ8K& ab = a[c][b];
            const __m256 ad = _mm256_set1_ps(ab.d);
            const __m256 dd = _mm256_mul_ps(d, ad), dm = _mm256_mul_ps(dmin, ad);
            __m256i isum = _mm256_setzero_si256(), imin = _mm256_setzero_si256();  // GEMV: the super-block's sums
            for (int i = 0; i < 4; ++i) {
                const __m256i a0 = load256(ab.qs + 64 * i), a1 = load256(ab.qs + 64 * i + 32);
                __m256i s[8];
                for (int r = 0; r < 8; ++r) {
                    const __m256i s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u[r].q[2 * i], a0), u[r].sc[2 * i]);
                    const __m256i s1 =
                        _mm256_madd_epi16(_mm256_maddubs_epi16(u[r].q[2 * i + 1], a1), u[r].sc[2 * i + 1]);
                    s[r] = _mm256_add_epi32(s0, s1);
                }
                const __m256i pair_sum = transpose_add8(s);
                const __m256i pair_min = _mm256_add_epi32(
                    _mm256_mullo_epi32(m[2 * i], _mm256_set1_epi32(ab.bsums[4 * i] + ab.bsums[4 * i + 1])),
                    _mm256_mullo_epi32(m[2 * i + 1], _mm256_set1_epi32(ab.bsums[4 * i + 2] + ab.bsums[4 * i + 3])));
                isum = _mm256_add_epi32(isum, pair_sum);
                imin = _mm256_add_epi32(imin, pair_min);
            }
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), dd, acc[c]);
            accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), dm, accm[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(g.y + (c0 + c) * g.ldy + r0, _mm256_sub_ps(acc[c], accm[c]));
}

// Vectors of 8 (Y8) or 16 (Z16) rows of a repacked-Q4_K tile: the operations the column loop needs.
struct Y8 {
    using I = __m256i;
    using F = __m256;
    static constexpr int kRows = 8;
    static I set1(int32_t v) { return _mm256_set1_epi32(v); }
    static F set1(float v) { return _mm256_set1_ps(v); }
    static F zero() { return _mm256_setzero_ps(); }
    static I add(I a, I b) { return _mm256_add_epi32(a, b); }
    static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
    static I madd(I a, I b) { return _mm256_madd_epi16(a, b); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F fmadd(I i, F b, F c) { return _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), b, c); }
    static void store_diff(float* y, F a, F b) { _mm256_storeu_ps(y, _mm256_sub_ps(a, b)); }
    static F add(F a, F b) { return _mm256_add_ps(a, b); }
    static void store(float* y, F a) { _mm256_storeu_ps(y, a); }
    // acc + madd(a, b) in int32 (one instruction with VNNI).
    static I madd_acc(I acc, I a, I b) {
        if constexpr (kVnni) {
            return _mm256_dpwssd_epi32(acc, a, b);
        } else {
            return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
        }
    }
    static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
    static I unpacklo32(I a, I b) { return _mm256_unpacklo_epi32(a, b); }
    static I unpackhi32(I a, I b) { return _mm256_unpackhi_epi32(a, b); }
    static I unpacklo64(I a, I b) { return _mm256_unpacklo_epi64(a, b); }
    static I unpackhi64(I a, I b) { return _mm256_unpackhi_epi64(a, b); }
    // 128-bit lane 0 (or 1) of a, then of b.
    static I lanes128(I a, I b, bool one) {
        return one ? _mm256_permute2x128_si256(a, b, 0x31) : _mm256_permute2x128_si256(a, b, 0x20);
    }
};

// One super-block of V::kRows rows with the rows in the lanes (lane r = row r0 + r), the order of
// llama.cpp's block_q4_Kx8 but unpacked: a column then needs no per-row reduction, only broadcast
// activations.
template <class V>
struct RowsQ4K {
    typename V::I q[8][8];  // [sub-block j][k]: lane r = codes 4k .. 4k + 3 of row r's sub-block j (a byte each)
    typename V::I sc[8];    // lane r = row r's scale of sub-block j (VNNI: int32; else int16 twice)
    typename V::I mins[4];  // lane r = row r's mins of sub-blocks 2i and 2i + 1 (int16 each)
    typename V::F d, dmin;
};

// v[k] lane r <- v[r] lane k, in every 256-bit half.
template <class V>
inline void transpose8_epi32(typename V::I v[8]) {
    typename V::I t[8], u[8];
    for (int p = 0; p < 4; ++p) {
        t[2 * p] = V::unpacklo32(v[2 * p], v[2 * p + 1]);
        t[2 * p + 1] = V::unpackhi32(v[2 * p], v[2 * p + 1]);
    }
    for (int h = 0; h < 2; ++h) {
        u[4 * h + 0] = V::unpacklo64(t[4 * h], t[4 * h + 2]);
        u[4 * h + 1] = V::unpackhi64(t[4 * h], t[4 * h + 2]);
        u[4 * h + 2] = V::unpacklo64(t[4 * h + 1], t[4 * h + 3]);
        u[4 * h + 3] = V::unpackhi64(t[4 * h + 1], t[4 * h + 3]);
    }
    for (int k = 0; k < 4; ++k) {
        v[k] = V::lanes128(u[k], u[k + 4], false);
        v[k + 4] = V::lanes128(u[k], u[k + 4], true);
    }
}

// The scales, mins and d / dmin of super-block b of the rows w[0 .. N-1], lane r = row r.
template <int N>
struct LaneScalesQ4K {
    alignas(64) int32_t sc[8][N];  // [j][r]
    alignas(64) int32_t mp[4][N];  // [i][r]
    alignas(64) float d[N], dmin[N];

    LaneScalesQ4K(const BlockQ4K* const w[N], int64_t b) {
        for (int r = 0; r < N; ++r) {
            int s[8], m[8];
            scales_k4(w[r][b].scales, s, m);
            for (int j = 0; j < 8; ++j) sc[j][r] = kVnni ? s[j] : s[j] * 0x10001;
            for (int i = 0; i < 4; ++i) mp[i][r] = m[2 * i] | m[2 * i + 1] << 16;
            d[r] = h2f(w[r][b].d);
            dmin[r] = h2f(w[r][b].dmin);
        }
    }
};

// Super-block b of the rows w[0 .. 7].
inline void unpack_rows(const BlockQ4K* const w[8], int64_t b, RowsQ4K<Y8>& u) {
    const __m256i low = _mm256_set1_epi8(15);
    for (int i = 0; i < 4; ++i) {
        __m256i t[8];
        for (int r = 0; r < 8; ++r) t[r] = load256(w[r][b].qs + 32 * i);
        transpose8_epi32<Y8>(t);
        for (int k = 0; k < 8; ++k) {
            u.q[2 * i][k] = _mm256_and_si256(t[k], low);
            u.q[2 * i + 1][k] = _mm256_and_si256(_mm256_srli_epi16(t[k], 4), low);
        }
    }
    const LaneScalesQ4K<8> ls(w, b);
    for (int j = 0; j < 8; ++j) u.sc[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(ls.sc[j]));
    for (int i = 0; i < 4; ++i) u.mins[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(ls.mp[i]));
    u.d = _mm256_load_ps(ls.d);
    u.dmin = _mm256_load_ps(ls.dmin);
}

inline int32_t load4(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Lane r = row r's scale times its dot product of sub-block j with the 32 activations aq (exact).
inline __m256i subblock_dot(const RowsQ4K<Y8>& u, int j, const int8_t* aq) {
    if constexpr (kVnni) {
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (int k = 0; k < 8; k += 2) {
            s0 = _mm256_dpbusd_epi32(s0, u.q[j][k], _mm256_set1_epi32(load4(aq + 4 * k)));
            s1 = _mm256_dpbusd_epi32(s1, u.q[j][k + 1], _mm256_set1_epi32(load4(aq + 4 * k + 4)));
        }
        return _mm256_mullo_epi32(_mm256_add_epi32(s0, s1), u.sc[j]);
    } else {
        // int16 sums of 8 products: |sum| <= 8 * 15 * 128 < 2^15.
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (int k = 0; k < 8; k += 2) {
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(u.q[j][k], _mm256_set1_epi32(load4(aq + 4 * k))));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(u.q[j][k + 1], _mm256_set1_epi32(load4(aq + 4 * k + 4))));
        }
        return _mm256_add_epi32(_mm256_madd_epi16(s0, u.sc[j]), _mm256_madd_epi16(s1, u.sc[j]));
    }
}

#if defined(__AVX512F__)
struct Z16 {
    using I = __m512i;
    using F = __m512;
    static constexpr int kRows = 16;
    static I set1(int32_t v) { return _mm512_set1_epi32(v); }
    static F set1(float v) { return _mm512_set1_ps(v); }
    static F zero() { return _mm512_setzero_ps(); }
    static I add(I a, I b) { return _mm512_add_epi32(a, b); }
    static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
    static I madd(I a, I b) { return _mm512_madd_epi16(a, b); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F fmadd(I i, F b, F c) { return _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), b, c); }
    static void store_diff(float* y, F a, F b) { _mm512_storeu_ps(y, _mm512_sub_ps(a, b)); }
    static F add(F a, F b) { return _mm512_add_ps(a, b); }
    static void store(float* y, F a) { _mm512_storeu_ps(y, a); }
    static I madd_acc(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
    static I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
    static I unpacklo32(I a, I b) { return _mm512_unpacklo_epi32(a, b); }
    static I unpackhi32(I a, I b) { return _mm512_unpackhi_epi32(a, b); }
    static I unpacklo64(I a, I b) { return _mm512_unpacklo_epi64(a, b); }
    static I unpackhi64(I a, I b) { return _mm512_unpackhi_epi64(a, b); }
    // Y8::lanes128 in each 256-bit half.
    static I lanes128(I a, I b, bool one) {
        return _mm512_permutex2var_epi64(
            a, one ? _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15) : _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), b);
    }
};

// Super-block b of the rows w[0 .. 15]: rows 0..7 in the low 256-bit half, 8..15 in the high one.
inline void unpack_rows(const BlockQ4K* const w[16], int64_t b, RowsQ4K<Z16>& u) {
    const __m512i low = _mm512_set1_epi8(15);
    for (int i = 0; i < 4; ++i) {
        __m512i t[8];
        for (int r = 0; r < 8; ++r) {
            t[r] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(w[r][b].qs + 32 * i)),
                                      load256(w[r + 8][b].qs + 32 * i), 1);
        }
        transpose8_epi32<Z16>(t);
        for (int k = 0; k < 8; ++k) {
            u.q[2 * i][k] = _mm512_and_si512(t[k], low);
            u.q[2 * i + 1][k] = _mm512_and_si512(_mm512_srli_epi16(t[k], 4), low);
        }
    }
    const LaneScalesQ4K<16> ls(w, b);
    for (int j = 0; j < 8; ++j) u.sc[j] = _mm512_load_si512(ls.sc[j]);
    for (int i = 0; i < 4; ++i) u.mins[i] = _mm512_load_si512(ls.mp[i]);
    u.d = _mm512_load_ps(ls.d);
    u.dmin = _mm512_load_ps(ls.dmin);
}

inline __m512i subblock_dot(const RowsQ4K<Z16>& u, int j, const int8_t* aq) {
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
        s0 = _mm512_dpbusd_epi32(s0, u.q[j][k], _mm512_set1_epi32(load4(aq + 4 * k)));
        s1 = _mm512_dpbusd_epi32(s1, u.q[j][k + 1], _mm512_set1_epi32(load4(aq + 4 * k + 4)));
    }
    return _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), u.sc[j]);
}
#endif

// The GEMM-order columns [c0, c0 + nc) of rows r0 .. r0 + V::kRows - 1 with rows in lanes: per column
// the float operations of tile_q4k_rows<4> (the integer pair sums are computed another way, exactly), with each
// super-block unpacked once for up to kRowsCols columns instead of once per 4.
constexpr int64_t kRowsCols = 64;

template <class V>
void q4k_rows_gemm(const GemmArgs& g, int64_t c0, int64_t nc, int64_t r0) {
    const int64_t nb = g.n / QK_K;
    const BlockQ4K* w[V::kRows];
    for (int r = 0; r < V::kRows; ++r) {
        w[r] = reinterpret_cast<const BlockQ4K*>(static_cast<const uint8_t*>(g.w) + (r0 + r) * g.w_stride);
    }
    RowsQ4K<V> u;
    typename V::F acc[kRowsCols], accm[kRowsCols];
    for (int64_t cb = c0; cb < c0 + nc; cb += kRowsCols) {
        const int64_t ncb = std::min(kRowsCols, c0 + nc - cb);
        for (int64_t c = 0; c < ncb; ++c) acc[c] = accm[c] = V::zero();
        for (int64_t b = 0; b < nb; ++b) {
            unpack_rows(w, b, u);
            for (int64_t c = 0; c < ncb; ++c) {
                const BlockQ8K& ab =
                    reinterpret_cast<const BlockQ8K*>(static_cast<const uint8_t*>(g.a) + (cb + c) * g.a_stride)[b];
                const typename V::F ad = V::set1(ab.d);
                const typename V::F dd = V::mul(u.d, ad), dm = V::mul(u.dmin, ad);
                typename V::F ac = acc[c], am = accm[c];
                for (int i = 0; i < 4; ++i) {
                    const typename V::I pair_sum =
                        V::add(subblock_dot(u, 2 * i, ab.qs + 64 * i), subblock_dot(u, 2 * i + 1, ab.qs + 64 * i + 32));
                    // |bsums pair| <= 32 * 128 and mins <= 63: int16 operands, exact int32 sums.
                    const int32_t bp = (int32_t(ab.bsums[4 * i] + ab.bsums[4 * i + 1]) & 0xffff) |
                                       int32_t(uint32_t(ab.bsums[4 * i + 2] + ab.bsums[4 * i + 3]) << 16);
                    ac = V::fmadd(pair_sum, dd, ac);
                    am = V::fmadd(V::madd(u.mins[i], V::set1(bp)), dm, am);
                }
                acc[c] = ac;
                accm[c] = am;
            }
        }
        for (int64_t c = 0; c < ncb; ++c) V::store_diff(g.y + (cb + c) * g.ldy + r0, acc[c], accm[c]);
    }
}

// Q6_K with the rows in the lanes: one super-block of V::kRows rows, unpacked for a tile of columns.
// Per column the float operations of tile<KQ6K, NC> lane for lane: acc lane l of a row (l = 0..7, the
// int32 lane of the 8 pieces' bytes 4l .. 4l + 3) becomes vector l with that row in lane r, so a
// column keeps 8 float vectors and ends with hsum's tree over them. The integer lane sums are those of
// tile (sum over pieces i of scale * sum (q - 32) * a), computed as maddubs(a + 128, q - 32) with the
// activation-independent 128 * sum (q - 32) taken out per super-block (corr).
template <class V>
struct RowsQ6K {
    typename V::I q[8][8];   // [piece i][l]: lane r = codes - 32 of row r's elements 32i + 4l .. 32i + 4l + 3
    typename V::I sc[8][2];  // [piece i][half h]: lane r = row r's scale of elements 32i + 16h .. (int16 twice)
    typename V::I corr[8];   // [l]: lane r = sum over i of scale * 128 * (sum of those 4 codes - 32)
    typename V::F d;
};

inline void unpack_rows(const BlockQ6K* const w[8], int64_t b, RowsQ6K<Y8>& u) {
    __m256i t[8][8];  // [piece i][row r]
    alignas(32) int32_t sc[8][2][8];
    alignas(32) float d[8];
    UnpackedK k;
    for (int r = 0; r < 8; ++r) {
        KQ6K::unpack(w[r][b], k);
        for (int i = 0; i < 8; ++i) t[i][r] = k.q[i];
        for (int i = 0; i < 8; ++i)
            for (int h = 0; h < 2; ++h) sc[i][h][r] = int32_t(uint16_t(int16_t(w[r][b].scales[2 * i + h])) * 0x10001u);
        d[r] = k.d;
    }
    const __m256i m32 = _mm256_set1_epi8(32), one = _mm256_set1_epi8(1);
    for (int l = 0; l < 8; ++l) u.corr[l] = _mm256_setzero_si256();
    for (int i = 0; i < 8; ++i) {
        transpose8_epi32<Y8>(t[i]);
        for (int h = 0; h < 2; ++h) u.sc[i][h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sc[i][h]));
        for (int l = 0; l < 8; ++l) {
            u.q[i][l] = _mm256_sub_epi8(t[i][l], m32);
            u.corr[l] =
                _mm256_add_epi32(u.corr[l], _mm256_madd_epi16(_mm256_maddubs_epi16(one, u.q[i][l]), u.sc[i][l / 4]));
        }
    }
    for (int l = 0; l < 8; ++l) u.corr[l] = _mm256_slli_epi32(u.corr[l], 7);
    u.d = _mm256_load_ps(d);
}

#if defined(__AVX512F__)
inline __m512i join256(__m256i l, __m256i h) { return _mm512_inserti64x4(_mm512_castsi256_si512(l), h, 1); }

inline void unpack_rows(const BlockQ6K* const w[16], int64_t b, RowsQ6K<Z16>& u) {
    RowsQ6K<Y8> lo, hi;
    unpack_rows(w, b, lo);
    unpack_rows(w + 8, b, hi);
    for (int i = 0; i < 8; ++i) {
        for (int l = 0; l < 8; ++l) u.q[i][l] = join256(lo.q[i][l], hi.q[i][l]);
        for (int h = 0; h < 2; ++h) u.sc[i][h] = join256(lo.sc[i][h], hi.sc[i][h]);
    }
    for (int l = 0; l < 8; ++l) u.corr[l] = join256(lo.corr[l], hi.corr[l]);
    u.d = _mm512_insertf32x8(_mm512_castps256_ps512(lo.d), hi.d, 1);
}
#endif

constexpr int64_t kQ6Cols = 64;

template <class V>
void q6k_rows_gemm(const GemmArgs& g, int64_t r0) {
    const int64_t nb = g.n / QK_K;
    const BlockQ6K* w[V::kRows];
    for (int r = 0; r < V::kRows; ++r) {
        w[r] = reinterpret_cast<const BlockQ6K*>(static_cast<const uint8_t*>(g.w) + (r0 + r) * g.w_stride);
    }
    RowsQ6K<V> u;
    typename V::F acc[kQ6Cols][8];
    const __m256i x80 = _mm256_set1_epi8(int8_t(0x80));
    for (int64_t cb = 0; cb < g.nc; cb += kQ6Cols) {
        const int64_t ncb = std::min(kQ6Cols, g.nc - cb);
        for (int64_t c = 0; c < ncb; ++c)
            for (int l = 0; l < 8; ++l) acc[c][l] = V::zero();
        for (int64_t b = 0; b < nb; ++b) {
            unpack_rows(w, b, u);
            for (int64_t c = 0; c < ncb; ++c) {
                const BlockQ8K& ab =
                    reinterpret_cast<const BlockQ8K*>(static_cast<const uint8_t*>(g.a) + (cb + c) * g.a_stride)[b];
                alignas(32) uint8_t au[8][32];  // a + 128 as unsigned bytes, per piece
                for (int i = 0; i < 8; ++i) {
                    _mm256_store_si256(reinterpret_cast<__m256i*>(au[i]),
                                       _mm256_xor_si256(load256(ab.qs + 32 * i), x80));
                }
                // |maddubs pair| <= 2 * 255 * 32 < 2^15: exact.
                typename V::I sumi[8];
                for (int l = 0; l < 8; ++l) sumi[l] = V::sub(V::set1(int32_t(0)), u.corr[l]);
                for (int i = 0; i < 8; ++i) {
                    for (int l = 0; l < 8; ++l) {
                        const typename V::I p = V::maddubs(V::set1(load4(au[i] + 4 * l)), u.q[i][l]);
                        sumi[l] = V::madd_acc(sumi[l], p, u.sc[i][l / 4]);
                    }
                }
                const typename V::F dd = V::mul(V::set1(ab.d), u.d);
                for (int l = 0; l < 8; ++l) acc[c][l] = V::fmadd(sumi[l], dd, acc[c][l]);
            }
        }
        for (int64_t c = 0; c < ncb; ++c) {
            const auto& a = acc[c];  // hsum's tree: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
            V::store(g.y + (cb + c) * g.ldy + r0, V::add(V::add(V::add(a[0], a[4]), V::add(a[2], a[6])),
                                                         V::add(V::add(a[1], a[5]), V::add(a[3], a[7]))));
        }
    }
}

#if defined(__AVX512F__)
// The 6-bit scales and mins of a Q4_K / Q5_K super-block (q4_k.h's layout, as scales_k4) as 8 bytes each,
// sub-block j in byte j.
struct ScalesMins8 {
    uint64_t sc, m;
};
inline ScalesMins8 scales_mins8(const uint8_t s[12]) {
    uint32_t u[3];
    std::memcpy(u, s, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    return {uint64_t(sc_lo) | uint64_t(sc_hi) << 32, uint64_t(m_lo) | uint64_t(m_hi) << 32};
}

// A Q8_K block's quants laid out as the registers of a Q4_K / Q5_K super-block's codes: qs[0..63] holds
// elements 0..31 | 64..95 in its low nibbles (sub-blocks 0 | 2) and 32..63 | 96..127 in its high ones
// (1 | 3), qs[64..127] likewise, so register k is sub-blocks (0 | 2), (1 | 3), (4 | 6), (5 | 7).
inline void act_pairs(const BlockQ8K& ab, __m512i act[4]) {
    auto cat = [](const int8_t* x, const int8_t* y) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(load256(x)), load256(y), 1);
    };
    act[0] = cat(ab.qs, ab.qs + 64);
    act[1] = cat(ab.qs + 32, ab.qs + 96);
    act[2] = cat(ab.qs + 128, ab.qs + 192);
    act[3] = cat(ab.qs + 160, ab.qs + 224);
}

// Sub-block j's activation sum, bsums 2j + 2j + 1, in int16 lane j (|sum| <= 32 * 128: no wrap).
inline __m128i bsum_pairs(const BlockQ8K& ab) {
    return _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums)),
                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums + 8)));
}

// pshufb indices that turn a scale qword broadcast to every 64-bit element into int16 multipliers:
// sub-block a's scale in the 16 lanes of the lower 256 bits, sub-block b's in the upper ones.
inline __m512i scale_index(int a, int b) {
    alignas(64) int8_t idx[64];
    for (int k = 0; k < 64; ++k) idx[k] = int8_t(k % 2 != 0 ? -128 : k < 32 ? a : b);
    return _mm512_load_si512(idx);
}

// tile_q4k_8rows<NC> (1..3 columns: a decode's one, or a few) with 512-bit integer sums: each row's
// super-block isum and imin are the same exact integers, formed in another order (codes of two
// sub-blocks per register, unpacked once for the columns, against the activations laid out to match,
// maddubs pairs weighted by the scales with dpwssd; the mins' products with the activation's bsum pairs
// by madd), then the same float chains, lane r = row r0 + r.
template <int NC>
void gemv_q4k_8rows_zmm(const GemmArgs& g, int64_t c0, int64_t r0) {
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a[NC];
    act_columns(g, c0, a);
    const BlockQ4K* w[8];
    q4k_rows8(g, r0, w);
    const __m512i low = _mm512_set1_epi8(15);
    const __m512i idx[4] = {scale_index(0, 2), scale_index(1, 3), scale_index(4, 6), scale_index(5, 7)};
    __m256 acc[NC], accm[NC];
    for (int c = 0; c < NC; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512i act[NC][4];
        __m128i bp[NC];
        for (int c = 0; c < NC; ++c) {
            act_pairs(a[c][b], act[c]);
            bp[c] = bsum_pairs(a[c][b]);
        }
        __m512i isum[NC][8];
        __m128i imin[NC][8];
        alignas(32) float d[8], dmin[8];
        for (int r = 0; r < 8; ++r) {
            const BlockQ4K& x = w[r][b];
            prefetch_ahead<int64_t(sizeof(BlockQ4K))>(w[r] + b);
            const ScalesMins8 sm = scales_mins8(x.scales);
            const __m512i sc = _mm512_set1_epi64(int64_t(sm.sc));
            const __m512i x0 = _mm512_loadu_si512(x.qs), x1 = _mm512_loadu_si512(x.qs + 64);
            const __m512i q[4] = {_mm512_and_si512(x0, low), _mm512_and_si512(_mm512_srli_epi16(x0, 4), low),
                                  _mm512_and_si512(x1, low), _mm512_and_si512(_mm512_srli_epi16(x1, 4), low)};
            __m512i scale[4];
            for (int k = 0; k < 4; ++k) scale[k] = _mm512_shuffle_epi8(sc, idx[k]);
            const __m128i m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm.m)));
            for (int c = 0; c < NC; ++c) {
                // |maddubs pair| <= 2 * 15 * 128 and every scale < 64: exact in int16 / int32.
                __m512i t = _mm512_setzero_si512();
                for (int k = 0; k < 4; ++k) t = _mm512_dpwssd_epi32(t, _mm512_maddubs_epi16(q[k], act[c][k]), scale[k]);
                isum[c][r] = t;
                imin[c][r] = _mm_madd_epi16(m, bp[c]);
            }
            d[r] = h2f(x.d);
            dmin[r] = h2f(x.dmin);
        }
        for (int c = 0; c < NC; ++c) {
            // Lane r = the sum of isum[c][r]'s 16 lanes: pairs of rows, then quads per 128-bit lane, then the
            // lanes.
            const __m512i* s = isum[c];
            __m512i t2[4];
            for (int k = 0; k < 4; ++k) {
                t2[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2 * k], s[2 * k + 1]),
                                         _mm512_unpackhi_epi32(s[2 * k], s[2 * k + 1]));
            }
            const __m512i q0 =
                _mm512_add_epi32(_mm512_unpacklo_epi64(t2[0], t2[1]), _mm512_unpackhi_epi64(t2[0], t2[1]));
            const __m512i q1 =
                _mm512_add_epi32(_mm512_unpacklo_epi64(t2[2], t2[3]), _mm512_unpackhi_epi64(t2[2], t2[3]));
            const __m512i v = _mm512_add_epi32(_mm512_shuffle_i32x4(q0, q1, _MM_SHUFFLE(2, 0, 2, 0)),
                                               _mm512_shuffle_i32x4(q0, q1, _MM_SHUFFLE(3, 1, 3, 1)));
            const __m256i is =
                _mm512_castsi512_si256(_mm512_add_epi32(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(0, 0, 2, 0)),
                                                        _mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(0, 0, 3, 1))));
            const __m128i* mn = imin[c];
            const __m128i m03 = _mm_hadd_epi32(_mm_hadd_epi32(mn[0], mn[1]), _mm_hadd_epi32(mn[2], mn[3]));
            const __m128i m47 = _mm_hadd_epi32(_mm_hadd_epi32(mn[4], mn[5]), _mm_hadd_epi32(mn[6], mn[7]));
            const __m256 ad = _mm256_set1_ps(a[c][b].d);
            const __m256 dd = _mm256_mul_ps(_mm256_load_ps(d), ad), dm = _mm256_mul_ps(_mm256_load_ps(dmin), ad);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), dd, acc[c]);
            accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_set_m128i(m47, m03)), dm, accm[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(g.y + (c0 + c) * g.ldy + r0, _mm256_sub_ps(acc[c], accm[c]));
}
#endif

template <int NC>
void tile_q4k_8x8(const GemmArgs& g, int64_t c0) {
    const int64_t nr8 = g.nr - g.nr % 8;
#if defined(__AVX512F__)
    for (int64_t r0 = 0; r0 < nr8; r0 += 8) gemv_q4k_8rows_zmm<NC>(g, c0, r0);
#else
    for (int64_t r0 = 0; r0 < nr8; r0 += 8) tile_q4k_8rows<NC>(g, c0, r0);
#endif
    if (nr8 < g.nr) tile_q4k_rows<NC>(g, c0, nr8);
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

void gemm_q4k_8x8(const GemmArgs& g) {
    const int64_t c = g.nc >= 4 ? g.nc : 0, nr8 = g.nr - g.nr % 8;
    if (c > 0) {
        int64_t r0 = 0;
#if defined(__AVX512F__)
        for (; r0 + 16 <= nr8; r0 += 16) q4k_rows_gemm<Z16>(g, 0, c, r0);
#endif
        for (; r0 < nr8; r0 += 8) q4k_rows_gemm<Y8>(g, 0, c, r0);
        // The last group of 4 overlaps the one before when c % 4 != 0 (a column computed twice gets the
        // same bits).
        if (nr8 < g.nr)
            for (int64_t c4 = 0; c4 < c; c4 += 4) tile_q4k_rows<4>(g, std::min(c4, c - 4), nr8);
    }
    switch (g.nc - c) {
        case 0: break;
        case 1: tile_q4k_8x8<1>(g, c); break;
        case 2: tile_q4k_8x8<2>(g, c); break;
        default: tile_q4k_8x8<3>(g, c); break;
    }
}

// Q6_K: tiles of 4 or more columns with the rows in the lanes (groups of 16 / 8 rows), the rest by tile.
#if defined(__AVX512F__)
// tile<KQ6K, 1> (a decode's one column) with 512-bit integer sums: per super-block the same 8 int32
// lanes (lane l: bytes 4l .. 4l + 3 of every 32-element piece, times the scale of the piece's half,
// minus 32 times the activations' sum), two pieces per register and their halves added at the end,
// then the same float chain and hsum.
void gemv_q6k_zmm(const GemmArgs& g) {
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a = static_cast<const BlockQ8K*>(g.a);
    const __m512i low = _mm512_set1_epi8(15), top2 = _mm512_set1_epi8(0x30), m32 = _mm512_set1_epi8(32);
    // Pieces 2k and 2k + 1 share a register: the high bits of piece 4n + j are qh bits 2j, 2j + 1.
    const __m512i shl_42 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_02 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    // int16 scale lane patterns: 128-bit lane L of register k holds scale 4k + L.
    __m512i sidx[4];
    for (int k = 0; k < 4; ++k) {
        alignas(64) int16_t idx[32];
        for (int i = 0; i < 32; ++i) idx[i] = int16_t(4 * k + i / 8);
        sidx[k] = _mm512_load_si512(idx);
    }
    for (int64_t r = 0; r < g.nr; ++r) {
        const BlockQ6K* w = reinterpret_cast<const BlockQ6K*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            prefetch_ahead<int64_t(sizeof(BlockQ6K))>(w + b);
            const BlockQ6K& x = w[b];
            const BlockQ8K& ab = a[b];
            const __m512i s16 = _mm512_zextsi256_si512(
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales))));
            __m512i sumi = _mm512_setzero_si512();
            for (int n = 0; n < 2; ++n) {
                const __m512i l = _mm512_loadu_si512(x.ql + 64 * n);
                const __m512i h = _mm512_broadcast_i64x4(load256(x.qh + 32 * n));
                // Pieces 4n, 4n + 1: low nibbles, qh bits 0-1 / 2-3; pieces 4n + 2, 4n + 3: high nibbles, bits 4-5 /
                // 6-7.
                const __m512i q01 =
                    _mm512_or_si512(_mm512_and_si512(l, low), _mm512_and_si512(_mm512_sllv_epi16(h, shl_42), top2));
                const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low),
                                                    _mm512_and_si512(_mm512_srlv_epi16(h, shr_02), top2));
                const __m512i q[2] = {q01, q23};
                for (int j = 0; j < 2; ++j) {
                    const int k = 2 * n + j;  // pieces 2k, 2k + 1
                    const __m512i aq = _mm512_loadu_si512(ab.qs + 64 * k);
                    // |pair| <= 2 * 63 * 128, |32 * pair of a| <= 2 * 32 * 128: the difference fits in int16.
                    const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(q[j], aq), _mm512_maddubs_epi16(m32, aq));
                    sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(sidx[k], s16));
                }
            }
            const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s8), _mm256_set1_ps(ab.d * h2f(x.d)), acc);
        }
        g.y[r] = hsum(acc);
    }
}
#endif

#if defined(__AVX512F__)
// tile<KQ5K, 1> (a decode's one column) with 512-bit integer sums: per super-block the same 8 int32
// lanes (lane l: bytes 4l .. 4l + 3 of every 32-element sub-block times its scale) from two sub-blocks
// per register, laid out as gemv_q4k_8rows_zmm's (the fifth bits from qh by per-half variable shifts),
// their halves added at the end; the mins as one exact integer per super-block; then the same float
// chain, scalar mins sum and hsum.
void gemv_q5k_zmm(const GemmArgs& g) {
    const int64_t nb = g.n / QK_K;
    const BlockQ8K* a = static_cast<const BlockQ8K*>(g.a);
    const __m512i low = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(16);
    const __m512i idx[4] = {scale_index(0, 2), scale_index(1, 3), scale_index(4, 6), scale_index(5, 7)};
    // Register k holds sub-blocks (0 | 2), (1 | 3), (4 | 6), (5 | 7): qh bit j of byte l is sub-block j's
    // fifth bit of element l, moved to bit 4 by a left shift of 4 - j or a right shift of j - 4.
    auto halves = [](int x, int y) {
        alignas(64) int16_t v[32];
        for (int i = 0; i < 32; ++i) v[i] = int16_t(i < 16 ? x : y);
        return _mm512_load_si512(v);
    };
    const __m512i shl[2] = {halves(4, 2), halves(3, 1)}, shr[2] = {halves(0, 2), halves(1, 3)};
    for (int64_t r = 0; r < g.nr; ++r) {
        const BlockQ5K* w = reinterpret_cast<const BlockQ5K*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc = _mm256_setzero_ps();
        float summs = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
            prefetch_ahead<int64_t(sizeof(BlockQ5K))>(w + b);
            const BlockQ5K& x = w[b];
            const BlockQ8K& ab = a[b];
            const ScalesMins8 sm = scales_mins8(x.scales);
            const __m512i sc = _mm512_set1_epi64(int64_t(sm.sc));
            const __m512i h = _mm512_broadcast_i64x4(load256(x.qh));
            const __m512i x0 = _mm512_loadu_si512(x.qs), x1 = _mm512_loadu_si512(x.qs + 64);
            const __m512i q[4] = {
                _mm512_or_si512(_mm512_and_si512(x0, low), _mm512_and_si512(_mm512_sllv_epi16(h, shl[0]), bit4)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(x0, 4), low),
                                _mm512_and_si512(_mm512_sllv_epi16(h, shl[1]), bit4)),
                _mm512_or_si512(_mm512_and_si512(x1, low), _mm512_and_si512(_mm512_srlv_epi16(h, shr[0]), bit4)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(x1, 4), low),
                                _mm512_and_si512(_mm512_srlv_epi16(h, shr[1]), bit4))};
            __m512i act[4];
            act_pairs(ab, act);
            // |maddubs pair| <= 2 * 31 * 128 and every scale < 64: exact in int16 / int32.
            __m512i sumi = _mm512_setzero_si512();
            for (int k = 0; k < 4; ++k)
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[k], act[k]), _mm512_shuffle_epi8(sc, idx[k]));
            const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
            const __m128i bp = bsum_pairs(ab);
            const __m128i m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm.m)));
            const __m128i pm = _mm_madd_epi16(m, bp);
            const __m128i pm2 = _mm_add_epi32(pm, _mm_unpackhi_epi64(pm, pm));
            const int imin = _mm_cvtsi128_si32(_mm_add_epi32(pm2, _mm_shuffle_epi32(pm2, 1)));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s8), _mm256_set1_ps(ab.d * h2f(x.d)), acc);
            summs = fma1(float(imin), ab.d * h2f(x.dmin), summs);
        }
        g.y[r] = hsum(acc) - summs;
    }
}

void gemm_q5k(const GemmArgs& g) {
    if (g.nc == 1) {
        gemv_q5k_zmm(g);
        return;
    }
    gemm<KQ5K>(g);
}
#endif

void gemm_q6k(const GemmArgs& g) {
#if defined(__AVX512F__)
    if (g.nc == 1) {
        gemv_q6k_zmm(g);
        return;
    }
#endif
    if (g.nc < 4) {
        gemm<KQ6K>(g);
        return;
    }
    const int64_t nr8 = g.nr - g.nr % 8;
    int64_t r0 = 0;
#if defined(__AVX512F__)
    for (; r0 + 16 <= nr8; r0 += 16) q6k_rows_gemm<Z16>(g, r0);
#endif
    for (; r0 < nr8; r0 += 8) q6k_rows_gemm<Y8>(g, r0);
    if (nr8 < g.nr) {
        GemmArgs rest = g;
        rest.w = static_cast<const uint8_t*>(g.w) + nr8 * g.w_stride;
        rest.nr = g.nr - nr8;
        rest.y = g.y + nr8;
        gemm<KQ6K>(rest);
    }
}

}  // namespace

void fill_gemm_k(KernelTable& t) {
    t.gemm_q4k_8x8 = gemm_q4k_8x8;
    t.gemm[int(GgmlType::Q4_K)] = gemm<KQ4K>;
#if defined(__AVX512F__)
    t.gemm[int(GgmlType::Q5_K)] = gemm_q5k;
#else
    t.gemm[int(GgmlType::Q5_K)] = gemm<KQ5K>;
#endif
    t.gemm[int(GgmlType::Q6_K)] = gemm_q6k;
}

}  // namespace ferry::quant::FERRY_ISA
