// Q5_0 (ggml type 6): 5.5 bits per weight. Block of 32 elements, 22 bytes:
//
//   offset 0  d       fp16    scale
//   offset 2  qh[4]   uint8   the 32 fifth bits, read as one little-endian uint32 h:
//                             bit j of h is bit 4 of element j (j = 0..31)
//   offset 6  qs[16]  uint8   low 4 bits: element j in the low nibble of qs[j], element j+16 in the
//                             high nibble (j = 0..15)
//
//   q[j] = (qs[j] & 15) | (((h >> j) & 1) << 4),  q[j+16] = (qs[j] >> 4) | (((h >> (j+16)) & 1) << 4)
//   y[i] = d * (q[i] - 16)
//
// Quantizer (ggml's reference rule, exact): max = element of largest |x| with its sign; d = max / -16;
// id = d ? 1/d : 0; q = min(31, trunc(x * id + 16.5)).
//
// Pairs with Q8_0 activations: per block sumi = sum (q_w - 16) * q_a, sum += (w.d * a.d) * sumi.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_0.h"

namespace ferry::quant {

struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
float vec_dot_q5_0_q8_0(int64_t n, const BlockQ5_0* w, const BlockQ8_0* a);

namespace detail {

// The 32 unsigned 5-bit codes of a Q5_0 / Q5_1 block, in element order.
void unpack_q5(const uint8_t qh[4], const uint8_t qs[16], int q[32]);
// Inverse of unpack_q5; codes must be in 0..31.
void pack_q5(const int q[32], uint8_t qh[4], uint8_t qs[16]);

}  // namespace detail
}  // namespace ferry::quant
