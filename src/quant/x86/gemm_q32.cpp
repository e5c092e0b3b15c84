// GEMM tiles for the 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4 against
// Q8_0 / Q8_1 activations.
//
// A tile multiplies weight rows with NC activation columns at once: each weight block is unpacked
// to 32 bytes once and used for all NC columns. Per column the arithmetic is always the same, so a
// column's result does not depend on NC, and it is ggml's float order for the format (the golden
// logits are made by ggml; a different order flips roundings of the next re-quantized input):
//   - K::kTwoChains (IQ4_NL, MXFP4: ggml's x86 vec_dot takes two blocks per step): even blocks
//     accumulate into one float vector and odd blocks into another, summed lane by lane at the end;
//   - otherwise (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: ggml's x86 vec_dot and llamafile's tinyBLAS for batches):
//     one accumulator, blocks in order.
// Either way the 8 lanes are then summed as ggml's hsum_float_8 does.
//
// Per block: sumi (8 int32 lanes) = integer dot of the 32 codes with the 32 activation quants; the
// float accumulator gets sumi * (d_w * d_a). Offset formats (Q4_1, Q5_1) add m_w * s_a in one lane of
// a second accumulator.
//
// With AVX-512, the one-chain formats take block_gemm's register tiles (two rows per register, the activation blocks
// broadcast): 8 columns (6..7 padded), then 4 (3 padded), 2 and 1 (decode); the two-chain formats take gemv_pairs in
// decode, the tiles of panel_gemm (2 rows x 8 columns, two blocks per register) for groups of 8 columns (4..7 padded),
// then tile_pairs / tile<K, 1> for the last 1..3 columns. Every one of them computes each output with the operations
// of tile<K, 1>.
//
// Apart from these, KernelTable::gemm_one_sum's Q4_1 and Q8_0 kernels (strip_one_sum, AVX-512) have an order of their
// own for steps of several sequences: one conversion per output and block instead of ggml's 8.

#include <cstddef>
#include <type_traits>

#include "quant/iq4_nl.h"
#include "quant/mxfp4.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q8_0.h"
#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {
namespace {

constexpr int kMaxCols = 4;  // ymm tiles

// A weight block made ready for the dot: codes as bytes (unsigned, or signed with `abs` = |codes|
// for the sign trick) and the scale.
struct Unpacked {
    __m256i q;
    __m256i abs;
    float d;  // unused by offset formats (their scales are converted with the activation's)
};

template <bool Signed>
inline Unpacked make(__m256i q, float d) {
    return {q, Signed ? _mm256_sign_epi8(q, q) : q, d};
}

inline __m256i fifth_bits(const uint8_t qh[4]) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return _mm256_and_si256(bits_to_bytes(h), _mm256_set1_epi8(16));
}

inline float e8m0_half(uint8_t e) {
    const uint32_t bits = e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline __m256i lookup16(const int8_t table[16], __m256i nibbles) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
    return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles);
}

struct KQ8_0 {
    using W = BlockQ8_0;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = false;
    static Unpacked unpack(const W& w) { return make<true>(load256(w.qs), h2f(w.d)); }
    static constexpr int kBias = 128;
    static __m256i codes(const W& w) { return _mm256_xor_si256(load256(w.qs), _mm256_set1_epi8(-128)); }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KQ4_0 {
    using W = BlockQ4_0;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        return make<true>(_mm256_sub_epi8(unpack_nibbles_16(w.qs), _mm256_set1_epi8(8)), h2f(w.d));
    }
    static constexpr int kBias = 8;
    static __m256i codes(const W& w) { return unpack_nibbles_16(w.qs); }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KQ4_1 {
    using W = BlockQ4_1;
    using A = BlockQ8_1;
    static constexpr bool kSigned = false, kOffset = true, kTwoChains = false;
    static Unpacked unpack(const W& w) { return make<false>(unpack_nibbles_16(w.qs), 0.0f); }
    static constexpr int kBias = 0;
    static __m256i codes(const W& w) { return unpack_nibbles_16(w.qs); }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KQ5_0 {
    using W = BlockQ5_0;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        const __m256i q = _mm256_or_si256(unpack_nibbles_16(w.qs), fifth_bits(w.qh));
        return make<true>(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), h2f(w.d));
    }
    static constexpr int kBias = 16;
    static __m256i codes(const W& w) { return _mm256_or_si256(unpack_nibbles_16(w.qs), fifth_bits(w.qh)); }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KQ5_1 {
    using W = BlockQ5_1;
    using A = BlockQ8_1;
    static constexpr bool kSigned = false, kOffset = true, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        return make<false>(_mm256_or_si256(unpack_nibbles_16(w.qs), fifth_bits(w.qh)), 0.0f);
    }
    static constexpr int kBias = 0;
    static __m256i codes(const W& w) { return unpack(w).q; }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KIQ4_NL {
    using W = BlockIQ4NL;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = true;
    static Unpacked unpack(const W& w) { return make<true>(lookup16(kIq4nlValues, unpack_nibbles_16(w.qs)), h2f(w.d)); }
    static constexpr const int8_t* kTable = kIq4nlValues;
    static constexpr int kBias = 128;
    static __m256i codes(const W& w) { return _mm256_xor_si256(unpack(w).q, _mm256_set1_epi8(-128)); }
    static float scale(const W& w) { return h2f(w.d); }
};

struct KMXFP4 {
    using W = BlockMXFP4;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = true;
    static Unpacked unpack(const W& w) {
        return make<true>(lookup16(kMxfp4Values, unpack_nibbles_16(w.qs)), e8m0_half(w.e));
    }
    static constexpr const int8_t* kTable = kMxfp4Values;
    static constexpr int kBias = 128;
    static __m256i codes(const W& w) { return _mm256_xor_si256(unpack(w).q, _mm256_set1_epi8(-128)); }
    static float scale(const W& w) { return e8m0_half(w.e); }
    static constexpr bool kE8M0 = true;  // not an fp16 scale (see scales2)
};

// Two adjacent fp16 fields (d and m of Q4_1 / Q5_1, d and s of Q8_1) -> [d, m, 0, 0] in one conversion.
inline __m128 half_pair(const void* p) {
    int32_t bits;
    std::memcpy(&bits, p, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
}

// One block for NC columns: acc[c] += sumi * (d_w * d_a). Offset formats multiply [d_w, m_w] by
// [d_a, s_a] in one go; lane 1 of off[c] accumulates m_w * s_a (in block order, like the reference).
template <class K, int NC>
inline void block_step(const typename K::W& w, const Unpacked& u, const typename K::A* const* a, int64_t b, __m256* acc,
                       __m128* off) {
    [[maybe_unused]] __m128 wdm;
    if constexpr (K::kOffset) wdm = half_pair(&w);
    for (int c = 0; c < NC; ++c) {
        const typename K::A& ab = a[c][b];
        const __m256i aq = load256(ab.qs);
        const __m256i s = K::kSigned ? dot_u8s8(u.abs, _mm256_sign_epi8(aq, u.q)) : dot_u8s8(u.q, aq);
        if constexpr (K::kOffset) {
            const __m128 prod = _mm_mul_ps(wdm, half_pair(&ab));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcastss_ps(prod), acc[c]);
            off[c] = _mm_add_ps(off[c], prod);
        } else {
            // MXFP4's reference multiplies (d_a * d_w); the product is commutative, so the order is moot.
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(u.d * h2f(ab.d)), acc[c]);
        }
    }
}

