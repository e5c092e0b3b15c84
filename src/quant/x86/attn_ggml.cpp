// llama.cpp's attention arithmetic (kernels.h: dot_f16_lanes16 ... reduce_lanes16) on 256-bit registers
// (dot_f16_ggml and flash_attn_row_f16 use 512-bit ones in the AVX-512 build, with the same sums):
// a lanes16 accumulator is two __m256 (lanes 0-7, 8-15), and hsum(lo + hi) adds 16 lanes in the order of
// GCC's _mm512_reduce_add_ps. Both instruction sets use this code; results are bit-identical with the
// scalar table (every multiply-add fused, every other operation a single IEEE operation). Builtins, not
// <cmath>, for the scalar tails: no inline function of a shared header may be compiled with these flags.

#include "quant/x86/expf_libm.h"
#include "quant/x86/simd.h"
#include "quant/x86/vexp.h"

namespace ferry::quant::FERRY_ISA {
namespace {

__m256 load8(const float* x) { return _mm256_loadu_ps(x); }
__m256 load8(const uint16_t* x) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))); }
#ifdef __AVX512F__
__m512 load16(const uint16_t* x) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))); }
__m512 load16(const float* x) { return _mm512_loadu_ps(x); }
#endif
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

// out[k] = hsum(t[k]) for four registers at once: u_i = t_i + t_{i+4} (128-bit halves added), then
// (u_0 + u_2) + (u_1 + u_3), the four sums side by side in the lanes of one register.
inline void hsum4(const __m256* t, float* out) {
    // u01 = [u(t0) | u(t1)], u23 likewise.
    const __m256 u01 =
        _mm256_add_ps(_mm256_permute2f128_ps(t[0], t[1], 0x20), _mm256_permute2f128_ps(t[0], t[1], 0x31));
    const __m256 u23 =
        _mm256_add_ps(_mm256_permute2f128_ps(t[2], t[3], 0x20), _mm256_permute2f128_ps(t[2], t[3], 0x31));
    // [u0 + u2 (t0, t2), u1 + u3 (t0, t2) | the same for t1, t3]
    const __m256 v = _mm256_add_ps(_mm256_unpacklo_ps(u01, u23), _mm256_unpackhi_ps(u01, u23));
    const __m256 r = _mm256_add_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    alignas(32) float rr[8];
    _mm256_store_ps(rr, r);
    out[0] = rr[0], out[1] = rr[4], out[2] = rr[1], out[3] = rr[5];
}

// dot_lanes16 of four x rows with one y at once; each row's 16 lanes reduced exactly as hsum(lo + hi)
// (hsum4 of t = lo + hi).
void dot_f16_lanes16_rows(int64_t n, const uint16_t* x, int64_t ldx, int64_t n_x, const uint16_t* y, float* out) {
    int64_t j = 0;
    for (; j + 4 <= n_x; j += 4) {
        const uint16_t* xr = x + j * ldx;
        __m256 lo[4], hi[4];
        for (int k = 0; k < 4; ++k) lo[k] = hi[k] = _mm256_setzero_ps();
        for (int64_t i = 0; i + 16 <= n; i += 16) {
            const __m256 y0 = load8(y + i), y1 = load8(y + i + 8);
            for (int k = 0; k < 4; ++k) {
                lo[k] = _mm256_fmadd_ps(load8(xr + k * ldx + i), y0, lo[k]);
                hi[k] = _mm256_fmadd_ps(load8(xr + k * ldx + i + 8), y1, hi[k]);
            }
        }
        __m256 t[4];
        for (int k = 0; k < 4; ++k) t[k] = _mm256_add_ps(lo[k], hi[k]);
        hsum4(t, out + j);
    }
    for (; j < n_x; ++j) out[j] = dot_lanes16<uint16_t>(n, x + j * ldx, y);
}

