// Element-wise kernels of the CPU backend: one table per instruction set, chosen with the quant kernel
// table (CpuOps uses the table of its KernelTable's Isa). The scalar table (elementwise.cpp, ggml_math.h)
// is the reference and the fallback; the x86 ones (x86/elementwise.cpp, compiled once per instruction set
// with that set's flags into namespaces avx2 / avx512) give bit-identical results: the same IEEE
// operations per element, every fused multiply-add where the reference has one, and nowhere else
// (tests/backend/test_elementwise.cpp compares them bit for bit, NaN payloads aside).
#pragma once

#include <cstdint>

#include "quant/kernels.h"

namespace ferry::backend::cpu {

// One V head of the Gated DeltaNet recurrence over n tokens (gdn.cpp: delta_rule_run's float order with a
// vector table's mad_f32, i.e. every multiply-add fused; requires dv % 8 == 0).
struct GdnRun {
    int64_t dk, dv, n;
    const float* q;  // token t's row at q + t * qk_stride (dk floats)
    const float* k;
    int64_t qk_stride;
    const float* v;  // token t's row at v + t * v_stride (dv floats)
    int64_t v_stride;
    const float* decay;  // [n] expf(g_t)
    const float* b;      // [n] beta after the sigmoid
    float scale;         // of the output
    float* S;            // [dk][dv], updated in place
    float* o;            // token t's row at o + t * o_stride
    int64_t o_stride;
    float* work;  // gdn_work_floats(dk) floats of scratch (EwKernels::gdn)
};

struct EwKernels {
    quant::Isa isa;
    // ggml's SiLU of x[i], i < n: the vector formula (ggml_silu_vec) for i < n_vec, the scalar one
    // (ggml_silu_scalar: libm expf) for the rest; swiglu multiplies by u[i]. x == y allowed.
    void (*silu)(int64_t n, const float* x, float* y, int64_t n_vec);
    void (*swiglu)(int64_t n, const float* g, const float* u, float* y, int64_t n_vec);
    // y = a + b, y = a * b, y = x * s, y = (x * s) * w (each operation rounded); in place allowed.
    void (*add)(int64_t n, const float* a, const float* b, float* y);
    void (*mul)(int64_t n, const float* a, const float* b, float* y);
    void (*scale)(int64_t n, const float* x, float s, float* y);
    void (*scale_mul)(int64_t n, const float* x, float s, const float* w, float* y);
    // RoPE of one head's first 2 * n_pairs elements (the caller copies the rest): pair i is
    // (x[2i], x[2i + 1]) (normal) or (x[i], x[i + n_pairs]) (neox), rotated by (c[i], s[i]) as GCC
    // contracts ggml's rotation: y0 = fma(x0, c, -(x1 * s)), y1 = fma(x0, s, x1 * c).
    void (*rope)(int64_t n_pairs, bool neox, const float* c, const float* s, const float* x, float* y);
    // ssm_conv of n channels of one token: y[c] = fma chain over taps j < kw of u[j][c] * w[j * w_stride + c]
    // from 0, in tap order; then SiLU as `silu` with n_vec. u[j]: the window rows (already offset).
    void (*conv_silu)(int64_t n, int64_t kw, const float* const* u, const float* w, int64_t w_stride, float* y,
                      int64_t n_vec);
    // The delta rule of one head (GdnRun); nullptr = gdn.cpp's loop over the KernelTable helpers.
    void (*gdn)(const GdnRun& r);
};

// The scratch of EwKernels::gdn, in floats.
int64_t gdn_work_floats(int64_t dk);

// The delta rule of one head through a KernelTable's mad_f32 / scale_f32 (gdn.cpp; the reference of
// EwKernels::gdn with a vector table, and the path of the scalar table).
void gdn_loop(const GdnRun& r, const quant::KernelTable& kt);

// The table of an instruction set; isa must be one this CPU supports (quant::kernels_for(isa) != nullptr).
const EwKernels& ew_kernels(quant::Isa isa);

namespace avx2 {
const EwKernels& ew_table();
}
namespace avx512 {
const EwKernels& ew_table();
}

}  // namespace ferry::backend::cpu