template <class K, int NC>
void tile(const GemmArgs& g, int64_t c0) {
    using A = typename K::A;
    using W = typename K::W;
    const int64_t nb = g.n / 32;
    const A* a[NC];
    for (int c = 0; c < NC; ++c)
        a[c] = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc0[NC], acc1[NC];
        __m128 off0[NC], off1[NC];
        for (int c = 0; c < NC; ++c) {
            acc0[c] = acc1[c] = _mm256_setzero_ps();
            off0[c] = off1[c] = _mm_setzero_ps();
        }
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            if constexpr (NC == 1) prefetch_ahead(w + b);
            block_step<K, NC>(w[b], K::unpack(w[b]), a, b, acc0, off0);
            block_step<K, NC>(w[b + 1], K::unpack(w[b + 1]), a, b + 1, K::kTwoChains ? acc1 : acc0,
                              K::kTwoChains ? off1 : off0);
        }
        if (b < nb) block_step<K, NC>(w[b], K::unpack(w[b]), a, b, acc0, off0);
        for (int c = 0; c < NC; ++c) {
            float v = hsum(_mm256_add_ps(acc0[c], acc1[c]));
            if constexpr (K::kOffset) {
                v += _mm_cvtss_f32(_mm_shuffle_ps(off0[c], off0[c], 1)) +
                     _mm_cvtss_f32(_mm_shuffle_ps(off1[c], off1[c], 1));
            }
            g.y[(c0 + c) * g.ldy + r] = v;
        }
    }
}

#if defined(__AVX512F__)
// AVX-512 prefill: two activation columns share one 512-bit register (column 2p in lanes 0..7,
// column 2p+1 in lanes 8..15), so the integer dot, the conversion and the FMA run once per pair.
// Lane by lane these are exactly the operations of tile<K, 1> above (the same dpbusd sums, the same
// products d_w * d_a rounded once, the same FMA and final sums), so a column's result is still
// identical to decode's. The activation scales of the tile's columns are widened to float once per
// tile ([block][pair][field][2]) instead of once per row.
// Floats of activation scales tile_pairs keeps on the stack (32 KiB): rows up to 16384 (Q8_1) or
// 32768 (Q8_0) elements; longer rows take the ymm tiles.
constexpr int64_t kMaxPairScales = 8192;

template <class K, int NP>
void tile_pairs(const GemmArgs& g, int64_t c0) {
    using A = typename K::A;
    using W = typename K::W;
    constexpr int kNC = 2 * NP;
    constexpr int kFields = K::kOffset ? 2 : 1;  // d, and s for Q8_1
    const int64_t nb = g.n / 32;
    const A* a[kNC];
    for (int c = 0; c < kNC; ++c) {
        a[c] = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
    }
    // A stack buffer, not a std::vector: library templates instantiated in this file would be compiled
    // with AVX-512 flags and could be picked by the linker for other callers (see simd.h).
    alignas(64) float scales[kMaxPairScales];
    for (int64_t b = 0; b < nb; ++b) {
        for (int c = 0; c < kNC; ++c) {
            float* dst = scales + ((b * NP + c / 2) * kFields) * 2 + c % 2;
            dst[0] = h2f(a[c][b].d);
            if constexpr (K::kOffset) dst[2] = h2f(a[c][b].s);
        }
    }
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    auto pair_of = [&](const float* p) {  // [p[0] x 8 | p[1] x 8]
        const __m128 two = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
        return _mm512_permutexvar_ps(halves, _mm512_zextps128_ps512(two));
    };
    auto step = [&](const W& w, int64_t b, __m512* acc, __m512* off) {
        const Unpacked u = K::unpack(w);
        const __m256i q256 = K::kSigned ? u.abs : u.q;
        const __m512i q = _mm512_inserti64x4(_mm512_zextsi256_si512(q256), q256, 1);
        [[maybe_unused]] __mmask64 neg = 0;
        if constexpr (K::kSigned) neg = _mm512_movepi8_mask(_mm512_inserti64x4(_mm512_zextsi256_si512(u.q), u.q, 1));
        __m512 vd, vm = _mm512_setzero_ps();
        if constexpr (K::kOffset) {
            const __m128 dm = half_pair(&w);
            vd = _mm512_set1_ps(_mm_cvtss_f32(dm));
            vm = _mm512_set1_ps(_mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1)));
        } else {
            vd = _mm512_set1_ps(u.d);
        }
        for (int p = 0; p < NP; ++p) {
            __m512i aq =
                _mm512_inserti64x4(_mm512_zextsi256_si512(load256(a[2 * p][b].qs)), load256(a[2 * p + 1][b].qs), 1);
            // |w| * (a with w's sign); where w == 0 the product is 0 whatever a's sign.
            if constexpr (K::kSigned) aq = _mm512_mask_sub_epi8(aq, neg, _mm512_setzero_si512(), aq);
            const __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, aq);
            const float* sc = scales + ((b * NP + p) * kFields) * 2;
            acc[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(vd, pair_of(sc)), acc[p]);
            if constexpr (K::kOffset) off[p] = _mm512_add_ps(off[p], _mm512_mul_ps(vm, pair_of(sc + 2)));
        }
    };
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m512 acc0[NP], acc1[NP], off0[NP], off1[NP];
        for (int p = 0; p < NP; ++p) acc0[p] = acc1[p] = off0[p] = off1[p] = _mm512_setzero_ps();
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            step(w[b], b, acc0, off0);
            step(w[b + 1], b + 1, K::kTwoChains ? acc1 : acc0, K::kTwoChains ? off1 : off0);
        }
        if (b < nb) step(w[b], b, acc0, off0);
        for (int p = 0; p < NP; ++p) {
            const __m512 sum = _mm512_add_ps(acc0[p], acc1[p]);
            const __m256 lo = _mm512_castps512_ps256(sum);
            const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sum), 1));
            float v0 = hsum(lo), v1 = hsum(hi);
            if constexpr (K::kOffset) {
                alignas(64) float o0[16], o1[16];
                _mm512_store_ps(o0, off0[p]);
                _mm512_store_ps(o1, off1[p]);
                v0 += o0[0] + o1[0];
                v1 += o0[8] + o1[8];
            }
            g.y[(c0 + 2 * p) * g.ldy + r] = v0;
            g.y[(c0 + 2 * p + 1) * g.ldy + r] = v1;
        }
    }
}

// AVX-512 decode of the two-chain formats (one activation column): two consecutive blocks of a row share one 512-bit
// register (block 2i in lanes 0..7, block 2i+1 in lanes 8..15), so the integer dot, the conversion and the FMA run once
// per pair. Lane by lane these are the operations of tile<K, 1> (its even-block accumulator is the low half, its
// odd-block accumulator the high half; the offset sums of even and odd blocks sit in lanes 1 and 3), so the results are
// bit-identical to tile<K, 1> and to the prefill tiles. The activation scales are widened to float once per call.
// The table formats (IQ4_NL, MXFP4) look both blocks' codes up in one register, biased by 128 to unsigned bytes, and
// start each dot from -128 times the activations' lane sums (computed once per call): the same integer lanes.
// The 4-bit codes of two blocks' 16 nibble bytes as 64 bytes, [low nibbles of qs0 | high of qs0 | low of qs1 |
// high of qs1] (elements 0..31 of each block): two broadcast loads (the second merged into the upper half) make
// [qs0, qs0, qs1, qs1] without a shuffle, then the odd 128-bit lanes are shifted down by 4 and all masked.
inline __m512i nibbles2(const uint8_t* qs0, const uint8_t* qs1) {
    const __m512i dup = _mm512_mask_broadcast_i32x4(
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0))), __mmask16(0xff00),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)));
    return _mm512_and_si512(_mm512_mask_srli_epi16(dup, __mmask32(0xff00ff00), dup, 4), _mm512_set1_epi8(15));
}

constexpr int64_t kMaxGemvBlocks = 4096;  // rows up to 131072 elements; longer rows take tile<K, 1>
constexpr int64_t kMaxCorrBlocks = 1024;  // table formats' one-register pair path: rows up to 32768 elements

