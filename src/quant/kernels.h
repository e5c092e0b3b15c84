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

// Flash attention over a block of query rows (the CPU backend's -fa path for micro-batches of 64 and
// more tokens), in the float order of llama.cpp's tiled flash-attention kernel (ggml-cpu's
// flash_attn_ext_tiled, AVX-512 build). Row r < n_rows is head (r % heads) of token (r / heads): its
// query starts at q + (r / heads) * ldq + (r % heads) * dk, its output at y + (r / heads) * ldy +
// (r % heads) * dv, and it sees the keys j in [lo[r], hi[r]). Key j's K row (dk elements) starts at
// element j * ldk of k, its V row (dv elements) at j * ldv of v, F16 or F32. Per row, exactly (so a
// row's result does not depend on the other rows of the call, up to the sign of a zero output):
//   - keys in blocks of kFlashKeys cells aligned at cell 0, in order, over the blocks some row of the
//     call sees; a block's softmax spans its cells rounded up to 16;
//   - score s_j = fl(dot * scale), dot = fma(k_j[dk-1], q[dk-1], ... fma(k_j[0], q[0], 0)) in index
//     order; -inf for a key the row does not see;
//   - per block: m' = max(m, the block's s_j) (m starts at -inf); alpha = expf(m - m') if m' > m, else 1;
//     p_j = e(s_j - m0) with m0 = m' (0 when m' = -inf) and e ggml_v_expf's algorithm (see
//     soft_max_ggml); l = float(double(fl(l * alpha)) + sum), sum adding in double the block's groups of
//     16 cells, each reduced in float as reduce_lanes16 does (l starts at 0); o[d] = o[d] * alpha, then
//     o[d] = fma(p_j, v_j[d], o[d]) over the block's cells in order (o starts at 0);
//   - y[d] = o[d] * (l > 0 ? 1 / l : 0).
// dv must be a multiple of 16. scratch holds flash_attn_scratch_floats(dk, dv) floats.
inline constexpr int64_t kFlashRows = 64;  // query rows per call, at most
inline constexpr int64_t kFlashKeys = 64;  // keys per block

struct FlashAttnArgs {
    int64_t dk = 0, dv = 0, n_rows = 0, heads = 1;
    const float* q = nullptr;
    int64_t ldq = 0;
    float* y = nullptr;
    int64_t ldy = 0;
    const int32_t* lo = nullptr;
    const int32_t* hi = nullptr;
    const void* k = nullptr;
    int64_t ldk = 0;
    bool k_f16 = false;
    const void* v = nullptr;
    int64_t ldv = 0;
    bool v_f16 = false;
    float scale = 1.0f;
    float* scratch = nullptr;
};

// Q transposed (dk x 64 rows), scores, K and V blocks ((64 + 8) keys, room for a padded register
// tile), the output accumulator (64 rows x dv).
inline constexpr int64_t flash_attn_scratch_floats(int64_t dk, int64_t dv) {
    return dk * kFlashRows + (kFlashKeys + 8) * (kFlashRows + dk + dv) + kFlashRows * dv;
}

// ggml's one-row flash attention (-fa on, one query row) over an F16 K and V: the keys j in [j0, j1) in
// order, key j's K row (dk halves) at k + j * ldk, its V row (dv halves) at v + j * ldv; q holds the
// query rounded to F16. Exactly the composition of the single-step helpers below:
//   s = fl(dot_f16_ggml(dk, K_j, q) * scale); ms = vs = 1; if s > m: ms = expf(m - s), m = s,
//   scale_f16(acc, ms); else vs = expf(s - m); fmad_f16_acc16(acc, V_j, vs); S = fma(S, ms, vs)
// (m = -inf, S = 0, the F16 accumulator acc = 0 at the start), then y[d] = f32(acc[d]) * (S == 0 ? 0 : 1 / S).
// y (dv floats) is also the kernel's working memory; j1 <= j0 gives zeros.
// With ms set (llama.cpp's split-KV partials), y keeps f32(acc[d]) unnormalized and head g's m and S go
// to ms[2g], ms[2g + 1] (-inf and 0 for an empty range).
//
// heads > 1: the query rows of `heads` query heads of one GQA group (one K / V head, one key range, as
// in a decode step), head g's query at q + g * ldq and its output at y + g * ldy; each head's result is
// bit for bit that of a call with heads = 1 (its own operations in the same order, expf included), but
// each K / V row is converted once for all heads and their accumulator chains run interleaved.
inline constexpr int64_t kFlashRowHeads = 8;  // heads per call, at most
struct FlashRowF16Args {
    int64_t dk = 0, dv = 0;
    const uint16_t* q = nullptr;
    const uint16_t* k = nullptr;
    int64_t ldk = 0;
    const uint16_t* v = nullptr;
    int64_t ldv = 0;
    int64_t j0 = 0, j1 = 0;
    float scale = 1.0f;
    float* y = nullptr;
    int64_t heads = 1;  // 1 .. kFlashRowHeads
    int64_t ldq = 0, ldy = 0;
    float* ms = nullptr;  // optional: each head's running max and sum instead of the normalized y
};

