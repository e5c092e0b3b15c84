#include "quant/kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/cpu_features.h"
#include "core/fp16.h"

namespace ferry::quant {

#if FERRY_HAVE_X86_KERNELS
namespace avx2 {
const KernelTable& table();
}
namespace avx512 {
const KernelTable& table();
}
#endif

namespace {

float dot_f32(int64_t n, const float* x, const float* y) {
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
    return s;
}

float dot_f16_f32(int64_t n, const uint16_t* x, const float* y) {
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(x[i]) * y[i];
    return s;
}

void mad_f32(int64_t n, float* y, const float* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

void mad_f16(int64_t n, float* y, const uint16_t* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] += s * fp16_to_fp32(x[i]);
}

void scale_f32(int64_t n, float* y, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

void round_f16(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

void to_f16(int64_t n, const float* x, uint16_t* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// llama.cpp's attention arithmetic (kernels.h), one element at a time.

float reduce16(const float* v, int64_t stride) {
    float t[8], u[4];
    for (int i = 0; i < 8; ++i) t[i] = v[i * stride] + v[(i + 8) * stride];
    for (int i = 0; i < 4; ++i) u[i] = t[i] + t[i + 4];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

template <class T>
float as_f32(T x) {
    if constexpr (std::is_same_v<T, float>) {
        return x;
    } else {
        return fp16_to_fp32(x);
    }
}

template <class T>
float dot_lanes16(int64_t n, const T* x, const T* y) {
    float lane[16] = {};
    for (int64_t i = 0; i < n; ++i) lane[i % 16] = std::fma(as_f32(x[i]), as_f32(y[i]), lane[i % 16]);
    return reduce16(lane, 1);
}

void dot_f16_lanes16_rows(int64_t n, const uint16_t* x, int64_t ldx, int64_t n_x, const uint16_t* y, float* out) {
    for (int64_t j = 0; j < n_x; ++j) out[j] = dot_lanes16(n, x + j * ldx, y);
}

void pv_f16_lanes16(int64_t n, const uint16_t* v, int64_t ldv, const float* p, int64_t j0, int64_t j1, float* out) {
    std::vector<float> lanes(size_t(16 * n), 0.0f);
    for (int64_t j = j0; j < j1; ++j) {
        float* lane = lanes.data() + (j % 16) * n;
        for (int64_t d = 0; d < n; ++d) lane[d] = std::fma(fp16_to_fp32(v[j * ldv + d]), p[j - j0], lane[d]);
    }
    for (int64_t d = 0; d < n; ++d) out[d] = reduce16(lanes.data() + d, n);
}

float dot_f16_ggml(int64_t n, const uint16_t* x, const uint16_t* y) {
    const int64_t np = n / 64 * 64;
    float acc[4][16] = {};
    for (int64_t i = 0; i < np; ++i)
        acc[(i % 64) / 16][i % 16] = std::fma(fp16_to_fp32(x[i]), fp16_to_fp32(y[i]), acc[(i % 64) / 16][i % 16]);
    for (int l = 0; l < 16; ++l) acc[0][l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    double s = reduce16(acc[0], 1);
    for (int64_t i = np; i < n; ++i) s += double(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
    return float(s);
}

void fmad_f32(int64_t n, float* y, const float* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::fma(x[i], s, y[i]);
}

void fmad_f16(int64_t n, float* y, const uint16_t* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::fma(fp16_to_fp32(x[i]), s, y[i]);
}

void fmad_f16_acc16(int64_t n, uint16_t* y, const uint16_t* x, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(std::fma(fp16_to_fp32(x[i]), s, fp16_to_fp32(y[i])));
}

void scale_f16(int64_t n, uint16_t* y, float s) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) * s);
}

void flash_attn_row_f16_one(const FlashRowF16Args& a) {
    std::vector<uint16_t> acc(size_t(a.dv), 0);
    float m = -INFINITY, sum = 0.0f;
    for (int64_t j = a.j0; j < a.j1; ++j) {
        const float sc = dot_f16_ggml(a.dk, a.k + j * a.ldk, a.q) * a.scale;
        float ms = 1.0f, vs = 1.0f;
        if (sc > m) {
            ms = std::exp(m - sc);
            m = sc;
            scale_f16(a.dv, acc.data(), ms);
        } else {
            vs = std::exp(sc - m);
        }
        fmad_f16_acc16(a.dv, acc.data(), a.v + j * a.ldv, vs);
        sum = std::fma(sum, ms, vs);
    }
    if (a.ms != nullptr) {
        a.ms[0] = m;
        a.ms[1] = sum;
        for (int64_t d = 0; d < a.dv; ++d) a.y[d] = fp16_to_fp32(acc[size_t(d)]);
        return;
    }
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (int64_t d = 0; d < a.dv; ++d) a.y[d] = fp16_to_fp32(acc[size_t(d)]) * inv;
}

// Several heads: one call per head.
void flash_attn_row_f16(const FlashRowF16Args& a) {
    for (int64_t g = 0; g < a.heads; ++g) {
        FlashRowF16Args h = a;
        h.q = a.q + g * a.ldq;
        h.y = a.y + g * a.ldy;
        h.heads = 1;
        if (a.ms != nullptr) h.ms = a.ms + 2 * g;
        flash_attn_row_f16_one(h);
    }
}

// 2^e for a normal exponent e in [-126, 127].
float pow2(int e) { return std::bit_cast<float>(uint32_t(e + 127) << 23); }

// ggml_v_expf's algorithm (AVX-512 variant) on one value: n = round(x / ln 2) by the 1.5 * 2^23 trick,
// b = x - n ln 2 in two steps, a degree-5 polynomial j ~ e^b, then j * 2^n (scalef: one rounding,
// done here as two exact power-of-two factors); |n| > 192 gives 0 (n <= 0) or infinity.
float v_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j =
        std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                 u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    if (std::isnan(n)) return n;
    const int e = int(n), e1 = e / 2, e2 = e - e1;
    return j * pow2(e1) * pow2(e2);
}

double soft_max_ggml(int64_t n, float* y, const float* x, float max) {
    double sum = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; ++l) y[i + l] = v_expf(x[i + l] - max);
        sum += double(reduce16(y + i, 1));
    }
    for (; i < n; ++i) {
        y[i] = std::exp(x[i] - max);
        sum += double(y[i]);
    }
    return sum;
}

void reduce_lanes16(int64_t n, const float* acc, float* out) {
    for (int64_t d = 0; d < n; ++d) out[d] = reduce16(acc + d, n);
}

// FlashAttnArgs' sequence of operations, one row at a time (the SIMD tables put rows in lanes).
void flash_attn_rows(const FlashAttnArgs& a) {
    const int64_t dk = a.dk, dv = a.dv;
    int64_t j_begin = INT64_MAX, j_end = 0;
    for (int64_t r = 0; r < a.n_rows; ++r) {
        if (a.lo[r] >= a.hi[r]) continue;
        j_begin = std::min<int64_t>(j_begin, a.lo[r]);
        j_end = std::max<int64_t>(j_end, a.hi[r]);
    }
    auto elem = [](const void* x, bool f16, int64_t i) {
        return f16 ? fp16_to_fp32(static_cast<const uint16_t*>(x)[i]) : static_cast<const float*>(x)[i];
    };
    float s[kFlashKeys];
    std::vector<float> o(static_cast<size_t>(dv));
    for (int64_t r = 0; r < a.n_rows; ++r) {
        const float* q = a.q + (r / a.heads) * a.ldq + (r % a.heads) * dk;
        float m = -INFINITY, l = 0.0f;
        std::fill(o.begin(), o.end(), 0.0f);
        for (int64_t j0 = j_begin / kFlashKeys * kFlashKeys; j0 < j_end; j0 += kFlashKeys) {
            const int64_t nj = std::min(kFlashKeys, j_end - j0);
            bool seen = false;
            for (int64_t i = 0; i < a.n_rows; ++i)
                seen = seen || (a.lo[i] < j0 + nj && a.hi[i] > j0 && a.lo[i] < a.hi[i]);
            if (!seen) continue;
            const int64_t n16 = (nj + 15) / 16 * 16;  // the softmax's cells, past nj masked
            float mx = m;
            for (int64_t jj = 0; jj < n16; ++jj) {
                const int64_t j = j0 + jj;
                float dot = 0.0f;
                for (int64_t d = 0; d < dk && jj < nj; ++d)
                    dot = std::fma(elem(a.k, a.k_f16, j * a.ldk + d), q[d], dot);
                s[jj] = j >= a.lo[r] && j < a.hi[r] ? dot * a.scale : -INFINITY;
                mx = std::max(mx, s[jj]);
            }
            const float m0 = mx == -INFINITY ? 0.0f : mx;
            const float alpha = mx > m ? std::exp(m - mx) : 1.0f;
            double sum = 0;
            for (int64_t g = 0; g < n16; g += 16) {
                for (int64_t jj = g; jj < g + 16; ++jj) s[jj] = v_expf(s[jj] - m0);
                sum += double(reduce16(s + g, 1));
            }
            l = float(double(l * alpha) + sum);
            m = mx;
            for (float& x : o) x *= alpha;
            for (int64_t jj = 0; jj < nj; ++jj)
                for (int64_t d = 0; d < dv; ++d)
                    o[size_t(d)] = std::fma(s[jj], elem(a.v, a.v_f16, (j0 + jj) * a.ldv + d), o[size_t(d)]);
        }
        float* y = a.y + (r / a.heads) * a.ldy + (r % a.heads) * dv;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int64_t d = 0; d < dv; ++d) y[d] = o[size_t(d)] * inv;
    }
}

void expf_libm(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

KernelTable make_scalar() {
    KernelTable t{};
    t.isa = Isa::Scalar;
    t.dot_f32 = dot_f32;
    t.dot_f16_f32 = dot_f16_f32;
    t.mad_f32 = mad_f32;
    t.mad_f16 = mad_f16;
    t.scale_f32 = scale_f32;
    t.round_f16 = round_f16;
    t.to_f16 = to_f16;
    t.dot_f16_lanes16 = dot_lanes16<uint16_t>;
    t.dot_f32_lanes16 = dot_lanes16<float>;
    t.dot_f16_ggml = dot_f16_ggml;
    t.dot_f16_lanes16_rows = dot_f16_lanes16_rows;
    t.pv_f16_lanes16 = pv_f16_lanes16;
    t.fmad_f32 = fmad_f32;
    t.fmad_f16 = fmad_f16;
    t.fmad_f16_acc16 = fmad_f16_acc16;
    t.scale_f16 = scale_f16;
    t.soft_max_ggml = soft_max_ggml;
    t.reduce_lanes16 = reduce_lanes16;
    t.flash_attn_row_f16 = flash_attn_row_f16;
    t.flash_attn_rows = flash_attn_rows;
    t.expf_libm = expf_libm;
    return t;
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

QuantizeFn KernelTable::quantize_for(GgmlType act_type) const {
    switch (act_type) {
        case GgmlType::Q8_0: return quantize_q8_0;
        case GgmlType::Q8_1: return quantize_q8_1;
        case GgmlType::Q8_K: return quantize_q8_k;
        default: return nullptr;
    }
}

const KernelTable* kernels_for(Isa isa) {
    static const KernelTable scalar = make_scalar();
    switch (isa) {
        case Isa::Scalar: return &scalar;
#if FERRY_HAVE_X86_KERNELS
        case Isa::Avx2: return cpu_features().has_avx2_set() ? &avx2::table() : nullptr;
        case Isa::Avx512: return cpu_features().has_avx512_set() ? &avx512::table() : nullptr;
#else
        default: return nullptr;
#endif
    }
    return nullptr;
}

const KernelTable& best_kernels() {
    static const KernelTable* best = [] {
        for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
            if (const KernelTable* t = kernels_for(isa)) return t;
        }
        return kernels_for(Isa::Scalar);
    }();
    return *best;
}

}  // namespace ferry::quant
