// IQ4_XS (ggml type 23): 4.25 bits per weight. Super-block of 256 elements = 8 sub-blocks of 32,
// 136 bytes:
//
//   offset 0   d            fp16    super-scale
//   offset 2   scales_h     uint16  high 2 bits of the 6-bit scale codes: bits 2j..2j+1 for sub-block j
//   offset 4   scales_l[4]  uint8   low 4 bits: sub-block j in nibble j % 2 of scales_l[j / 2]
//                                   (low nibble for even j)
//   offset 8   qs[128]      uint8   4-bit grid codes, 16 bytes per sub-block: element 32j + l in the
//                                   low nibble of qs[16j + l], element 32j + 16 + l in the high nibble
//                                   (l = 0..15)
//
//   ls_j = low | high << 4 (0..63);  y[i] = (d * (ls_j - 32)) * kIq4nlValues[code i], j = i / 32
//
// The IQ4_NL grid (iq4_nl.h) with a per-32 signed 6-bit scale in a 256 super-block.
// Quantizer (ours): per sub-block fit_scale_grid (unit weights); the signed sub-block scales are coded
// against d = (scale of largest magnitude) / -32; codes recomputed with the decoded scales.
//
// Pairs with Q8_K activations: sumi = sum_j (ls_j - 32) * sum_{i in j} kIq4nlValues[code i] * a.qs[i];
//   sum += (d * a.d) * sumi
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockIQ4XS {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockIQ4XS) == 136);

void dequantize_row_iq4_xs(const BlockIQ4XS* x, float* y, int64_t n);
void quantize_row_iq4_xs(const float* x, BlockIQ4XS* y, int64_t n);
float vec_dot_iq4_xs_q8_k(int64_t n, const BlockIQ4XS* w, const BlockQ8K* a);

}  // namespace ferry::quant
