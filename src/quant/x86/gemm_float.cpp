// GEMM tiles for F32, F16 and BF16 weights against f32 activations (already rounded to the weight's
// precision by the caller, as the reference does), and the vector helpers of the kernel table.
//
// Per column: two float accumulators over 16-element steps, one 8-element step into the first, a
// scalar tail; the same for every tile width.
#include "quant/x86/simd.h"

namespace ferry::quant::FERRY_ISA {
namespace {

#if defined(__AVX512F__)
constexpr int kMaxCols = 8;
#else
constexpr int kMaxCols = 4;
#endif

struct KF32 {
    using W = float;
    static __m256 load8(const W* w) { return _mm256_loadu_ps(w); }
    static float one(W w) { return w; }
};

struct KF16 {
    using W = uint16_t;
    static __m256 load8(const W* w) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))); }
    static float one(W w) { return h2f(w); }
};

struct KBF16 {
    using W = uint16_t;
    static __m256 load8(const W* w) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    static float one(W w) {
        const uint32_t bits = uint32_t(w) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
};

template <class K, int NC>
void tile(const GemmArgs& g, int64_t c0) {
    using W = typename K::W;
    const float* a[NC];
    for (int c = 0; c < NC; ++c)
        a[c] = reinterpret_cast<const float*>(static_cast<const uint8_t*>(g.a) + (c0 + c) * g.a_stride);
    for (int64_t r = 0; r < g.nr; ++r) {
        const W* w = reinterpret_cast<const W*>(static_cast<const uint8_t*>(g.w) + r * g.w_stride);
        __m256 acc0[NC], acc1[NC];
        for (int c = 0; c < NC; ++c) acc0[c] = acc1[c] = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= g.n; i += 16) {
            const __m256 w0 = K::load8(w + i), w1 = K::load8(w + i + 8);
            for (int c = 0; c < NC; ++c) {
                acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[c]);
                acc1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a[c] + i + 8), acc1[c]);
            }
        }
        if (i + 8 <= g.n) {
            const __m256 w0 = K::load8(w + i);
            for (int c = 0; c < NC; ++c) acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[c]);
            i += 8;
        }
        for (int c = 0; c < NC; ++c) {
            float s = hsum(_mm256_add_ps(acc0[c], acc1[c]));
            for (int64_t j = i; j < g.n; ++j) s += K::one(w[j]) * a[c][j];
            g.y[(c0 + c) * g.ldy + r] = s;
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

template <class K>
float dot(int64_t n, const typename K::W* x, const float* y) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(K::load8(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(K::load8(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(K::load8(x + i), _mm256_loadu_ps(y + i), acc0);
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += K::one(x[i]) * y[i];
    return s;
}

template <class K>
void mad(int64_t n, float* y, const typename K::W* x, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(K::load8(x + i), vs, _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += s * K::one(x[i]);
}

void scale(int64_t n, float* y, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vs));
    for (; i < n; ++i) y[i] *= s;
}

void round_f16(int64_t n, const float* x, float* y) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) y[i] = h2f(f2h(x[i]));
}

}  // namespace

void fill_gemm_float(KernelTable& t) {
    t.gemm[int(GgmlType::F32)] = gemm<KF32>;
    t.gemm[int(GgmlType::F16)] = gemm<KF16>;
    t.gemm[int(GgmlType::BF16)] = gemm<KBF16>;
    t.dot_f32 = dot<KF32>;
    t.dot_f16_f32 = dot<KF16>;
    t.mad_f32 = mad<KF32>;
    t.mad_f16 = mad<KF16>;
    t.scale_f32 = scale;
    t.round_f16 = round_f16;
}

}  // namespace ferry::quant::FERRY_ISA
