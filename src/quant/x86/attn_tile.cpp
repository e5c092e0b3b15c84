// Flash attention over a block of query rows (kernels.h: FlashAttnArgs), the query rows in vector lanes.
//
// A call holds up to 64 query rows (the heads of a GQA group times a run of tokens), so one K / V block
// converted to F32 serves all of them. Q is transposed once per call (qt[d][r]); per block of 64 keys:
//   scores  s[j][r] = q_r . k_j: a register tile of KB keys x RB row vectors, one broadcast K element
//           times RB row vectors per step over d;
//   softmax per row vector: mask, block max, ggml_v_expf, the sums of 16 cells, all lane-wise;
//   output  o[r][d] += p[j][r] v_j[d]: a register tile of RB rows x DB column vectors over the keys.
// Every lane computes exactly the scalar table's sequence of operations (kernels.cpp), so AVX2,
// AVX-512 and scalar results are bit-identical.
#include "quant/x86/simd.h"
#include "quant/x86/vexp.h"

namespace ferry::quant::FERRY_ISA {
namespace {

#if defined(__AVX512F__)
using F = __m512;
using Mask = __mmask16;
constexpr int kW = 16;
constexpr int kScoreRows = 4, kScoreKeys = 6;  // register tile of the scores: row vectors x keys
constexpr int kOutRows = 4, kOutCols = 4;      // of the output: rows x column vectors
F load(const float* p) { return _mm512_loadu_ps(p); }
void store(float* p, F v) { _mm512_storeu_ps(p, v); }
F set1(float x) { return _mm512_set1_ps(x); }
F zero() { return _mm512_setzero_ps(); }
F add(F a, F b) { return _mm512_add_ps(a, b); }
F sub(F a, F b) { return _mm512_sub_ps(a, b); }
F mul(F a, F b) { return _mm512_mul_ps(a, b); }
F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
F vmax(F a, F b) { return _mm512_max_ps(a, b); }
F select(Mask m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
Mask is_neg_inf(F a) { return _mm512_cmp_ps_mask(a, set1(-__builtin_inff()), _CMP_EQ_OQ); }
// Lanes whose key j lies in [lo, hi).
Mask visible(const int32_t* lo, const int32_t* hi, int32_t j) {
    const __m512i vj = _mm512_set1_epi32(j);
    const __m512i l = _mm512_loadu_si512(lo), h = _mm512_loadu_si512(hi);
    return _mm512_cmpge_epi32_mask(vj, l) & _mm512_cmplt_epi32_mask(vj, h);
}
void load_f16(float* y, const uint16_t* x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
    for (; i < n; ++i) y[i] = h2f(x[i]);
}
#else
using F = __m256;
using Mask = __m256;
constexpr int kW = 8;
constexpr int kScoreRows = 2, kScoreKeys = 4;
constexpr int kOutRows = 4, kOutCols = 2;
F load(const float* p) { return _mm256_loadu_ps(p); }
void store(float* p, F v) { _mm256_storeu_ps(p, v); }
F set1(float x) { return _mm256_set1_ps(x); }
F zero() { return _mm256_setzero_ps(); }
F add(F a, F b) { return _mm256_add_ps(a, b); }
F sub(F a, F b) { return _mm256_sub_ps(a, b); }
F mul(F a, F b) { return _mm256_mul_ps(a, b); }
F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
F vmax(F a, F b) { return _mm256_max_ps(a, b); }
F select(Mask m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
Mask is_neg_inf(F a) { return _mm256_cmp_ps(a, set1(-__builtin_inff()), _CMP_EQ_OQ); }
Mask visible(const int32_t* lo, const int32_t* hi, int32_t j) {
    const __m256i vj = _mm256_set1_epi32(j);
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo));
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi));
    // j >= lo and j < hi, i.e. not (lo > j) and (hi > j).
    return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(l, vj), _mm256_cmpgt_epi32(h, vj)));
}
void load_f16(float* y, const uint16_t* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
    for (; i < n; ++i) y[i] = h2f(x[i]);
}
#endif

// Rows n .. n_pad - 1 of a block (n rows of `len` floats, row j at src + j * ld elements) become zeros.
void load_rows(float* dst, const void* src, int64_t ld, bool f16, int64_t j0, int64_t n, int64_t n_pad, int64_t len) {
    for (int64_t j = 0; j < n; ++j) {
        float* y = dst + j * len;
        if (f16) {
            load_f16(y, static_cast<const uint16_t*>(src) + (j0 + j) * ld, len);
        } else {
            std::memcpy(y, static_cast<const float*>(src) + (j0 + j) * ld, size_t(len) * sizeof(float));
        }
    }
    std::memset(dst + n * len, 0, size_t((n_pad - n) * len) * sizeof(float));
}