// The lanes16 sums over cells of p_j * v_j[d] for 8 columns d at once: lane l of a column is one register
// (acc[l]), taking the cells j = l (mod 16) in order; then reduce_lanes16's tree across the registers.
// The lanes run in two passes of 8 (the chains are independent), so 8 accumulators stay in registers.
void pv_f16_lanes16(int64_t n, const uint16_t* v, int64_t ldv, const float* p, int64_t j0, int64_t j1, float* out) {
    const int64_t c0 = j0 / 16 * 16;
    int64_t d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 lane[16];
        for (int half = 0; half < 16; half += 8) {
            __m256 acc[8];
            for (__m256& a : acc) a = _mm256_setzero_ps();
            for (int64_t c = c0; c < j1; c += 16) {
                const int64_t a = c + half;
                if (a >= j0 && a + 8 <= j1) {
                    for (int l = 0; l < 8; ++l)
                        acc[l] = _mm256_fmadd_ps(load8(v + (a + l) * ldv + d), _mm256_set1_ps(p[a + l - j0]), acc[l]);
                } else {
                    for (int l = 0; l < 8; ++l)
                        if (a + l >= j0 && a + l < j1)
                            acc[l] =
                                _mm256_fmadd_ps(load8(v + (a + l) * ldv + d), _mm256_set1_ps(p[a + l - j0]), acc[l]);
                }
            }
            for (int l = 0; l < 8; ++l) lane[half + l] = acc[l];
        }
        __m256 t[8], u[4];
        for (int i = 0; i < 8; ++i) t[i] = _mm256_add_ps(lane[i], lane[i + 8]);
        for (int i = 0; i < 4; ++i) u[i] = _mm256_add_ps(t[i], t[i + 4]);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(u[0], u[2]), _mm256_add_ps(u[1], u[3])));
    }
    for (; d < n; ++d) {
        float lane[16] = {};
        for (int64_t j = j0; j < j1; ++j) lane[j % 16] = __builtin_fmaf(h2f(v[j * ldv + d]), p[j - j0], lane[j % 16]);
        float t[8], u[4];
        for (int i = 0; i < 8; ++i) t[i] = lane[i] + lane[i + 8];
        for (int i = 0; i < 4; ++i) u[i] = t[i] + t[i + 4];
        out[d] = (u[0] + u[2]) + (u[1] + u[3]);
    }
}

// ggml_vec_dot_f16 (kernels.h) of one row x with each of HB rows y + g * ldy (halves, or floats holding
// halves: the same products), x converted once for all, up to the last vector sum: lh[g] is the
// register whose hsum is the sum of the first n / 64 * 64 products (dot_f16_ggml_tail adds the rest).
// Inlined into flash_attn_row_f16, so dot_f16_ggml and it compute one order. With AVX-512 an
// accumulator is one __m512; on 256-bit registers acc[g][2a + h] holds lanes 8h .. 8h + 7 of
// accumulator a.
template <int HB, class T>
inline __attribute__((always_inline)) void dots_f16_ggml(int64_t n, const uint16_t* x, const T* y, int64_t ldy,
                                                         __m256* lh) {
    const int64_t np = n / 64 * 64;
#ifdef __AVX512F__
    __m512 acc[HB][4];
    for (auto& ag : acc)
        for (__m512& a : ag) a = _mm512_setzero_ps();
    for (int64_t i = 0; i < np; i += 64) {
        for (int k = 0; k < 4; ++k) {
            const __m512 xk = load16(x + i + 16 * k);
            for (int g = 0; g < HB; ++g) acc[g][k] = _mm512_fmadd_ps(xk, load16(y + g * ldy + i + 16 * k), acc[g][k]);
        }
    }
    for (int g = 0; g < HB; ++g) {
        const __m512 z = _mm512_add_ps(_mm512_add_ps(acc[g][0], acc[g][2]), _mm512_add_ps(acc[g][1], acc[g][3]));
        // lo + hi of z's 256-bit halves (through memory: GCC 12 warns on the 512-bit extract intrinsics).
        alignas(64) float zs[16];
        _mm512_store_ps(zs, z);
        lh[g] = _mm256_add_ps(_mm256_load_ps(zs), _mm256_load_ps(zs + 8));
    }
#else
    __m256 acc[HB][8];
    for (auto& ag : acc)
        for (__m256& a : ag) a = _mm256_setzero_ps();
    for (int64_t i = 0; i < np; i += 64) {
        for (int k = 0; k < 8; ++k) {
            const __m256 xk = load8(x + i + 8 * k);
            for (int g = 0; g < HB; ++g) acc[g][k] = _mm256_fmadd_ps(xk, load8(y + g * ldy + i + 8 * k), acc[g][k]);
        }
    }
    for (int g = 0; g < HB; ++g) {
        const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[g][0], acc[g][4]), _mm256_add_ps(acc[g][2], acc[g][6]));
        const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[g][1], acc[g][5]), _mm256_add_ps(acc[g][3], acc[g][7]));
        lh[g] = _mm256_add_ps(lo, hi);
    }
#endif
}

