// The scalar format table: for each block format ferry computes with, its reference functions behind
// type-erased pointers, and the activation format its dot product pairs with.
//
// This table is the spec the faster kernels are measured against; SIMD kernels live in their own
// tables (per ISA) with the same shape, and tests compare them entry by entry with this one.
#pragma once

#include <cstdint>
#include <span>

#include "core/ggml_type.h"

namespace ferry::quant {

struct FormatTraits {
    GgmlType type;
    int64_t block_size;  // elements per block (1 for F32 / F16 / BF16)
    int64_t type_size;   // bytes per block

    // x: n / block_size blocks of this type -> y: n floats. n must be a multiple of block_size.
    void (*dequantize_row)(const void* x, float* y, int64_t n);
    // x: n floats -> y: n / block_size blocks of this type (the reference quantizer).
    void (*quantize_row)(const float* x, void* y, int64_t n);
    // (optional) Dot of a weight row w (this type) with an activation row act of type vec_dot_type,
    // both n elements long. nullptr for activation-only formats (Q8_1, Q8_K).
    float (*vec_dot)(int64_t n, const void* w, const void* act);
    // The activation format vec_dot expects (the format itself for activation-only formats).
    GgmlType vec_dot_type;
};

// The scalar reference traits of a type, or nullptr if ferry has no block format for it.
const FormatTraits* find_format(GgmlType type);

// The quantizer matmul applies to its activations for an activation format (a vec_dot_type):
// ggml-cpu's x86 rounding for Q8_0 / Q8_1 (quantize_act_row_q8_0 / _q8_1), the reference quantizer
// for Q8_K; nullptr for any other type.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);
QuantizeRowFn activation_quantizer(GgmlType act_type);

// All formats in the table, in ggml id order (for tests and `ferry inspect`).
std::span<const FormatTraits> all_formats();

}  // namespace ferry::quant
