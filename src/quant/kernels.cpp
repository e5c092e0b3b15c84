#include "quant/kernels.h"

#include <bit>
#include <cmath>
#include <type_traits>

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

KernelTable make_scalar() {
    KernelTable t{};
    t.isa = Isa::Scalar;
    t.dot_f32 = dot_f32;
    t.dot_f16_f32 = dot_f16_f32;
    t.mad_f32 = mad_f32;
    t.mad_f16 = mad_f16;
    t.scale_f32 = scale_f32;
    t.round_f16 = round_f16;
    t.dot_f16_lanes16 = dot_lanes16<uint16_t>;
    t.dot_f32_lanes16 = dot_lanes16<float>;
    t.dot_f16_ggml = dot_f16_ggml;
    t.fmad_f32 = fmad_f32;
    t.fmad_f16 = fmad_f16;
    t.fmad_f16_acc16 = fmad_f16_acc16;
    t.scale_f16 = scale_f16;
    t.soft_max_ggml = soft_max_ggml;
    t.reduce_lanes16 = reduce_lanes16;
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