template <class K>
void gemv_pairs(const GemmArgs& g) {
    using A = typename K::A;
    using W = typename K::W;
    const int64_t nb = g.n / 32;
    const A* a = static_cast<const A*>(g.a);
    // [d_a, s_a] per block for offset formats, d_a per block otherwise; zero-padded to an even count.
    constexpr int kFields = K::kOffset ? 2 : 1;
    alignas(64) float sc[kMaxGemvBlocks * 2 + 4];
    for (int64_t b = 0; b < nb; ++b) {
        if constexpr (K::kOffset) {
            _mm_storel_pi(reinterpret_cast<__m64*>(sc + 2 * b), half_pair(&a[b]));
        } else {
            sc[b] = h2f(a[b].d);
        }
    }
    for (int f = 0; f < 4; ++f) sc[nb * kFields + f] = 0.0f;
    const __m512i halves = K::kOffset ? _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)
                                      : _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const int64_t n_pairs = nb / 2;
    // Table formats (IQ4_NL, MXFP4) with rows of up to kMaxCorrBlocks blocks: -128 * (the sum of each
    // 4-quant lane) per block pair, once per call (see the pair loop).
    [[maybe_unused]] __m512i table = _mm512_setzero_si512();
    alignas(64) int32_t corr[kMaxCorrBlocks * 8];
    bool lut = false;
    if constexpr (!K::kOffset) {
        lut = nb <= kMaxCorrBlocks;
        if (lut) {
            table =
                _mm512_xor_si512(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(K::kTable))),
                                 _mm512_set1_epi8(-128));
            for (int64_t b = 0; b < nb; ++b)
                _mm256_store_si256(
                    reinterpret_cast<__m256i*>(corr + 8 * b),
                    _mm256_sub_epi32(_mm256_setzero_si256(),
                                     _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                                         _mm256_set1_epi8(static_cast<char>(0x80)), load256(a[b].qs))));
        }
    }
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m512 acc = _mm512_setzero_ps();
        __m128 off = _mm_setzero_ps();
        auto step = [&](const Unpacked& u0, const Unpacked& u1, __m512i aq, __m128 wsc, int64_t b) {
            const __m512i q =
                _mm512_inserti64x4(_mm512_castsi256_si512(K::kSigned ? u0.abs : u0.q), K::kSigned ? u1.abs : u1.q, 1);
            if constexpr (K::kSigned) {
                const __mmask64 neg = _mm512_movepi8_mask(_mm512_inserti64x4(_mm512_castsi256_si512(u0.q), u1.q, 1));
                aq = _mm512_mask_sub_epi8(aq, neg, _mm512_setzero_si512(), aq);
            }
            const __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, aq);
            // [d_w0 d_a0, m_w0 s_a0, d_w1 d_a1, m_w1 s_a1] or [d_w0 d_a0, d_w1 d_a1, 0, 0]
            const __m128 prod = _mm_mul_ps(wsc, _mm_loadu_ps(sc + b * kFields));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(prod)),
                                  acc);
            if constexpr (K::kOffset) off = _mm_add_ps(off, prod);
        };
        auto scales = [&](const W& w0, const W& w1, const Unpacked& u0, const Unpacked& u1) {
            if constexpr (K::kOffset) {
                int32_t b0, b1;
                std::memcpy(&b0, &w0, 4);
                std::memcpy(&b1, &w1, 4);
                return _mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128(b0), _mm_cvtsi32_si128(b1)));
            } else {
                (void)w0;
                (void)w1;
                return _mm_unpacklo_ps(_mm_set_ss(u0.d), _mm_set_ss(u1.d));
            }
        };
        if (lut) {
            // The codes of two blocks in one register, looked up biased by 128 (unsigned); the dot starts
            // from the activations' -128 * (sum of each lane's 4 quants), so the lanes are the same integers.
            for (int64_t i = 0; i < n_pairs; ++i) {
                const int64_t b = 2 * i;
                prefetch_ahead(w + b);
                const __m512i nib = nibbles2(w[b].qs, w[b + 1].qs);
                const __m512i aq =
                    _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[b].qs)), load256(a[b + 1].qs), 1);
                const __m512i si =
                    _mm512_dpbusd_epi32(_mm512_load_si512(corr + 8 * b), _mm512_shuffle_epi8(table, nib), aq);
                const __m128 wsc = _mm_unpacklo_ps(_mm_set_ss(K::scale(w[b])), _mm_set_ss(K::scale(w[b + 1])));
                const __m128 prod = _mm_mul_ps(wsc, _mm_loadu_ps(sc + b));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si),
                                      _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(prod)), acc);
            }
        } else {
            for (int64_t i = 0; i < n_pairs; ++i) {
                const int64_t b = 2 * i;
                prefetch_ahead(w + b);
                const Unpacked u0 = K::unpack(w[b]), u1 = K::unpack(w[b + 1]);
                const __m512i aq =
                    _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[b].qs)), load256(a[b + 1].qs), 1);
                step(u0, u1, aq, scales(w[b], w[b + 1], u0, u1), b);
            }
        }
        if (nb % 2 != 0) {
            // The last block alone, in the even half; the odd half multiplies zeros by a zero scale.
            const int64_t b = nb - 1;
            const Unpacked u0 = K::unpack(w[b]);
            const Unpacked z{_mm256_setzero_si256(), _mm256_setzero_si256(), 0.0f};
            const __m512i aq = _mm512_castsi256_si512(load256(a[b].qs));
            __m128 wsc;
            if constexpr (K::kOffset) {
                wsc = half_pair(&w[b]);
            } else {
                wsc = _mm_set_ss(u0.d);
            }
            step(u0, z, _mm512_inserti64x4(aq, _mm256_setzero_si256(), 1), wsc, b);
        }
        const __m256 lo = _mm512_castps512_ps256(acc);
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        float v = hsum(_mm256_add_ps(lo, hi));
        if constexpr (K::kOffset) {
            v += _mm_cvtss_f32(_mm_shuffle_ps(off, off, 1)) + _mm_cvtss_f32(_mm_shuffle_ps(off, off, 3));
        }
        g.y[r] = v;
    }
}

// AVX-512 prefill of the two-chain formats (IQ4_NL, MXFP4): register tiles of R = 2 weight rows x
// kPanelCols = 8 activation columns, each output one zmm laid out as in gemv_pairs (block 2i in lanes
// 0..7, block 2i+1 in lanes 8..15: the even-block and the odd-block chain), so per output and block pair
// the work is one dpbusd, one conversion, one scale product and one FMA.
//
// The integer dot of signed codes w with signed quants a is taken with unsigned codes u = w + bias:
// sum(w * a) = dpbusd(-bias * sum(a), u, a), exact in int32 (the correction per group of 4 quants is
// computed once per column, not per row; offset formats have unsigned codes and bias 0). The float side
// is block_acc, the same operations lane by lane as tile<K, 1> and gemv_pairs, so every output is
// bit-identical to decode's whatever the tile.
//
// The activation columns are first laid out per block pair (ActPair: the 64 quants, the correction and
// the scales widened to [d_a(2i) x 8 | d_a(2i+1) x 8]) for kChunkPairs pairs at a time, a panel of
// 8 x 16 x 192 bytes = 24 KiB that stays in L1 while the weight rows stream past it, laid out once for
// up to kPanelRows rows. Their accumulators are kept in memory between chunks (a store and a reload do
// not change a float).
constexpr int kPanelCols = 8;
constexpr int64_t kChunkPairs = 16;
constexpr int64_t kPanelRows = 64;  // rows whose accumulators are kept between chunks (32 KiB)

// [scale(w0), min(w0), scale(w1), min(w1)] (min 0 for the formats without one). The fp16 formats keep
// d (and m) in the first bytes of a block: both blocks' are converted with one vcvtph2ps.
template <class K>
inline __m128 scales2(const typename K::W& w0, const typename K::W& w1) {
    if constexpr (requires { K::kE8M0; }) {
        return _mm_setr_ps(K::scale(w0), 0.0f, K::scale(w1), 0.0f);
    } else {
        static_assert(offsetof(typename K::W, d) == 0);
        constexpr size_t kBytes = K::kOffset ? 4 : 2;
        if constexpr (K::kOffset) static_assert(offsetof(typename K::W, m) == 2);
        uint32_t a = 0, b = 0;
        std::memcpy(&a, &w0, kBytes);
        std::memcpy(&b, &w1, kBytes);
        return _mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(uint64_t(a) | uint64_t(b) << 32)));
    }
}

// Not std::min: no library template may be instantiated with AVX-512 flags here (see simd.h).
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