// The dot from hsum(lh) (h): the products from n / 64 * 64 on added one at a time in double.
template <class T>
inline float dot_f16_ggml_tail(float h, int64_t n, const uint16_t* x, const T* y) {
    double s = h;
    for (int64_t i = n / 64 * 64; i < n; ++i) s += double(h2f(x[i]) * one(y[i]));
    return float(s);
}

inline __attribute__((always_inline)) float dot_f16_ggml_inl(int64_t n, const uint16_t* x, const uint16_t* y) {
    __m256 lh;
    dots_f16_ggml<1>(n, x, y, 0, &lh);
    return dot_f16_ggml_tail(hsum(lh), n, x, y);
}

float dot_f16_ggml(int64_t n, const uint16_t* x, const uint16_t* y) { return dot_f16_ggml_inl(n, x, y); }

// Vector operations of flash_attn_row_f16's accumulator on __m256 (8 columns) and __m512 (16 columns):
// broadcast, load / store of floats, load of halves, multiply, fused multiply-add, and x rounded to F16
// and back (the F16 accumulator kept as floats in registers).
__m256 bcast(float x, __m256) { return _mm256_set1_ps(x); }
__m256 loadf(const float* x, __m256) { return _mm256_loadu_ps(x); }
__m256 loadh(const uint16_t* x, __m256) { return load8(x); }
void storef(float* y, __m256 v) { _mm256_storeu_ps(y, v); }
__m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
__m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
__m256 round_half(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
#ifdef __AVX512F__
__m512 bcast(float x, __m512) { return _mm512_set1_ps(x); }
__m512 loadf(const float* x, __m512) { return _mm512_loadu_ps(x); }
__m512 loadh(const uint16_t* x, __m512) { return load16(x); }
void storef(float* y, __m512 v) { _mm512_storeu_ps(y, v); }
__m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
__m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
__m512 round_half(__m512 x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
#endif

// Keys per step of flash_attn_row_f16.
constexpr int64_t kRowKeys = 64;

// The online softmax of flash_attn_row_f16 over keys in order: score, factors ms / vs, running max m and
// sum S (kernels.h: flash_attn_row_f16).
struct RowSoftmax {
    const FlashRowF16Args& a;
    float m = -__builtin_inff(), sum = 0.0f;

    // Key j's factors into ms, vs.
    void key(int64_t j, float& ms, float& vs) {
        const float sc = dot_f16_ggml_inl(a.dk, a.k + j * a.ldk, a.q) * a.scale;
        float s_m = 1.0f, s_v = 1.0f;
        if (sc > m) {
            s_m = __builtin_expf(m - sc);
            m = sc;
        } else {
            s_v = __builtin_expf(sc - m);
        }
        sum = __builtin_fmaf(sum, s_m, s_v);
        ms = s_m;
        vs = s_v;
    }
};

// The F16 accumulator of columns [d, d + W * NR) (W floats per register V) over the nj keys of a step
// whose V rows start at v: y (floats holding F16 values) loaded into registers, per key scale_f16 by
// ms (skipped when ms is 1, where it changes nothing) and fmad_f16_acc16 by vs, stored back. Meanwhile
// the softmax factors of the next step's nn keys (from key j_next on) go to ms_next / vs_next: the
// scores and exps keep the execution units busy while the accumulator's rounding chain waits.
template <class V, int NR>
void row_f16_columns(int64_t d, const uint16_t* v, int64_t ldv, int64_t nj, const float* ms, const float* vs, float* y,
                     RowSoftmax& sm, int64_t j_next, int64_t nn, float* ms_next, float* vs_next) {
    constexpr int W = int(sizeof(V) / sizeof(float));
    V acc[NR];
    for (int r = 0; r < NR; ++r) acc[r] = loadf(y + d + W * r, V{});
    const int64_t n = nj > nn ? nj : nn;
    for (int64_t jj = 0; jj < n; ++jj) {
        if (jj < nn) sm.key(j_next + jj, ms_next[jj], vs_next[jj]);
        if (jj >= nj) continue;
        const uint16_t* vr = v + jj * ldv + d;
        if (ms[jj] != 1.0f) {
            const V s = bcast(ms[jj], V{});
            for (int r = 0; r < NR; ++r) acc[r] = round_half(mul(acc[r], s));
        }
        const V s = bcast(vs[jj], V{});
        for (int r = 0; r < NR; ++r) acc[r] = round_half(fmadd(loadh(vr + W * r, V{}), s, acc[r]));
    }
    for (int r = 0; r < NR; ++r) storef(y + d + W * r, acc[r]);
}

// Head g's output (at a.y + g * a.ldy) divided by its sum, or left as it is with m and the sum stored
// (FlashRowF16Args::ms).
void finish_row(const FlashRowF16Args& a, int64_t g, float m, float sum) {
    float* y = a.y + g * a.ldy;
    if (a.ms != nullptr) {
        a.ms[2 * g] = m;
        a.ms[2 * g + 1] = sum;
        return;
    }
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int64_t d = 0; d < a.dv; ++d) y[d] *= inv;
}

template <int N>
struct Regs {
    static constexpr int n = N;
};

void flash_attn_row_one(const FlashRowF16Args& a) {
    const int64_t dv = a.dv;
    for (int64_t d = 0; d < dv; ++d) a.y[d] = 0.0f;
    RowSoftmax sm{a};
    float ms[2][kRowKeys], vs[2][kRowKeys];
    auto step_keys = [&](int64_t j0) { return a.j1 - j0 < kRowKeys ? a.j1 - j0 : kRowKeys; };
    if (a.j1 > a.j0)
        for (int64_t jj = 0; jj < step_keys(a.j0); ++jj) sm.key(a.j0 + jj, ms[0][jj], vs[0][jj]);
    // Step c's V updates (factors in ms[c % 2]) with step c + 1's softmax in the first column group.
    for (int64_t j0 = a.j0, c = 0; j0 < a.j1; j0 += kRowKeys, ++c) {
        const int64_t nj = step_keys(j0), j_next = j0 + kRowKeys, nn = j_next < a.j1 ? step_keys(j_next) : 0;
        const float *cm = ms[c % 2], *cv = vs[c % 2];
        float *nm = ms[(c + 1) % 2], *nv = vs[(c + 1) % 2];
        const uint16_t* v = a.v + j0 * a.ldv;
        int64_t d = 0;
        // A column group of NR registers V; only the first one also runs the next step's softmax.
        auto group = [&](auto vec, auto regs) {
            row_f16_columns<decltype(vec), decltype(regs)::n>(d, v, a.ldv, nj, cm, cv, a.y, sm, j_next, d == 0 ? nn : 0,
                                                              nm, nv);
        };
#ifdef __AVX512F__
        for (; d + 64 <= dv; d += 64) group(__m512{}, Regs<4>{});
        for (; d + 16 <= dv; d += 16) group(__m512{}, Regs<1>{});
#else
        for (; d + 64 <= dv; d += 64) group(__m256{}, Regs<8>{});
#endif
        for (; d + 8 <= dv; d += 8) group(__m256{}, Regs<1>{});
        if (d == 0)
            for (int64_t jj = 0; jj < nn; ++jj) sm.key(j_next + jj, nm[jj], nv[jj]);
        for (; d < dv; ++d) {
            float acc = a.y[d];
            for (int64_t jj = 0; jj < nj; ++jj) {
                if (cm[jj] != 1.0f) acc = h2f(f2h(acc * cm[jj]));
                acc = h2f(f2h(__builtin_fmaf(h2f(v[jj * a.ldv + d]), cv[jj], acc)));
            }
            a.y[d] = acc;
        }
    }
    finish_row(a, 0, sm.m, sm.sum);
}

// flash_attn_row_f16 for heads > 1: blocks of up to kHeadBlock heads, each block's heads in registers
// together; K query-head dims of at most kGroupMaxDk take this path (the queries are kept as floats on
// the stack), larger ones go head by head.
constexpr int kHeadBlock = 4;
constexpr int64_t kPrefetchKeys = 16;
constexpr int64_t kGroupMaxDk = 512;

// row_f16_columns for HB heads: the F16 accumulators of columns [d, d + W * NR) of every head (head g's
// at y + g * ldy) over the nj keys of a step, each V row loaded once for all heads; head g's factors of
// key jj are ms[g][jj], vs[g][jj]. The heads' chains are independent and interleaved.
template <class V, int NR, int HB>
void group_f16_columns(int64_t d, const uint16_t* v, int64_t ldv, int64_t nj, const float (*ms)[kRowKeys],
                       const float (*vs)[kRowKeys], float* y, int64_t ldy) {
    constexpr int W = int(sizeof(V) / sizeof(float));
    V acc[HB][NR];
    for (int g = 0; g < HB; ++g)
        for (int r = 0; r < NR; ++r) acc[g][r] = loadf(y + g * ldy + d + W * r, V{});
    for (int64_t jj = 0; jj < nj; ++jj) {
        const uint16_t* vr = v + jj * ldv + d;
        V x[NR];
        for (int r = 0; r < NR; ++r) x[r] = loadh(vr + W * r, V{});
        for (int g = 0; g < HB; ++g) {
            if (ms[g][jj] != 1.0f) {
                const V s = bcast(ms[g][jj], V{});
                for (int r = 0; r < NR; ++r) acc[g][r] = round_half(mul(acc[g][r], s));
            }
            const V s = bcast(vs[g][jj], V{});
            for (int r = 0; r < NR; ++r) acc[g][r] = round_half(fmadd(x[r], s, acc[g][r]));
        }
    }
    for (int g = 0; g < HB; ++g)
        for (int r = 0; r < NR; ++r) storef(y + g * ldy + d + W * r, acc[g][r]);
}

// HB heads (1 .. kHeadBlock) of a flash_attn_row_f16 call, from head g0 on: per step of kRowKeys keys,
// every key's scores and softmax factors for all HB heads (each head's keys in order), then the V updates.
template <int HB>
void flash_attn_row_block(const FlashRowF16Args& a, int64_t g0) {
    const int64_t dk = a.dk, dv = a.dv, ldy = a.ldy;
    float* y = a.y + g0 * ldy;
    alignas(64) float qf[HB * kGroupMaxDk];
    for (int g = 0; g < HB; ++g)
        for (int64_t i = 0; i < dk; ++i) qf[g * dk + i] = h2f(a.q[(g0 + g) * a.ldq + i]);
    for (int g = 0; g < HB; ++g)
        for (int64_t d = 0; d < dv; ++d) y[g * ldy + d] = 0.0f;
    float m[HB], sum[HB];
    for (int g = 0; g < HB; ++g) m[g] = -__builtin_inff(), sum[g] = 0.0f;
    float ms[HB][kRowKeys], vs[HB][kRowKeys];
    const int64_t kb = (dk * 2 + 63) / 64, vb = (dv * 2 + 63) / 64;
    for (int64_t j = a.j0; j < a.j1 && j < a.j0 + kPrefetchKeys; ++j)
        for (int64_t l = 0; l < kb; ++l)
            _mm_prefetch(reinterpret_cast<const char*>(a.k + j * a.ldk) + 64 * l, _MM_HINT_T0);
    for (int64_t j0 = a.j0; j0 < a.j1; j0 += kRowKeys) {
        const int64_t nj = a.j1 - j0 < kRowKeys ? a.j1 - j0 : kRowKeys;
        // The step's dots (key jj, head g at sc[jj * HB + g]), their last sums four at a time.
        __m256 lh[kRowKeys * HB];
        float sc[kRowKeys * HB + 3];
        // The K and V rows are strided in the cache and evicted by the weights between steps: each K row is
        // fetched kPrefetchKeys keys ahead of its dot, and this step's V rows meanwhile.
        for (int64_t jj = 0; jj < nj; ++jj) {
            if (j0 + jj + kPrefetchKeys < a.j1)
                for (int64_t l = 0; l < kb; ++l)
                    _mm_prefetch(reinterpret_cast<const char*>(a.k + (j0 + jj + kPrefetchKeys) * a.ldk) + 64 * l,
                                 _MM_HINT_T0);
            for (int64_t l = 0; l < vb; ++l)
                _mm_prefetch(reinterpret_cast<const char*>(a.v + (j0 + jj) * a.ldv) + 64 * l, _MM_HINT_T0);
            dots_f16_ggml<HB>(dk, a.k + (j0 + jj) * a.ldk, qf, dk, lh + jj * HB);
        }
        int64_t i = 0;
        for (; i + 4 <= nj * HB; i += 4) hsum4(lh + i, sc + i);
        for (; i < nj * HB; ++i) sc[i] = hsum(lh[i]);
        if (dk % 64 != 0)
            for (i = 0; i < nj * HB; ++i)
                sc[i] = dot_f16_ggml_tail(sc[i], dk, a.k + (j0 + i / HB) * a.ldk, qf + i % HB * dk);
        // Each head's keys in order: the running max, then every key's one expf argument (m - s where s
        // raises the max, s - m otherwise), all of the step's exps at once (the library's expf on vector
        // lanes), then the factors and sums.
        float arg[kRowKeys * HB], ex[kRowKeys * HB];
        bool raises[kRowKeys * HB];
        for (i = 0; i < nj * HB; ++i) {
            const int g = int(i % HB);
            const float s = sc[i] * a.scale;
            raises[i] = s > m[g];
            arg[i] = raises[i] ? m[g] - s : s - m[g];
            if (raises[i]) m[g] = s;
        }
        expf_library_n(nj * HB, arg, ex);
        for (i = 0; i < nj * HB; ++i) {
            const int g = int(i % HB);
            const int64_t jj = i / HB;
            ms[g][jj] = raises[i] ? ex[i] : 1.0f;
            vs[g][jj] = raises[i] ? 1.0f : ex[i];
            sum[g] = __builtin_fmaf(sum[g], ms[g][jj], vs[g][jj]);
        }
        const uint16_t* v = a.v + j0 * a.ldv;
        int64_t d = 0;
#ifdef __AVX512F__
        for (; d + 64 <= dv; d += 64) group_f16_columns<__m512, 4, HB>(d, v, a.ldv, nj, ms, vs, y, ldy);
        for (; d + 16 <= dv; d += 16) group_f16_columns<__m512, 1, HB>(d, v, a.ldv, nj, ms, vs, y, ldy);
#else
        for (; d + 16 <= dv; d += 16) group_f16_columns<__m256, 2, HB>(d, v, a.ldv, nj, ms, vs, y, ldy);
#endif
        for (; d + 8 <= dv; d += 8) group_f16_columns<__m256, 1, HB>(d, v, a.ldv, nj, ms, vs, y, ldy);
        for (; d < dv; ++d) {
            for (int g = 0; g < HB; ++g) {
                float acc = y[g * ldy + d];
                for (int64_t jj = 0; jj < nj; ++jj) {
                    if (ms[g][jj] != 1.0f) acc = h2f(f2h(acc * ms[g][jj]));
                    acc = h2f(f2h(__builtin_fmaf(h2f(v[jj * a.ldv + d]), vs[g][jj], acc)));
                }
                y[g * ldy + d] = acc;
            }
        }
    }
    for (int g = 0; g < HB; ++g) finish_row(a, g0 + g, m[g], sum[g]);
}

// One head: flash_attn_row_one (the next step's softmax overlapped with the V updates); several: blocks
// of up to kHeadBlock heads, sized evenly (5 heads: 3 + 2).
void flash_attn_row_f16(const FlashRowF16Args& a) {
    if (a.heads == 1 || a.dk > kGroupMaxDk) {
        for (int64_t g = 0; g < a.heads; ++g) {
            FlashRowF16Args h = a;
            h.q = a.q + g * a.ldq;
            h.y = a.y + g * a.ldy;
            if (a.ms != nullptr) h.ms = a.ms + 2 * g;
            flash_attn_row_one(h);
        }
        return;
    }
    const int64_t blocks = (a.heads + kHeadBlock - 1) / kHeadBlock;
    for (int64_t b = 0, g0 = 0; b < blocks; ++b) {
        const int64_t hb = (a.heads - g0) / (blocks - b);
        switch (hb) {
            case 1: flash_attn_row_block<1>(a, g0); break;
            case 2: flash_attn_row_block<2>(a, g0); break;
            case 3: flash_attn_row_block<3>(a, g0); break;
            default: flash_attn_row_block<4>(a, g0); break;
        }
        g0 += hb;
    }
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

void to_f16(int64_t n, const float* x, uint16_t* y) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_loadu_ps(x + i));
    for (; i < n; ++i) y[i] = f2h(x[i]);
}

void scale_f16(int64_t n, uint16_t* y, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_mul_ps(load8(y + i), vs));
    for (; i < n; ++i) y[i] = f2h(h2f(y[i]) * s);
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
    t.dot_f16_lanes16_rows = dot_f16_lanes16_rows;
    t.pv_f16_lanes16 = pv_f16_lanes16;
    t.fmad_f32 = fmad<float>;
    t.fmad_f16 = fmad<uint16_t>;
    t.fmad_f16_acc16 = fmad_f16_acc16;
    t.scale_f16 = scale_f16;
    t.to_f16 = to_f16;
    t.soft_max_ggml = soft_max_ggml;
    t.reduce_lanes16 = reduce_lanes16;
    t.flash_attn_row_f16 = flash_attn_row_f16;
}

}  // namespace ferry::quant::FERRY_ISA
