// The scalar element-wise table (the reference of elementwise.h) and the choice of a table per Isa.
#include "backend/cpu/elementwise.h"

#include <cmath>

#include "backend/cpu/ggml_math.h"
#include "core/check.h"

namespace ferry::backend::cpu {
namespace {

void silu(int64_t n, const float* x, float* y, int64_t n_vec) {
    for (int64_t i = 0; i < n; ++i) y[i] = i < n_vec ? ggml_silu_vec(x[i]) : ggml_silu_scalar(x[i]);
}

void swiglu(int64_t n, const float* g, const float* u, float* y, int64_t n_vec) {
    for (int64_t i = 0; i < n; ++i) y[i] = (i < n_vec ? ggml_silu_vec(g[i]) : ggml_silu_scalar(g[i])) * u[i];
}

void add(int64_t n, const float* a, const float* b, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void mul(int64_t n, const float* a, const float* b, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void scale(int64_t n, const float* x, float s, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

void scale_mul(int64_t n, const float* x, float s, const float* w, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s * w[i];
}

void rope(int64_t n_pairs, bool neox, const float* c, const float* s, const float* x, float* y) {
    for (int64_t i = 0; i < n_pairs; ++i) {
        const int64_t i0 = neox ? i : 2 * i;
        const int64_t i1 = neox ? i + n_pairs : 2 * i + 1;
        const float x0 = x[i0], x1 = x[i1];
        y[i0] = std::fma(x0, c[i], -(x1 * s[i]));
        y[i1] = std::fma(x0, s[i], x1 * c[i]);
    }
}

void conv_silu(int64_t n, int64_t kw, const float* const* u, const float* w, int64_t w_stride, float* y,
               int64_t n_vec) {
    for (int64_t c = 0; c < n; ++c) y[c] = 0.0f;
    for (int64_t j = 0; j < kw; ++j)
        for (int64_t c = 0; c < n; ++c) y[c] = std::fma(u[j][c], w[j * w_stride + c], y[c]);
    silu(n, y, y, n_vec);
}

}  // namespace

int64_t gdn_work_floats(int64_t dk) { return (dk + dk / 64 + 1) * 16; }

const EwKernels& ew_kernels(quant::Isa isa) {
    static const EwKernels scalar = [] {
        EwKernels t{};
        t.isa = quant::Isa::Scalar;
        t.silu = silu;
        t.swiglu = swiglu;
        t.add = add;
        t.mul = mul;
        t.scale = scale;
        t.scale_mul = scale_mul;
        t.rope = rope;
        t.conv_silu = conv_silu;
        t.gdn = nullptr;
        return t;
    }();
    switch (isa) {
        case quant::Isa::Scalar: return scalar;
#if FERRY_HAVE_X86_KERNELS
        case quant::Isa::Avx2: return avx2::ew_table();
        case quant::Isa::Avx512: return avx512::ew_table();
#else
        default: return scalar;
#endif
    }
    FERRY_CHECK(false);
    return scalar;
}

}  // namespace ferry::backend::cpu