struct alignas(64) ActPair {
    __m512i q;    // quants of blocks 2i (bytes 0..31) and 2i+1 (bytes 32..63)
    __m512i neg;  // -bias * (sum of each group of 4 quants), per int32 lane
    __m512 d;     // d_a(2i) x 8 | d_a(2i+1) x 8
};

// The per-block accumulation rule of every Q8_0-activation kernel in this file: the block's integer dot
// converted to float, times the product of the two scales (rounded once), added with one FMA.
inline __m512 block_acc(__m512 acc, __m512i sumi, __m512 wd, __m512 ad) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd, ad), acc);
}

// Fills panel[i][c] for pairs [p0, p0 + np) of the columns (ncols real ones, the rest zeros); a last
// pair past the row's blocks has its odd half zeroed.
template <class K>
void pack_panel(const GemmArgs& g, int64_t c0, int ncols, int64_t p0, int64_t np, ActPair (*panel)[kPanelCols]) {
    static_assert(K::kTwoChains && !K::kOffset);
    using A = typename K::A;
    const int64_t nb = g.n / 32;
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(static_cast<uint8_t>(K::kBias)));
    for (int c = 0; c < kPanelCols; ++c) {
        if (c >= ncols) {
            for (int64_t i = 0; i < np; ++i) {
                panel[i][c] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_ps()};
            }
            continue;
        }
        const auto* a = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
        for (int64_t i = 0; i < np; ++i) {
            const int64_t b = 2 * (p0 + i);
            const bool both = b + 1 < nb;
            const __m256i hi = both ? load256(a[b + 1].qs) : _mm256_setzero_si256();
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[b].qs)), hi, 1);
            __m512i neg = _mm512_setzero_si512();
            if constexpr (K::kBias != 0)
                neg = _mm512_sub_epi32(neg, _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, q));
            const __m512 d =
                _mm512_insertf32x8(_mm512_set1_ps(h2f(a[b].d)), _mm256_set1_ps(both ? h2f(a[b + 1].d) : 0.0f), 1);
            panel[i][c] = {q, neg, d};
        }
    }
}

// R weight rows (w[r] at block 0) x kPanelCols columns over pairs [p0, p0 + np) of the panel; `half`:
// the last of these pairs holds only one block (the row's last), whose odd lanes are left unchanged.
template <class K, int R>
inline void panel_rows(const typename K::W* const* w, const ActPair (*panel)[kPanelCols], int64_t p0, int64_t np,
                       bool half, __m512 (*acc)[kPanelCols], int64_t prefetch) {
    const int64_t n_full = half ? np - 1 : np;
    const __m512i idx_d = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int64_t i = 0; i < n_full; ++i) {
        const int64_t b = 2 * (p0 + i);
        __m512i q[R];
        __m512 d[R];
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) {
            // The same blocks of the rows after these (a software prefetch: the rows are strided).
            _mm_prefetch(reinterpret_cast<const char*>(&w[r][b]) + prefetch, _MM_HINT_T0);
            q[r] = _mm512_inserti64x4(_mm512_castsi256_si512(K::codes(w[r][b])), K::codes(w[r][b + 1]), 1);
            const __m512 sm = _mm512_zextps128_ps512(scales2<K>(w[r][b], w[r][b + 1]));
            d[r] = _mm512_permutexvar_ps(idx_d, sm);
        }
#pragma GCC unroll 8
        for (int c = 0; c < kPanelCols; ++c) {
            const ActPair& a = panel[i][c];
#pragma GCC unroll 2
            for (int r = 0; r < R; ++r)
                acc[r][c] = block_acc(acc[r][c], _mm512_dpbusd_epi32(a.neg, q[r], a.q), d[r], a.d);
        }
    }
    if (half) {
        const int64_t b = 2 * (p0 + n_full);
        __m512i q[R];
        __m512 d[R];
        for (int r = 0; r < R; ++r) {
            q[r] = _mm512_castsi256_si512(K::codes(w[r][b]));
            q[r] = _mm512_inserti64x4(q[r], _mm256_setzero_si256(), 1);
            d[r] = _mm512_set1_ps(K::scale(w[r][b]));
        }
        for (int c = 0; c < kPanelCols; ++c) {
            const ActPair& a = panel[n_full][c];
            for (int r = 0; r < R; ++r) {
                const __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(a.neg, q[r], a.q));
                acc[r][c] = _mm512_mask3_fmadd_ps(s, _mm512_mul_ps(d[r], a.d), acc[r][c], __mmask16(0x00ff));
            }
        }
    }
}

// Columns [c0, c0 + ncols) (ncols <= kPanelCols) of the tile.
template <class K>
void panel_gemm(const GemmArgs& g, int64_t c0, int ncols) {
    using W = typename K::W;
    const int64_t nb = g.n / 32, n_pairs = (nb + 1) / 2;
    alignas(64) ActPair panel[kChunkPairs][kPanelCols];
    alignas(64) __m512 acc[kPanelRows][kPanelCols];
    for (int64_t r0 = 0; r0 < g.nr; r0 += kPanelRows) {
        const int64_t nr = min64(kPanelRows, g.nr - r0);
        for (int64_t r = 0; r < nr; ++r) {
            for (int c = 0; c < kPanelCols; ++c) acc[r][c] = _mm512_setzero_ps();
        }
        for (int64_t p0 = 0; p0 < n_pairs; p0 += kChunkPairs) {
            const int64_t np = min64(kChunkPairs, n_pairs - p0);
            const bool half = p0 + np == n_pairs && nb % 2 != 0;
            pack_panel<K>(g, c0, ncols, p0, np, panel);
            int64_t r = 0;
            for (; r + 2 <= nr; r += 2) {
                const W* w[2] = {
                    reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + (r0 + r) * g.w_stride),
                    reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + (r0 + r + 1) * g.w_stride)};
                // Local copies, so that the compiler keeps them in registers.
                __m512 a2[2][kPanelCols];
                for (int c = 0; c < kPanelCols; ++c) a2[0][c] = acc[r][c], a2[1][c] = acc[r + 1][c];
                panel_rows<K, 2>(w, panel, p0, np, half, a2, int64_t(2 * g.w_stride));
                for (int c = 0; c < kPanelCols; ++c) acc[r][c] = a2[0][c], acc[r + 1][c] = a2[1][c];
            }
            if (r < nr) {
                const W* w[1] = {reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + (r0 + r) * g.w_stride)};
                panel_rows<K, 1>(w, panel, p0, np, half, &acc[r], int64_t(g.w_stride));
            }
        }
        for (int64_t r = 0; r < nr; ++r) {
            for (int c = 0; c < ncols; ++c) {
                const __m256 lo = _mm512_castps512_ps256(acc[r][c]);
                const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][c]), 1));
                g.y[(c0 + c) * g.ldy + r0 + r] = hsum(_mm256_add_ps(lo, hi));
            }
        }
    }
}

// AVX-512 prefill of the one-chain formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): register tiles of 4 weight
// rows x kPanelCols = 8 activation columns. Each zmm accumulator holds two outputs, rows 2j (lanes 0..7)
// and 2j + 1 (lanes 8..15) of one column: per block the weights are [row 2j's block b | row 2j+1's
// block b], the activation block b is broadcast to both halves and the scales are
// [d_w(2j) d_a x 8 | d_w(2j+1) d_a x 8], so every output's 8 lanes are one chain over the blocks in
// order (block_acc: the same operations lane by lane as tile<K, 1> and gemv_rows2) and its result is
// hsum of its half, as in decode. Offset formats (Q4_1, Q5_1) keep one vector per row pair for all 8
// columns: lane c = row 2j's m_w * s_a summed over the blocks in order, lane 8 + c row 2j+1's.
//
// The quants are read from the activation blocks; per block of kChunkBlocks blocks at a time, the scales are
// widened to float (dsc, and the offset formats' s_a in ssum) and the signed formats' correction computed (neg), a
// panel that stays in L1 while the weight rows stream past it; the accumulators are kept in memory between chunks for
// up to kPanelRows rows. Padded columns read a real column's quants with zero scales (outputs never stored).
constexpr int64_t kChunkBlocks = 32;

