// Kernel tables: the fast versions of the scalar functions in quant/formats.h, one table per
// instruction set, chosen at run time from what the CPU supports (core/cpu_features.h).
//
// Every table has the same shape; an entry left null means "no fast kernel here": the caller falls
// back to the scalar reference (for gemm: the format's scalar vec_dot, row by row). The scalar table
// always exists and has only the vector helpers filled in.
//
// The per-ISA tables are built from the sources in quant/x86/, compiled once per instruction set with
// that set's flags (-mavx2 -mfma -mf16c, or additionally -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni ...), never with global flags, so the binary still starts on a CPU without them.
//
// Contracts:
//   - quantize_* produce bit-identical blocks to the scalar activation quantizers (tests check this).
//   - gemm results equal the scalar vec_dot up to float summation order. Each output is computed by
//     the same sequence of operations whatever the tile it falls in, so a column's results do not
//     depend on how many columns are multiplied together (prefill vs token-by-token decode agree
//     exactly).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/ggml_type.h"

namespace ferry::quant {

enum class Isa { Scalar, Avx2, Avx512 };

const char* isa_name(Isa isa);

// A tile of a matrix product: for r < nr, c < nc,
//   y[c * ldy + r] = dot(weight row r, activation column c)
// where weight row r starts at w + r * w_stride (n elements of the weight type) and activation
// column c at a + c * a_stride (n elements of the paired activation type; f32 for F32/F16/BF16).
struct GemmArgs {
    int64_t n = 0;
    const void* w = nullptr;
    size_t w_stride = 0;
    int64_t nr = 0;
    const void* a = nullptr;
    size_t a_stride = 0;
    int64_t nc = 0;
    float* y = nullptr;
    int64_t ldy = 0;
};

using GemmFn = void (*)(const GemmArgs& args);
using QuantizeFn = void (*)(const float* x, void* y, int64_t n);

inline constexpr int kMaxTypeId = 40;  // GgmlType ids are < 40

// An aggregate without default member initializers on purpose: the per-ISA sources create one with
// `KernelTable t{}` (zero-initialized, no constructor function), so no inline constructor compiled with
// AVX-512 flags can be picked by the linker for use on another CPU.
struct KernelTable {
    Isa isa;

    // Indexed by GgmlType id of the weight; nullptr = use the scalar vec_dot.
    GemmFn gemm[kMaxTypeId];
    // Q4_K weights whose row count is a multiple of 8, in the float order of llama.cpp's repacked
    // Q4_K GEMM for the first nc - nc % 4 columns and its GEMV for the rest (x86/gemm_k.cpp); a
    // column's result depends on nc % 4, so callers split columns at multiples of 4 only;
    // nullptr = gemm[Q4_K].
    GemmFn gemm_q4k_8x8;
    // Activation quantizers, bit-exact with quantize_act_row_q8_0 / _q8_1 and quantize_row_q8_k
    // (quant::activation_quantizer); nullptr = scalar.
    QuantizeFn quantize_q8_0;
    QuantizeFn quantize_q8_1;
    QuantizeFn quantize_q8_k;

    // Vector helpers for attention and element-wise ops (always set). f16 arguments are raw halves.
    float (*dot_f32)(int64_t n, const float* x, const float* y);
    float (*dot_f16_f32)(int64_t n, const uint16_t* x, const float* y);
    void (*mad_f32)(int64_t n, float* y, const float* x, float s);     // y += s * x
    void (*mad_f16)(int64_t n, float* y, const uint16_t* x, float s);  // y += s * x
    void (*scale_f32)(int64_t n, float* y, float s);                   // y *= s
    // y[i] = x[i] rounded to fp16 and back (bit-exact with core/fp16.h); x == y allowed.
    void (*round_f16)(int64_t n, const float* x, float* y);

    // llama.cpp's CPU attention arithmetic (ggml-cpu built for x86 AVX-512, the build ferry's results are
    // compared with), for the CPU backend's attention. Every table computes bit-identical results (the
    // scalar one with std::fma); "lanes16" = 16 float lanes, lane l summing, with fused multiply-adds in
    // index order, the products of elements l, l + 16, l + 32, ...
    //
    // tinyBLAS' F16 / F32 GEMM dot (llamafile_sgemm): the lanes16 sums reduced as reduce_lanes16 does.
    // n must be a multiple of 16.
    float (*dot_f16_lanes16)(int64_t n, const uint16_t* x, const uint16_t* y);
    float (*dot_f32_lanes16)(int64_t n, const float* x, const float* y);
    // ggml_vec_dot_f16: four lanes16 accumulators over steps of 64 elements (accumulator a takes elements
    // 16a .. 16a + 15 of each step), added as (acc0 + acc2) + (acc1 + acc3), lanes reduced, then the
    // tail (n % 64 elements) added one product at a time in double.
    float (*dot_f16_ggml)(int64_t n, const uint16_t* x, const uint16_t* y);
    // y[i] = fma(x[i], s, y[i]) (ggml_vec_mad_f32, and the rows of 16 lane accumulators of -fa off's
    // output); F32 and F16 x.
    void (*fmad_f32)(int64_t n, float* y, const float* x, float s);
    void (*fmad_f16)(int64_t n, float* y, const uint16_t* x, float s);
    // An F16 accumulator (ggml_vec_mad_f16 / ggml_vec_scale_f16): y[i] = f16(fma(x[i], s, f32(y[i]))),
    // y[i] = f16(f32(y[i]) * s), rounding to nearest even.
    void (*fmad_f16_acc16)(int64_t n, uint16_t* y, const uint16_t* x, float s);
    void (*scale_f16)(int64_t n, uint16_t* y, float s);
    // ggml_vec_soft_max_f32: y[i] = exp(x[i] - max) by ggml_v_expf (AVX-512) on 16-element steps from
    // i = 0, by expf on the tail; returns the sum in double (each step's 16 values reduced in float as
    // reduce_lanes16 does, then added in double; tail values added one by one).
    double (*soft_max_ggml)(int64_t n, float* y, const float* x, float max);
    // out[d] = the 16 values acc[l * n + d], l = 0..15, added as GCC's _mm512_reduce_add_ps does:
    // t_i = v_i + v_{i+8} (i < 8), u_i = t_i + t_{i+4} (i < 4), (u_0 + u_2) + (u_1 + u_3).
    void (*reduce_lanes16)(int64_t n, const float* acc, float* out);

    GemmFn gemm_for(GgmlType t) const {
        const uint32_t id = uint32_t(t);
        return id < uint32_t(kMaxTypeId) ? gemm[id] : nullptr;
    }
    QuantizeFn quantize_for(GgmlType act_type) const;
};

// The table for an instruction set, or nullptr when it was not compiled in or this CPU lacks it.
const KernelTable* kernels_for(Isa isa);

// The best table this CPU supports (decided once).
const KernelTable& best_kernels();

}  // namespace ferry::quant
