// ggml's float arithmetic for the element-wise functions of the CPU backend, so that ferry's activations
// round as llama.cpp's do (the golden logits are ggml's; every quantized matmul re-quantizes its input,
// and a one-ulp difference upstream can flip one of those roundings). Plain scalar code: the results do
// not depend on the host's ISA. They are the reference of the scalar element-wise table (elementwise.h);
// the vector tables (x86/elementwise.cpp) compute the same bits.
//
// ggml's vectorized exp (ggml-cpu vec.h, ggml_v_expf) is not the C library's expf: it is a polynomial
// after ARM's optimized routines, which ggml uses for SiLU, SwiGLU and soft_max on whole 16-float
// vectors (AVX-512F+DQ build, as the golden files' machine); the remainder of a row (n % 16 elements)
// goes through the scalar path with expf. ggml_expf below computes the AVX-512 variant's operations one
// lane at a time: every fused multiply-add is std::fma (one rounding), the final scaling by 2^n exact.
#pragma once

#include <cmath>
#include <cstdint>

namespace ferry::backend::cpu {

// Number of leading elements of a row of n that ggml computes in 16-wide vectors.
inline int64_t ggml_vec_part(int64_t n) { return n - n % 16; }

inline float ggml_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j =
        std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                 u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    return std::ldexp(j, int(n));
}

// The sum of 16 floats in the order of _mm512_reduce_add_ps (GCC): halves, quarters, then pairs.
inline float ggml_reduce16(const float* v) {
    float t[8];
    for (int i = 0; i < 8; ++i) t[i] = v[i + 8] + v[i];
    float u[4];
    for (int i = 0; i < 4; ++i) u[i] = t[i + 4] + t[i];
    const float w0 = u[0] + u[2], w1 = u[1] + u[3];
    return w0 + w1;
}

// ggml_vec_dot_f32 of an AVX-512 build: four 16-float accumulators over 64-element steps (one fused
// multiply-add each), combined as 0+2, 1+3, then the two, then ggml_reduce16; the n % 64 tail is
// added one fused multiply-add at a time.
inline float ggml_dot_f32(int64_t n, const float* x, const float* y) {
    float acc[4][16] = {};
    const int64_t np = n - n % 64;
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 16; ++l) acc[j][l] = std::fma(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    float v[16];
    for (int l = 0; l < 16; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    float sum = ggml_reduce16(v);
    for (int64_t i = np; i < n; ++i) sum = std::fma(x[i], y[i], sum);
    return sum;
}

// SiLU of element i of a row of n: the vector path (ggml_v_silu) or, for the row's tail, the scalar one.
inline float ggml_silu_vec(float x) { return x / (1.0f + ggml_expf(-x)); }
inline float ggml_silu_scalar(float x) { return x / (1.0f + std::exp(-x)); }
inline float ggml_silu_at(float x, int64_t i, int64_t n) {
    return i < ggml_vec_part(n) ? ggml_silu_vec(x) : ggml_silu_scalar(x);
}

}  // namespace ferry::backend::cpu
