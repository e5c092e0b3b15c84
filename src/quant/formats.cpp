#include "quant/formats.h"

#include "quant/bf16.h"
#include "quant/f16.h"
#include "quant/f32.h"
#include "quant/iq4_nl.h"
#include "quant/iq4_xs.h"
#include "quant/mxfp4.h"
#include "quant/q2_k.h"
#include "quant/q3_k.h"
#include "quant/q4_0.h"
#include "quant/q4_1.h"
#include "quant/q4_k.h"
#include "quant/q5_0.h"
#include "quant/q5_1.h"
#include "quant/q5_k.h"
#include "quant/q6_k.h"
#include "quant/q8_0.h"
#include "quant/q8_1.h"
#include "quant/q8_k.h"

namespace ferry::quant {
namespace {

// Adapters from the typed reference functions to the table's void-typed signatures. The casts only
// restore the types the table entry promises.
template <typename Block, void (*F)(const Block*, float*, int64_t)>
void dequantize_erased(const void* x, float* y, int64_t n) {
    F(static_cast<const Block*>(x), y, n);
}

template <typename Block, void (*F)(const float*, Block*, int64_t)>
void quantize_erased(const float* x, void* y, int64_t n) {
    F(x, static_cast<Block*>(y), n);
}

template <typename W, typename A, float (*F)(int64_t, const W*, const A*)>
float dot_erased(int64_t n, const void* w, const void* a) {
    return F(n, static_cast<const W*>(w), static_cast<const A*>(a));
}

template <typename Block>
constexpr int64_t size_of = int64_t(sizeof(Block));

const FormatTraits kFormats[] = {
    {GgmlType::F32, 1, 4, dequantize_erased<float, dequantize_row_f32>, quantize_erased<float, quantize_row_f32>,
     dot_erased<float, float, vec_dot_f32_f32>, GgmlType::F32},
    {GgmlType::F16, 1, 2, dequantize_erased<uint16_t, dequantize_row_f16>, quantize_erased<uint16_t, quantize_row_f16>,
     dot_erased<uint16_t, float, vec_dot_f16_f32>, GgmlType::F32},
    {GgmlType::Q4_0, QK4_0, size_of<BlockQ4_0>, dequantize_erased<BlockQ4_0, dequantize_row_q4_0>,
     quantize_erased<BlockQ4_0, quantize_row_q4_0>, dot_erased<BlockQ4_0, BlockQ8_0, vec_dot_q4_0_q8_0>,
     GgmlType::Q8_0},
    {GgmlType::Q4_1, QK4_1, size_of<BlockQ4_1>, dequantize_erased<BlockQ4_1, dequantize_row_q4_1>,
     quantize_erased<BlockQ4_1, quantize_row_q4_1>, dot_erased<BlockQ4_1, BlockQ8_1, vec_dot_q4_1_q8_1>,
     GgmlType::Q8_1},
    {GgmlType::Q5_0, QK5_0, size_of<BlockQ5_0>, dequantize_erased<BlockQ5_0, dequantize_row_q5_0>,
     quantize_erased<BlockQ5_0, quantize_row_q5_0>, dot_erased<BlockQ5_0, BlockQ8_0, vec_dot_q5_0_q8_0>,
     GgmlType::Q8_0},
    {GgmlType::Q5_1, QK5_1, size_of<BlockQ5_1>, dequantize_erased<BlockQ5_1, dequantize_row_q5_1>,
     quantize_erased<BlockQ5_1, quantize_row_q5_1>, dot_erased<BlockQ5_1, BlockQ8_1, vec_dot_q5_1_q8_1>,
     GgmlType::Q8_1},
    {GgmlType::Q8_0, QK8_0, size_of<BlockQ8_0>, dequantize_erased<BlockQ8_0, dequantize_row_q8_0>,
     quantize_erased<BlockQ8_0, quantize_row_q8_0>, dot_erased<BlockQ8_0, BlockQ8_0, vec_dot_q8_0_q8_0>,
     GgmlType::Q8_0},
    {GgmlType::Q8_1, QK8_1, size_of<BlockQ8_1>, dequantize_erased<BlockQ8_1, dequantize_row_q8_1>,
     quantize_erased<BlockQ8_1, quantize_row_q8_1>, nullptr, GgmlType::Q8_1},
    {GgmlType::Q2_K, QK_K, size_of<BlockQ2K>, dequantize_erased<BlockQ2K, dequantize_row_q2_k>,
     quantize_erased<BlockQ2K, quantize_row_q2_k>, dot_erased<BlockQ2K, BlockQ8K, vec_dot_q2_k_q8_k>, GgmlType::Q8_K},
    {GgmlType::Q3_K, QK_K, size_of<BlockQ3K>, dequantize_erased<BlockQ3K, dequantize_row_q3_k>,
     quantize_erased<BlockQ3K, quantize_row_q3_k>, dot_erased<BlockQ3K, BlockQ8K, vec_dot_q3_k_q8_k>, GgmlType::Q8_K},
    {GgmlType::Q4_K, QK_K, size_of<BlockQ4K>, dequantize_erased<BlockQ4K, dequantize_row_q4_k>,
     quantize_erased<BlockQ4K, quantize_row_q4_k>, dot_erased<BlockQ4K, BlockQ8K, vec_dot_q4_k_q8_k>, GgmlType::Q8_K},
    {GgmlType::Q5_K, QK_K, size_of<BlockQ5K>, dequantize_erased<BlockQ5K, dequantize_row_q5_k>,
     quantize_erased<BlockQ5K, quantize_row_q5_k>, dot_erased<BlockQ5K, BlockQ8K, vec_dot_q5_k_q8_k>, GgmlType::Q8_K},
    {GgmlType::Q6_K, QK_K, size_of<BlockQ6K>, dequantize_erased<BlockQ6K, dequantize_row_q6_k>,
     quantize_erased<BlockQ6K, quantize_row_q6_k>, dot_erased<BlockQ6K, BlockQ8K, vec_dot_q6_k_q8_k>, GgmlType::Q8_K},
    {GgmlType::Q8_K, QK_K, size_of<BlockQ8K>, dequantize_erased<BlockQ8K, dequantize_row_q8_k>,
     quantize_erased<BlockQ8K, quantize_row_q8_k>, nullptr, GgmlType::Q8_K},
    {GgmlType::IQ4_NL, QK4_NL, size_of<BlockIQ4NL>, dequantize_erased<BlockIQ4NL, dequantize_row_iq4_nl>,
     quantize_erased<BlockIQ4NL, quantize_row_iq4_nl>, dot_erased<BlockIQ4NL, BlockQ8_0, vec_dot_iq4_nl_q8_0>,
     GgmlType::Q8_0},
    {GgmlType::IQ4_XS, QK_K, size_of<BlockIQ4XS>, dequantize_erased<BlockIQ4XS, dequantize_row_iq4_xs>,
     quantize_erased<BlockIQ4XS, quantize_row_iq4_xs>, dot_erased<BlockIQ4XS, BlockQ8K, vec_dot_iq4_xs_q8_k>,
     GgmlType::Q8_K},
    {GgmlType::BF16, 1, 2, dequantize_erased<uint16_t, dequantize_row_bf16>,
     quantize_erased<uint16_t, quantize_row_bf16>, dot_erased<uint16_t, float, vec_dot_bf16_f32>, GgmlType::F32},
    {GgmlType::MXFP4, QK_MXFP4, size_of<BlockMXFP4>, dequantize_erased<BlockMXFP4, dequantize_row_mxfp4>,
     quantize_erased<BlockMXFP4, quantize_row_mxfp4>, dot_erased<BlockMXFP4, BlockQ8_0, vec_dot_mxfp4_q8_0>,
     GgmlType::Q8_0},
};

}  // namespace

const FormatTraits* find_format(GgmlType type) {
    for (const FormatTraits& f : kFormats) {
        if (f.type == type) return &f;
    }
    return nullptr;
}

QuantizeRowFn activation_quantizer(GgmlType act_type) {
    switch (act_type) {
        case GgmlType::Q8_0: return quantize_erased<BlockQ8_0, quantize_act_row_q8_0>;
        case GgmlType::Q8_1: return quantize_erased<BlockQ8_1, quantize_act_row_q8_1>;
        case GgmlType::Q8_K: return quantize_erased<BlockQ8K, quantize_row_q8_k>;
        default: return nullptr;
    }
}

std::span<const FormatTraits> all_formats() { return kFormats; }

}  // namespace ferry::quant