// Fills neg[i][c] (formats with a bias), dsc[i][c] (and ssum[i][c]) for blocks [b0, b0 + n) of the NC tile columns
// (ncols real ones, the rest zeros; ssum's lanes past NC are zeros too, as block_rows reads all 8).
template <class K, int NC>
void pack_blocks(const GemmArgs& g, int64_t c0, int ncols, int64_t b0, int64_t n, __m256i (*neg)[kPanelCols],
                 float (*dsc)[kPanelCols], float (*ssum)[kPanelCols]) {
    using A = typename K::A;
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(static_cast<uint8_t>(K::kBias)));
    if constexpr (K::kOffset && NC < kPanelCols) {
        for (int64_t i = 0; i < n; ++i)
            for (int c = NC; c < kPanelCols; ++c) ssum[i][c] = 0.0f;
    }
    for (int c = 0; c < NC; ++c) {
        if (c >= ncols) {
            for (int64_t i = 0; i < n; ++i) {
                if constexpr (K::kBias != 0) neg[i][c] = _mm256_setzero_si256();
                dsc[i][c] = 0.0f;
                if constexpr (K::kOffset) ssum[i][c] = 0.0f;
            }
            continue;
        }
        const auto* a = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
        for (int64_t i = 0; i < n; ++i) {
            const A& ab = a[b0 + i];
            if constexpr (K::kBias != 0)
                neg[i][c] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                             _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, load256(ab.qs)));
            dsc[i][c] = h2f(ab.d);
            if constexpr (K::kOffset) ssum[i][c] = h2f(ab.s);
        }
    }
}

// [codes(w0) | codes(w1)]. The nibble formats without a fifth bit unpack both blocks in one register: [w0's bytes,
// w0's bytes, w1's, w1's], the odd 128-bit lanes shifted down by 4, masked to the nibbles; Q8_0 flips both signs at
// once.
template <class K>
inline __m512i codes2(const typename K::W& w0, const typename K::W& w1) {
    if constexpr (std::is_same_v<K, KQ4_0> || std::is_same_v<K, KQ4_1>) {
        return nibbles2(w0.qs, w1.qs);
    } else if constexpr (std::is_same_v<K, KQ8_0>) {
        const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(load256(w0.qs)), load256(w1.qs), 1);
        return _mm512_xor_si512(x, _mm512_set1_epi8(-128));
    } else {
        return _mm512_inserti64x4(_mm512_castsi256_si512(K::codes(w0)), K::codes(w1), 1);
    }
}

// 2 * RP weight rows (w[k] at block 0; row pair j = rows 2j, 2j + 1) x NC columns over blocks
// [b0, b0 + n) of the panel.
// Offset formats with up to 4 columns keep the m_w * s_a sums of two row pairs in one vector (kQuadOff): lane 4k + c
// = row k of the 4 rows x column c, so one permutation, product and sum serve 4 rows.
template <class K, int NC>
constexpr bool kQuadOff = K::kOffset&& NC <= 4;

// [d0, m0, d1, m1, d2, m2, d3, m3] of the offset formats' blocks w0..w3 in one conversion.
template <class K>
inline __m256 scales4(const typename K::W& w0, const typename K::W& w1, const typename K::W& w2,
                      const typename K::W& w3) {
    static_assert(K::kOffset && offsetof(typename K::W, d) == 0 && offsetof(typename K::W, m) == 2);
    int32_t x[4];
    std::memcpy(&x[0], &w0, 4);
    std::memcpy(&x[1], &w1, 4);
    std::memcpy(&x[2], &w2, 4);
    std::memcpy(&x[3], &w3, 4);
    return _mm256_cvtph_ps(
        _mm_insert_epi32(_mm_insert_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(x[0]), x[1], 1), x[2], 2), x[3], 3));
}

// 2 * RP weight rows x NC columns (see above); with kQuadOff, off[k] holds row pairs 2k, 2k + 1 of the tile, and a
// one-pair tile (RP = 1) updates half `half` of off[0].
template <class K, int RP, int NC>
inline void block_rows(const typename K::W* const* w, const typename K::A* const* a, const __m256i (*panel)[kPanelCols],
                       const float (*dsc)[kPanelCols], const float (*ssum)[kPanelCols], int64_t b0, int64_t n,
                       __m512 (*acc)[kPanelCols], __m512* off, int64_t prefetch, [[maybe_unused]] int half = 0) {
    constexpr bool kQuad = kQuadOff<K, NC>;
    static_assert(!kQuad || RP == 1 || RP % 2 == 0);
    const __m512i idx_d = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    [[maybe_unused]] const __m512i idx_m = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    [[maybe_unused]] const __m512i idx_d2 = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
    [[maybe_unused]] const __m512i idx_m4 = _mm512_set_epi32(7, 7, 7, 7, 5, 5, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1);
    [[maybe_unused]] const __m512i idx_m2 = _mm512_set_epi32(3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t b = b0 + i;
        __m512i q[RP];
        __m512 d[RP];
#pragma GCC unroll 4
        for (int j = 0; j < RP; ++j) {
            const typename K::W& w0 = w[2 * j][b];
            const typename K::W& w1 = w[2 * j + 1][b];
            // The same blocks of the rows after these (a software prefetch: the rows are strided).
            _mm_prefetch(reinterpret_cast<const char*>(&w0) + prefetch, _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(&w1) + prefetch, _MM_HINT_T0);
            q[j] = codes2<K>(w0, w1);
            if constexpr (kQuad && RP > 1) {
                if (j % 2 == 0) {
                    const __m512 sm = _mm512_zextps256_ps512(scales4<K>(w0, w1, w[2 * j + 2][b], w[2 * j + 3][b]));
                    d[j] = _mm512_permutexvar_ps(idx_d, sm);
                    d[j + 1] = _mm512_permutexvar_ps(idx_d2, sm);
                    const __m512 m = _mm512_permutexvar_ps(idx_m4, sm);
                    off[j / 2] =
                        _mm512_add_ps(off[j / 2], _mm512_mul_ps(m, _mm512_broadcast_f32x4(_mm_load_ps(ssum[i]))));
                }
            } else {
                const __m512 sm = _mm512_zextps128_ps512(scales2<K>(w0, w1));
                d[j] = _mm512_permutexvar_ps(idx_d, sm);
                if constexpr (kQuad) {
                    const __m512 m = _mm512_permutexvar_ps(idx_m2, sm);
                    off[0] = _mm512_mask_add_ps(off[0], half != 0 ? __mmask16(0xff00) : __mmask16(0x00ff), off[0],
                                                _mm512_mul_ps(m, _mm512_broadcast_f32x4(_mm_load_ps(ssum[i]))));
                } else if constexpr (K::kOffset) {
                    const __m512 m = _mm512_permutexvar_ps(idx_m, sm);
                    off[j] = _mm512_add_ps(off[j], _mm512_mul_ps(m, _mm512_broadcast_f32x8(_mm256_load_ps(ssum[i]))));
                }
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
            const __m512i aq = _mm512_broadcast_i64x4(load256(a[c][b].qs));
            // Without a bias the dot starts from a zeroing idiom, not from a loaded (or copied) zero.
            const __m512i neg = K::kBias != 0 ? _mm512_broadcast_i64x4(panel[i][c]) : _mm512_setzero_si512();
            const __m512 ad = _mm512_set1_ps(dsc[i][c]);
#pragma GCC unroll 4
            for (int j = 0; j < RP; ++j) acc[j][c] = block_acc(acc[j][c], _mm512_dpbusd_epi32(neg, q[j], aq), d[j], ad);
        }
    }
}

// Row pairs per register tile for NC columns: 1 column (decode) keeps 4 FMA chains in flight; with more columns the
// accumulators (row pairs x NC) plus each row pair's codes and scales should fit in the 32 zmm (4 row pairs x 4
// columns spill a few accumulators, yet measured no slower than 3 row pairs, which do not).
template <int NC>
constexpr int kTileRowPairs = NC == kPanelCols ? 2 : 4;

// hsum of the 8 outputs of four accumulators of block_gemm (rows 2j, 2j + 1 of a column in each), in row order:
// the additions of hsum, output by output (lo + hi of each 8 lanes, then lanes k + (k + 2), then 0 + 1).
inline __m256 hsum_pairs4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    // x128 of rows 0..3 and 4..7, one row per 128-bit lane.
    const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(3, 1, 3, 1)));
    // Lane l: [x64 of row l (2 lanes), x64 of row 4 + l (2 lanes)].
    const __m512 x64 = _mm512_add_ps(_mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 x32 = _mm512_add_ps(x64, _mm512_movehdup_ps(x64));  // row l in 4l, row 4 + l in 4l + 2
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, x32));
}