// s[j][r] = fl(dot(k_j, q_r) * scale) for keys jj0 .. jj0 + kScoreKeys - 1 and row vectors rv0 .. rv0 + RB - 1.
template <int RB>
void score_tile(const float* qt, int64_t rp, const float* kt, int64_t dk, float* s, float scale, int64_t jj0,
                int64_t rv0) {
    F acc[kScoreKeys][RB];
    for (auto& a : acc)
        for (F& x : a) x = zero();
    const float* qc = qt + rv0 * kW;
    const float* kr = kt + jj0 * dk;
    for (int64_t d = 0; d < dk; ++d) {
        F qv[RB];
        for (int rb = 0; rb < RB; ++rb) qv[rb] = load(qc + d * rp + rb * kW);
        for (int kb = 0; kb < kScoreKeys; ++kb) {
            const F kd = set1(kr[kb * dk + d]);
            for (int rb = 0; rb < RB; ++rb) acc[kb][rb] = fmadd(kd, qv[rb], acc[kb][rb]);
        }
    }
    const F vs = set1(scale);
    for (int kb = 0; kb < kScoreKeys; ++kb)
        for (int rb = 0; rb < RB; ++rb) store(s + (jj0 + kb) * rp + (rv0 + rb) * kW, mul(acc[kb][rb], vs));
}

void scores(const float* qt, int64_t rp, const float* kt, int64_t dk, float* s, float scale, int64_t nj) {
    const int64_t nv = rp / kW;
    for (int64_t jj = 0; jj < nj; jj += kScoreKeys) {
        int64_t rv = 0;
        for (; rv + kScoreRows <= nv; rv += kScoreRows) score_tile<kScoreRows>(qt, rp, kt, dk, s, scale, jj, rv);
        for (; rv < nv; ++rv) score_tile<1>(qt, rp, kt, dk, s, scale, jj, rv);
    }
}

// The online softmax of one key block for every row vector: s[j][r] becomes p_j of row r (over the
// block's cells rounded up to 16, the cells past nj masked), m, l and alpha per row. The per-row
// scalar steps (expf of the rescale, the double sums) are a few per row and block. Returns whether
// some alpha differs from 1.
bool softmax_block(float* s, int64_t rp, int64_t nj, int64_t j0, const int32_t* lo, const int32_t* hi, float* m,
                   float* l, float* alpha) {
    bool rescale = false;
    const int64_t n16 = (nj + 15) / 16 * 16;
    const F neg_inf = set1(-__builtin_inff());
    alignas(64) float group[kFlashKeys / 16][kW], mx_out[kW];
    for (int64_t r = 0; r < rp; r += kW) {
        bool full = true;
        for (int i = 0; i < kW; ++i) full = full && lo[r + i] <= j0 && hi[r + i] >= j0 + n16;
        F mx = load(m + r);
        for (int64_t jj = 0; jj < n16; ++jj) {
            float* sj = s + jj * rp + r;
            F v = load(sj);
            if (!full) {
                v = select(visible(lo + r, hi + r, int32_t(j0 + jj)), v, neg_inf);
                store(sj, v);
            }
            mx = vmax(mx, v);
        }
        const F m0 = select(is_neg_inf(mx), zero(), mx);
        for (int64_t g = 0; g < n16 / 16; ++g) {
            F p[16];
            for (int i = 0; i < 16; ++i) {
                float* sj = s + (g * 16 + i) * rp + r;
                p[i] = v_expf(sub(load(sj), m0));
                store(sj, p[i]);
            }
            F t[8], u[4];
            for (int i = 0; i < 8; ++i) t[i] = add(p[i], p[i + 8]);
            for (int i = 0; i < 4; ++i) u[i] = add(t[i], t[i + 4]);
            store(group[g], add(add(u[0], u[2]), add(u[1], u[3])));
        }
        store(mx_out, mx);
        for (int i = 0; i < kW; ++i) {
            const float m_old = m[r + i], m_new = mx_out[i];
            const float al = m_new > m_old ? __builtin_expf(m_old - m_new) : 1.0f;
            double sum = 0;
            for (int64_t g = 0; g < n16 / 16; ++g) sum += double(group[g][i]);
            l[r + i] = float(double(l[r + i] * al) + sum);
            m[r + i] = m_new;
            alpha[r + i] = al;
            rescale = rescale || al != 1.0f;
        }
    }
    return rescale;
}