using GemmFn = void (*)(const GemmArgs& args);
using QuantizeFn = void (*)(const float* x, void* y, int64_t n);

inline constexpr int kMaxTypeId = 40;       // GgmlType ids are < 40
inline constexpr int64_t kOneSumRows = 16;  // rows per register tile of the one-sum kernels

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
    // The one-sum order, for steps of several sequences (the CPU backend under Ops::set_batched_step):
    // per output and block the whole integer dot converted once, so one conversion, scale product and FMA
    // serve a block instead of ggml's 8 lanes; for Q4_1 and Q8_0 exactly vec_dot_q4_1_q8_1_one_sum and
    // vec_dot_q8_0_q8_0_one_sum, for any nc.
    // Indexed like gemm; nullptr = no such kernel (the caller takes gemm). Fastest with nr a multiple of
    // kOneSumRows.
    GemmFn gemm_one_sum[kMaxTypeId];
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
    // y[i] = fp32_to_fp16(x[i]) (core/fp16.h), e.g. rows written to an F16 KV cache.
    void (*to_f16)(int64_t n, const float* x, uint16_t* y);

    // llama.cpp's CPU attention arithmetic (ggml-cpu built for x86 AVX-512, the build ferry's results are
    // compared with), for the CPU backend's attention. Every table computes bit-identical results (the
    // scalar one with std::fma); "lanes16" = 16 float lanes, lane l summing, with fused multiply-adds in
    // index order, the products of elements l, l + 16, l + 32, ...
    //
    // tinyBLAS' F16 / F32 GEMM dot (llamafile_sgemm): the lanes16 sums reduced as reduce_lanes16 does.
    // n must be a multiple of 16.
    float (*dot_f16_lanes16)(int64_t n, const uint16_t* x, const uint16_t* y);
    float (*dot_f32_lanes16)(int64_t n, const float* x, const float* y);
    // dot_f16_lanes16 of the n_x rows x + j * ldx (j < n_x) with one y: out[j], bit for bit.
    void (*dot_f16_lanes16_rows)(int64_t n, const uint16_t* x, int64_t ldx, int64_t n_x, const uint16_t* y, float* out);
    // tinyBLAS' product of probabilities and F16 V (-fa off's output): for cells j in [j0, j1), lane
    // j % 16 of column d < n accumulates fma(v[j * ldv + d], p[j - j0], lane) in cell order from 0, and
    // out[d] is the 16 lanes reduced as reduce_lanes16 does.
    void (*pv_f16_lanes16)(int64_t n, const uint16_t* v, int64_t ldv, const float* p, int64_t j0, int64_t j1,
                           float* out);
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
    // One query row of ggml's flash attention over F16 K / V (FlashRowF16Args), or the rows of up to
    // kFlashRowHeads query heads sharing one KV head, each bit-identical with a one-row call.
    void (*flash_attn_row_f16)(const FlashRowF16Args& a);

    // Flash attention over a block of query rows (FlashAttnArgs); every table bit-identical.
    void (*flash_attn_rows)(const FlashAttnArgs& a);

    // y[i] = expf(x[i]) exactly as the C library computes it (llama.cpp's attention calls libm's expf
    // per key): the scalar table calls the library; the x86 tables compute glibc's algorithm on vector
    // lanes (quant/x86/expf_libm.h) if, checked when the table is built, it agrees with this library.
    void (*expf_libm)(int64_t n, const float* x, float* y);
    bool expf_libm_vector = false;  // the vector path was chosen (it agreed with the library)

    GemmFn gemm_for(GgmlType t) const {
        const uint32_t id = uint32_t(t);
        return id < uint32_t(kMaxTypeId) ? gemm[id] : nullptr;
    }
    GemmFn gemm_one_sum_for(GgmlType t) const {
        const uint32_t id = uint32_t(t);
        return id < uint32_t(kMaxTypeId) ? gemm_one_sum[id] : nullptr;
    }
    QuantizeFn quantize_for(GgmlType act_type) const;
};

// The table for an instruction set, or nullptr when it was not compiled in or this CPU lacks it.
const KernelTable* kernels_for(Isa isa);

// The best table this CPU supports (decided once).
const KernelTable& best_kernels();

}  // namespace ferry::quant