// Rows [r0, r0 + 2 * npairs) (an odd last row paired with itself) x the NC columns of the panel over blocks [b0, b0 +
// n): tiles of RP row pairs, the rest in smaller tiles.
template <class K, int NC, int RP>
inline void block_pairs(const GemmArgs& g, const typename K::A* const* a, int64_t r0, int64_t j, int64_t npairs,
                        const __m256i (*panel)[kPanelCols], const float (*dsc)[kPanelCols],
                        const float (*ssum)[kPanelCols], int64_t b0, int64_t n, __m512 (*acc)[kPanelCols],
                        __m512* off) {
    using W = typename K::W;
    auto row = [&](int64_t r) {
        return reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + min64(r, g.nr - 1) * g.w_stride);
    };
    for (; j + RP <= npairs; j += RP) {
        const int64_t r = r0 + 2 * j;
        const W* w[2 * RP];
        for (int k = 0; k < 2 * RP; ++k) w[k] = row(r + k);
        // Local copies, so that the compiler keeps them in registers.
        constexpr bool kQuad = kQuadOff<K, NC>;
        constexpr int kOff = kQuad ? (RP + 1) / 2 : RP;
        __m512* const o = kQuad ? off + j / 2 : off + j;
        __m512 a2[RP][kPanelCols];
        __m512 o2[kOff];
        for (int k = 0; k < kOff; ++k) o2[k] = o[k];
        for (int k = 0; k < RP; ++k) {
            for (int c = 0; c < NC; ++c) a2[k][c] = acc[j + k][c];
        }
        block_rows<K, RP, NC>(w, a, panel, dsc, ssum, b0, n, a2, o2, int64_t(2 * RP * g.w_stride), int(j % 2));
        for (int k = 0; k < kOff; ++k) o[k] = o2[k];
        for (int k = 0; k < RP; ++k) {
            for (int c = 0; c < NC; ++c) acc[j + k][c] = a2[k][c];
        }
    }
    if constexpr (RP > 2) {
        block_pairs<K, NC, 2>(g, a, r0, j, npairs, panel, dsc, ssum, b0, n, acc, off);
    } else if constexpr (RP == 2) {
        block_pairs<K, NC, 1>(g, a, r0, j, npairs, panel, dsc, ssum, b0, n, acc, off);
    }
}

// Columns [c0, c0 + ncols) (ncols <= NC) of the tile. NC is kPanelCols (6..8 columns), 4 (decode of 4 sequences, and
// 3 columns padded), 2 or 1 (decode of one sequence); the activation blocks are laid out once per chunk of blocks
// (once per call for rows of up to kChunkBlocks blocks), not once per panel of rows.
template <class K, int NC>
void block_gemm(const GemmArgs& g, int64_t c0, int ncols) {
    static_assert(NC == kPanelCols || NC == 4 || NC == 2 || NC == 1);
    const int64_t nb = g.n / 32;
    using A = typename K::A;
    alignas(64) __m256i panel[K::kBias != 0 ? kChunkBlocks : 1][kPanelCols];  // neg
    alignas(64) float dsc[kChunkBlocks][kPanelCols];
    alignas(64) float ssum[kChunkBlocks][kPanelCols];
    alignas(64) __m512 acc[kPanelRows / 2][kPanelCols];
    alignas(64) __m512 off[kPanelRows / 2];  // offset formats: lanes c / 8 + c of row pair j, or kQuadOff's
    const A* a[NC];
    for (int c = 0; c < NC; ++c)
        a[c] = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + (c < ncols ? c : 0)) * g.a_stride);
    int64_t packed = -1;  // the first block of the chunk in the panel
    for (int64_t r0 = 0; r0 < g.nr; r0 += kPanelRows) {
        const int64_t nr = min64(kPanelRows, g.nr - r0);
        const int64_t npairs = (nr + 1) / 2;
        for (int64_t j = 0; j < npairs; ++j) {
            for (int c = 0; c < NC; ++c) acc[j][c] = _mm512_setzero_ps();
            off[j] = _mm512_setzero_ps();
        }
        for (int64_t b0 = 0; b0 < nb; b0 += kChunkBlocks) {
            const int64_t n = min64(kChunkBlocks, nb - b0);
            if (packed != b0) pack_blocks<K, NC>(g, c0, ncols, b0, n, panel, dsc, ssum);
            packed = b0;
            block_pairs<K, NC, kTileRowPairs<NC>>(g, a, r0, 0, npairs, panel, dsc, ssum, b0, n, acc, off);
        }
        int64_t r = 0;
        for (; r + 8 <= nr; r += 8) {
            const int64_t j = r / 2;
            for (int c = 0; c < ncols; ++c) {
                __m256 v = hsum_pairs4(acc[j][c], acc[j + 1][c], acc[j + 2][c], acc[j + 3][c]);
                if constexpr (kQuadOff<K, NC>) {
                    // Rows r..r + 7: lanes 4k + c of off[j / 2], off[j / 2 + 1].
                    const __m512i idx = _mm512_add_epi32(
                        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set1_epi32(c));
                    v = _mm256_add_ps(v,
                                      _mm512_castps512_ps256(_mm512_permutex2var_ps(off[j / 2], idx, off[j / 2 + 1])));
                } else if constexpr (K::kOffset) {
                    // Rows r..r + 7: lanes c and 8 + c of off[j..j + 3].
                    const __m512i idx = _mm512_add_epi32(
                        _mm512_setr_epi32(0, 8, 16, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), _mm512_set1_epi32(c));
                    const __m512 lo = _mm512_permutex2var_ps(off[j], idx, off[j + 1]);
                    const __m512 hi = _mm512_permutex2var_ps(off[j + 2], idx, off[j + 3]);
                    v = _mm256_add_ps(v,
                                      _mm256_insertf128_ps(_mm512_castps512_ps256(lo), _mm512_castps512_ps128(hi), 1));
                }
                _mm256_storeu_ps(g.y + (c0 + c) * g.ldy + r0 + r, v);
            }
        }
        for (; r < nr; ++r) {
            const int64_t j = r / 2, h = r % 2;
            alignas(64) float o[16];
            _mm512_store_ps(o, off[kQuadOff<K, NC> ? r / 4 : j]);
            for (int c = 0; c < ncols; ++c) {
                const __m512d pair = _mm512_castps_pd(acc[j][c]);
                float v =
                    hsum(_mm256_castpd_ps(h == 0 ? _mm512_castpd512_pd256(pair) : _mm512_extractf64x4_pd(pair, 1)));
                if constexpr (K::kOffset) v += o[kQuadOff<K, NC> ? 4 * (r % 4) + c : 8 * h + c];
                g.y[(c0 + c) * g.ldy + r0 + r] = v;
            }
        }
    }
}

// AVX-512 steps of several sequences in the one-sum order (KernelTable::gemm_one_sum; Q4_1 and Q8_0): strips of 16
// weight rows, one row per int32 lane. A block's 32 codes sit in 8 registers, register k holding codes 4k..4k+3 of the
// 16 rows, so per column the 8 dpbusd of the activation's quants 4k..4k+3 (broadcast) add up to each row's whole
// integer dot in its lane (two chains, added: exact), and one conversion, one product d_w * d_a and one FMA serve 16
// outputs. Q8_0's signed codes are biased to unsigned (+128) and the chain starts from -128 * (the sum of the
// activation block's quants), computed once per call: the same integer.
//
// The file's layout gives one row's block at a time: each block of the strip is transposed in registers (four rows'
// 16 code bytes per register, then 4 x 4 dwords per 128-bit lane) and the rows' fp16 scales (and Q4_1's minimums)
// gathered.
constexpr int64_t kStripRows = kOneSumRows;
constexpr int kStripCols = 8;  // columns per pass