// o[r][d] = o[r][d] * alpha_r (when rescale), then fma(p_j, v_j[d], .) over the keys, for rows
// r0 .. r0 + kOutRows - 1 and column vectors c0 .. c0 + CB - 1.
template <int CB>
void out_tile(float* o, int64_t dv, const float* s, int64_t rp, const float* vt, int64_t nj, const float* alpha,
              bool rescale, int64_t r0, int64_t c0) {
    F acc[kOutRows][CB];
    for (int rb = 0; rb < kOutRows; ++rb) {
        const F al = set1(alpha[r0 + rb]);
        for (int cb = 0; cb < CB; ++cb) {
            acc[rb][cb] = load(o + (r0 + rb) * dv + (c0 + cb) * kW);
            if (rescale) acc[rb][cb] = mul(acc[rb][cb], al);
        }
    }
    for (int64_t jj = 0; jj < nj; ++jj) {
        F vv[CB];
        for (int cb = 0; cb < CB; ++cb) vv[cb] = load(vt + jj * dv + (c0 + cb) * kW);
        for (int rb = 0; rb < kOutRows; ++rb) {
            const F p = set1(s[jj * rp + r0 + rb]);
            for (int cb = 0; cb < CB; ++cb) acc[rb][cb] = fmadd(p, vv[cb], acc[rb][cb]);
        }
    }
    for (int rb = 0; rb < kOutRows; ++rb)
        for (int cb = 0; cb < CB; ++cb) store(o + (r0 + rb) * dv + (c0 + cb) * kW, acc[rb][cb]);
}

void outputs(float* o, int64_t dv, const float* s, int64_t rp, const float* vt, int64_t nj, const float* alpha,
             bool rescale) {
    const int64_t nc = dv / kW;
    for (int64_t r = 0; r < rp; r += kOutRows) {
        int64_t c = 0;
        for (; c + kOutCols <= nc; c += kOutCols) out_tile<kOutCols>(o, dv, s, rp, vt, nj, alpha, rescale, r, c);
        for (; c < nc; ++c) out_tile<1>(o, dv, s, rp, vt, nj, alpha, rescale, r, c);
    }
}

void flash_attn_rows(const FlashAttnArgs& a) {
    const int64_t n = a.n_rows, rp = (n + 15) / 16 * 16, dk = a.dk, dv = a.dv;
    float* qt = a.scratch;
    float* s = qt + dk * kFlashRows;
    float* kt = s + (kFlashKeys + 8) * kFlashRows;
    float* vt = kt + (kFlashKeys + 8) * dk;
    float* o = vt + (kFlashKeys + 8) * dv;
    alignas(64) int32_t lo[kFlashRows], hi[kFlashRows];
    alignas(64) float m[kFlashRows], l[kFlashRows], alpha[kFlashRows];
    int64_t j_begin = INT64_MAX, j_end = 0;
    for (int64_t r = 0; r < rp; ++r) {
        lo[r] = r < n ? a.lo[r] : 0;
        hi[r] = r < n ? a.hi[r] : 0;
        if (lo[r] < hi[r]) {
            j_begin = lo[r] < j_begin ? lo[r] : j_begin;
            j_end = hi[r] > j_end ? hi[r] : j_end;
        }
        m[r] = -__builtin_inff();
        l[r] = 0.0f;
    }
    for (int64_t r = 0; r < rp; ++r) {
        const float* q = r < n ? a.q + (r / a.heads) * a.ldq + (r % a.heads) * dk : nullptr;
        for (int64_t d = 0; d < dk; ++d) qt[d * rp + r] = q != nullptr ? q[d] : 0.0f;
    }
    std::memset(o, 0, size_t(rp * dv) * sizeof(float));
    for (int64_t j0 = j_begin / kFlashKeys * kFlashKeys; j0 < j_end; j0 += kFlashKeys) {
        const int64_t nj = j_end - j0 < kFlashKeys ? j_end - j0 : kFlashKeys;
        bool seen = false;
        for (int64_t r = 0; r < n; ++r) seen = seen || (lo[r] < j0 + nj && hi[r] > j0 && lo[r] < hi[r]);
        if (!seen) continue;
        const int64_t nj_pad = (nj + kScoreKeys - 1) / kScoreKeys * kScoreKeys;
        load_rows(kt, a.k, a.ldk, a.k_f16, j0, nj, nj_pad, dk);
        load_rows(vt, a.v, a.ldv, a.v_f16, j0, nj, nj, dv);
        scores(qt, rp, kt, dk, s, a.scale, nj_pad);
        const bool rescale = softmax_block(s, rp, nj, j0, lo, hi, m, l, alpha);
        outputs(o, dv, s, rp, vt, nj, alpha, rescale);
    }
    for (int64_t r = 0; r < n; ++r) {
        float* y = a.y + (r / a.heads) * a.ldy + (r % a.heads) * dv;
        const F inv = set1(l[r] > 0.0f ? 1.0f / l[r] : 0.0f);
        for (int64_t d = 0; d < dv; d += kW) store(y + d, mul(load(o + r * dv + d), inv));
    }
}

}  // namespace

void fill_attn_tile(KernelTable& t) { t.flash_attn_rows = flash_attn_rows; }

}  // namespace ferry::quant::FERRY_ISA
