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
};

struct KQ4_0 {
    using W = BlockQ4_0;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        return make<true>(_mm256_sub_epi8(unpack_nibbles_16(w.qs), _mm256_set1_epi8(8)), h2f(w.d));
    }
};

struct KQ4_1 {
    using W = BlockQ4_1;
    using A = BlockQ8_1;
    static constexpr bool kSigned = false, kOffset = true, kTwoChains = false;
    static Unpacked unpack(const W& w) { return make<false>(unpack_nibbles_16(w.qs), 0.0f); }
};

struct KQ5_0 {
    using W = BlockQ5_0;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        const __m256i q = _mm256_or_si256(unpack_nibbles_16(w.qs), fifth_bits(w.qh));
        return make<true>(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), h2f(w.d));
    }
};

struct KQ5_1 {
    using W = BlockQ5_1;
    using A = BlockQ8_1;
    static constexpr bool kSigned = false, kOffset = true, kTwoChains = false;
    static Unpacked unpack(const W& w) {
        return make<false>(_mm256_or_si256(unpack_nibbles_16(w.qs), fifth_bits(w.qh)), 0.0f);
    }
};

struct KIQ4_NL {
    using W = BlockIQ4NL;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = true;
    static Unpacked unpack(const W& w) { return make<true>(lookup16(kIq4nlValues, unpack_nibbles_16(w.qs)), h2f(w.d)); }
};

struct KMXFP4 {
    using W = BlockMXFP4;
    using A = BlockQ8_0;
    static constexpr bool kSigned = true, kOffset = false, kTwoChains = true;
    static Unpacked unpack(const W& w) {
        return make<true>(lookup16(kMxfp4Values, unpack_nibbles_16(w.qs)), e8m0_half(w.e));
    }
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
constexpr int64_t kMaxGemvBlocks = 4096;  // rows up to 131072 elements; longer rows take tile<K, 1>

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
        for (int64_t i = 0; i < n_pairs; ++i) {
            const int64_t b = 2 * i;
            prefetch_ahead(w + b);
            const Unpacked u0 = K::unpack(w[b]), u1 = K::unpack(w[b + 1]);
            const __m512i aq = _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[b].qs)), load256(a[b + 1].qs), 1);
            step(u0, u1, aq, scales(w[b], w[b + 1], u0, u1), b);
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
// Decode takes gemv_pairs (two chains) or gemv_rows2 (one chain); rows too long for the scale
// buffers take the ymm tiles (same per-column results).
template <class K>
void gemm(const GemmArgs& g) {
    constexpr int64_t kFields = K::kOffset ? 2 : 1;
    if (K::kTwoChains && g.nc == 1 && g.n / 32 <= kMaxGemvBlocks) {
        gemv_pairs<K>(g);
        return;
    }
    if (g.nc == 1 || g.n / 32 * 4 * kFields * 2 > kMaxPairScales) {
        gemm_ymm<K>(g);
        return;
    }
    int64_t c = 0;
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
}

}  // namespace ferry::quant::FERRY_ISA