struct StripBlock {
    __m512i w[8];  // codes 4k..4k+3 of the 16 rows, unsigned bytes
    __m512 d, m;   // the 16 rows' scales and (Q4_1) minimums
};

// Dwords 0..3 of the 16 bytes at p + r * stride (r < 16) -> q[j]: dword j of row r in int32 lane r.
inline void transpose_16x4(const uint8_t* p, size_t stride, __m512i q[4]) {
    auto row = [&](int r) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + size_t(r) * stride)); };
    __m512i z[4];  // z[g]: rows g, g + 4, g + 8, g + 12 in its 128-bit lanes 0..3
    for (int g = 0; g < 4; ++g) {
        z[g] = _mm512_inserti32x4(
            _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(row(g)), row(g + 4), 1), row(g + 8), 2),
            row(g + 12), 3);
    }
    const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    q[0] = _mm512_unpacklo_epi64(t0, t2);
    q[1] = _mm512_unpackhi_epi64(t0, t2);
    q[2] = _mm512_unpacklo_epi64(t1, t3);
    q[3] = _mm512_unpackhi_epi64(t1, t3);
}

// The low 16 bits of each int32 lane (vpmovdw; the zero-masked form: GCC's unmasked intrinsic starts from an
// undefined register, which -Wuninitialized rejects in some builds).
inline __m256i low_halves(__m512i x) { return _mm512_maskz_cvtepi32_epi16(__mmask16(0xffff), x); }

// Block b of the 16 rows at w (stride bytes apart); dm: each row's first dword of the block.
template <class K>
inline void strip_unpack(const uint8_t* w, size_t stride, __m512i dm, int64_t b, StripBlock& out) {
    using W = typename K::W;
    const uint8_t* p = w + b * int64_t(sizeof(W));
    out.d = _mm512_cvtph_ps(low_halves(dm));
    __m512i q[4];
    transpose_16x4(p + offsetof(W, qs), stride, q);
    if constexpr (std::is_same_v<K, KQ4_1>) {
        // Codes 4k..4k+3: the low nibbles of bytes 4k..4k+3 for k < 4, the high nibbles of bytes 4k-16.. for k >= 4.
        static_assert(offsetof(W, m) == 2);
        out.m = _mm512_cvtph_ps(low_halves(_mm512_srli_epi32(dm, 16)));
        const __m512i low = _mm512_set1_epi8(15);
        for (int j = 0; j < 4; ++j) {
            out.w[j] = _mm512_and_si512(q[j], low);
            out.w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(q[j], 4), low);
        }
    } else {
        static_assert(std::is_same_v<K, KQ8_0>);
        const __m512i bias = _mm512_set1_epi8(-128);
        __m512i q2[4];
        transpose_16x4(p + offsetof(W, qs) + 16, stride, q2);
        for (int j = 0; j < 4; ++j) {
            out.w[j] = _mm512_xor_si512(q[j], bias);
            out.w[j + 4] = _mm512_xor_si512(q2[j], bias);
        }
    }
}

// The 4 quants at p as one int32, broadcast (a load, not a shuffle).
inline __m512i broadcast_quads(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// A pass's activation blocks, widened once per call: [block][column] d_a, and s_a (Q4_1) or -128 * sum(quants)
// (Q8_0).
constexpr int64_t kStripScaleBlocks = 512;  // rows of up to 16384 elements; longer ones go one row at a time
struct StripAct {
    float d[kStripScaleBlocks][kStripCols];
    float s[kStripScaleBlocks][kStripCols];
    int32_t neg[kStripScaleBlocks][kStripCols];
};

// The 16 rows at w x NC columns (a[c] at block 0), y[c] = the column's 16 outputs.
template <class K, int NC>
void strip_one_sum(const uint8_t* w, size_t stride, __m512i rowoff, int64_t nb, const typename K::A* const* a,
                   const StripAct& act, float* const* y) {
    __m512 acc[NC], off[NC];
    for (int c = 0; c < NC; ++c) acc[c] = off[c] = _mm512_setzero_ps();
    // The next strip's bytes (contiguous rows), 16 blocks' worth per block of this one: a software prefetch.
    const char* next = reinterpret_cast<const char*>(w + kStripRows * stride);
    constexpr int64_t kStep = kStripRows * int64_t(sizeof(typename K::W));
    // Each row's first dword of a block (d, and Q4_1's m), gathered one block ahead of its use.
    static_assert(offsetof(typename K::W, d) == 0);
    __m512i dm_next = _mm512_i32gather_epi32(rowoff, w, 1);
    for (int64_t b = 0; b < nb; ++b) {
        for (int64_t l = 0; l < kStep; l += 64) _mm_prefetch(next + b * kStep + l, _MM_HINT_T0);
        const __m512i dm = dm_next;
        if (b + 1 < nb) dm_next = _mm512_i32gather_epi32(rowoff, w + (b + 1) * int64_t(sizeof(typename K::W)), 1);
        StripBlock s;
        strip_unpack<K>(w, stride, dm, b, s);
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
            const int8_t* aq = a[c][b].qs;
            const __m512i start = K::kOffset ? _mm512_setzero_si512() : _mm512_set1_epi32(act.neg[b][c]);
            __m512i even = _mm512_dpbusd_epi32(start, s.w[0], broadcast_quads(aq));
            __m512i odd = _mm512_dpbusd_epi32(_mm512_setzero_si512(), s.w[1], broadcast_quads(aq + 4));
#pragma GCC unroll 3
            for (int k = 2; k < 8; k += 2) {
                even = _mm512_dpbusd_epi32(even, s.w[k], broadcast_quads(aq + 4 * k));
                odd = _mm512_dpbusd_epi32(odd, s.w[k + 1], broadcast_quads(aq + 4 * k + 4));
            }
            const __m512 sumi = _mm512_cvtepi32_ps(_mm512_add_epi32(even, odd));
            acc[c] = _mm512_fmadd_ps(sumi, _mm512_mul_ps(s.d, _mm512_set1_ps(act.d[b][c])), acc[c]);
            if constexpr (K::kOffset) off[c] = _mm512_add_ps(off[c], _mm512_mul_ps(s.m, _mm512_set1_ps(act.s[b][c])));
        }
    }
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(y[c], K::kOffset ? _mm512_add_ps(acc[c], off[c]) : acc[c]);
}

// One output in the one-sum order, for the rows outside the strips.
template <class K>
float one_sum_row(const typename K::W* w, const typename K::A* a, int64_t nb) {
    float acc = 0.0f, off = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
        __m256i s;
        if constexpr (K::kOffset) {
            s = dot_u8s8(unpack_nibbles_16(w[b].qs), load256(a[b].qs));
        } else {
            s = dot_s8s8(load256(w[b].qs), load256(a[b].qs));
        }
        acc = _mm_cvtss_f32(
            _mm_fmadd_ss(_mm_set_ss(float(hsum_i32(s))), _mm_set_ss(h2f(w[b].d) * h2f(a[b].d)), _mm_set_ss(acc)));
        if constexpr (K::kOffset) off = off + h2f(w[b].m) * h2f(a[b].s);
    }
    return K::kOffset ? acc + off : acc;
}

// KernelTable::gemm_one_sum: 16-row strips for up to kStripCols columns at a time, the last nr % 16 rows (and all
// rows longer than kStripScaleBlocks blocks) one at a time in the same order.
template <class K>
void gemm_one_sum(const GemmArgs& g) {
    using A = typename K::A;
    using W = typename K::W;
    const int64_t nb = g.n / 32;
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(int32_t(g.w_stride)));
    // Strips for rows whose activation blocks fit the buffers.
    const int64_t strip_rows = nb <= kStripScaleBlocks ? g.nr / kStripRows * kStripRows : 0;
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    alignas(64) StripAct act;
    for (int64_t c0 = 0; c0 < g.nc; c0 += kStripCols) {
        const int nc = int(min64(kStripCols, g.nc - c0));
        const A* a[kStripCols];
        for (int c = 0; c < nc; ++c) {
            a[c] = reinterpret_cast<const A*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
            for (int64_t b = 0; b < nb && strip_rows > 0; ++b) {
                act.d[b][c] = h2f(a[c][b].d);
                if constexpr (K::kOffset) {
                    act.s[b][c] = h2f(a[c][b].s);
                } else {
                    act.neg[b][c] = -hsum_i32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, load256(a[c][b].qs)));
                }
            }
        }
        int64_t r0 = 0;
        for (; r0 < strip_rows; r0 += kStripRows) {
            const uint8_t* w = static_cast<const uint8_t*>(g.w) + r0 * int64_t(g.w_stride);
            float* y[kStripCols];
            for (int c = 0; c < nc; ++c) y[c] = g.y + (c0 + c) * g.ldy + r0;
            switch (nc) {
                case 1: strip_one_sum<K, 1>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 2: strip_one_sum<K, 2>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 3: strip_one_sum<K, 3>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 4: strip_one_sum<K, 4>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 5: strip_one_sum<K, 5>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 6: strip_one_sum<K, 6>(w, g.w_stride, rowoff, nb, a, act, y); break;
                case 7: strip_one_sum<K, 7>(w, g.w_stride, rowoff, nb, a, act, y); break;
                default: strip_one_sum<K, 8>(w, g.w_stride, rowoff, nb, a, act, y); break;
            }
        }
        for (; r0 < g.nr; ++r0) {
            const auto* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r0 * int64_t(g.w_stride));
            for (int c = 0; c < nc; ++c) g.y[(c0 + c) * g.ldy + r0] = one_sum_row<K>(w, a[c], nb);
        }
    }
}

#endif

// Decode of a one-chain format: two weight rows at a time, each with its own single accumulator (the
// operations of tile<K, 1> row by row, so the same bits), interleaved so that the two FMA chains hide
// each other's latency as the even/odd chains of the two-chain formats do.
template <class K>
void gemv_rows2(const GemmArgs& g) {
    using A = typename K::A;
    using W = typename K::W;
    const int64_t nb = g.n / 32;
    const A* a[1] = {static_cast<const A*>(g.a)};
    int64_t r = 0;
    for (; r + 2 <= g.nr; r += 2) {
        const W* w0 = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        const W* w1 = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + (r + 1) * g.w_stride);
        __m256 acc0[1] = {_mm256_setzero_ps()}, acc1[1] = {_mm256_setzero_ps()};
        __m128 off0[1] = {_mm_setzero_ps()}, off1[1] = {_mm_setzero_ps()};
        for (int64_t b = 0; b < nb; ++b) {
            prefetch_ahead(w0 + b);
            prefetch_ahead(w1 + b);
            block_step<K, 1>(w0[b], K::unpack(w0[b]), a, b, acc0, off0);
            block_step<K, 1>(w1[b], K::unpack(w1[b]), a, b, acc1, off1);
        }
        float v0 = hsum(acc0[0]), v1 = hsum(acc1[0]);
        if constexpr (K::kOffset) {
            v0 += _mm_cvtss_f32(_mm_shuffle_ps(off0[0], off0[0], 1));
            v1 += _mm_cvtss_f32(_mm_shuffle_ps(off1[0], off1[0], 1));
        }
        g.y[r] = v0;
        g.y[r + 1] = v1;
    }
    if (r < g.nr) {
        GemmArgs last = g;
        last.w = static_cast<const uint8_t*>(g.w) + r * g.w_stride;
        last.nr = g.nr - r;
        last.y = g.y + r;
        tile<K, 1>(last, 0);
    }
}

// Columns in ymm tiles of kMaxCols, the remainder with a smaller tile.
template <class K>
void gemm_ymm(const GemmArgs& g) {
    if (!K::kTwoChains && g.nc == 1) {
        gemv_rows2<K>(g);
        return;
    }
    int64_t c = 0;
    for (; c + kMaxCols <= g.nc; c += kMaxCols) tile<K, kMaxCols>(g, c);
    switch (g.nc - c) {
        case 0: break;
        case 1: tile<K, 1>(g, c); break;
        case 2: tile<K, 2>(g, c); break;
        default: tile<K, 3>(g, c); break;
    }
}

#if defined(__AVX512F__)
// The two-chain formats: decode in gemv_pairs, groups of 8 columns (a last 4..7 padded) in panel_gemm, then
// tile_pairs and tile<K, 1>; rows too long for the scale buffers take the ymm tiles (same per-column results).
template <class K>
void gemm_two_chains(const GemmArgs& g) {
    constexpr int64_t kFields = K::kOffset ? 2 : 1;
    if (g.nc == 1 && g.n / 32 <= kMaxGemvBlocks) {
        gemv_pairs<K>(g);
        return;
    }
    if (g.nc == 1 || g.n / 32 * 4 * kFields * 2 > kMaxPairScales) {
        gemm_ymm<K>(g);
        return;
    }
    int64_t c = 0;
    for (; g.nc - c >= kPanelCols / 2; c += kPanelCols) panel_gemm<K>(g, c, int(min64(kPanelCols, g.nc - c)));
    if (c >= g.nc) return;
    for (; c + 8 <= g.nc; c += 8) tile_pairs<K, 4>(g, c);
    switch ((g.nc - c) / 2) {
        case 3: tile_pairs<K, 3>(g, c); break;
        case 2: tile_pairs<K, 2>(g, c); break;
        case 1: tile_pairs<K, 1>(g, c); break;
        default: break;
    }
    c += (g.nc - c) / 2 * 2;
    if (c < g.nc) tile<K, 1>(g, c);
}

// The one-chain formats: every column in a block_gemm register tile, groups of 8 (a last 6..7 padded to 8), then 4
// (3 padded to 4), 2 and 1 (decode).
template <class K>
void gemm(const GemmArgs& g) {
    if constexpr (K::kTwoChains) {
        gemm_two_chains<K>(g);
    } else {
        int64_t c = 0;
        for (; g.nc - c >= kPanelCols - 2; c += kPanelCols)
            block_gemm<K, kPanelCols>(g, c, int(min64(kPanelCols, g.nc - c)));
        if (g.nc - c >= 3) {
            block_gemm<K, 4>(g, c, int(min64(4, g.nc - c)));
            c += 4;
        }
        if (g.nc - c >= 2) {
            block_gemm<K, 2>(g, c, 2);
            c += 2;
        }
        if (g.nc - c == 1) block_gemm<K, 1>(g, c, 1);
    }
}
#else
template <class K>
void gemm(const GemmArgs& g) {
    gemm_ymm<K>(g);
}
#endif

}  // namespace

void fill_gemm_q32(KernelTable& t) {
    t.gemm[int(GgmlType::Q8_0)] = gemm<KQ8_0>;
    t.gemm[int(GgmlType::Q4_0)] = gemm<KQ4_0>;
    t.gemm[int(GgmlType::Q4_1)] = gemm<KQ4_1>;
    t.gemm[int(GgmlType::Q5_0)] = gemm<KQ5_0>;
    t.gemm[int(GgmlType::Q5_1)] = gemm<KQ5_1>;
    t.gemm[int(GgmlType::IQ4_NL)] = gemm<KIQ4_NL>;
    t.gemm[int(GgmlType::MXFP4)] = gemm<KMXFP4>;
#if defined(__AVX512F__)
    t.gemm_one_sum[int(GgmlType::Q4_1)] = gemm_one_sum<KQ4_1>;
    t.gemm_one_sum[int(GgmlType::Q8_0)] = gemm_one_sum<KQ8_0>;
#endif
}

}  // namespace ferry::quant::FERRY_ISA
