// MXFP4 (ggml type 39): 4.25 bits per weight. Block of 32 elements, 17 bytes (OCP microscaling fp4):
//
//   offset 0  e       uint8  E8M0 shared scale: a bare biased exponent, value 2^(e - 127)
//   offset 1  qs[16]  uint8  E2M1 codes: element j in the low nibble of qs[j], element j+16 in the
//                            high nibble (j = 0..15)
//
//   y[j] = kMxfp4Values[code j] * e8m0_to_float_half(e)
//
// kMxfp4Values = {0,1,2,3,4,6,8,12, 0,-1,-2,-3,-4,-6,-8,-12} are the E2M1 values {0,.5,1,1.5,2,3,4,6}
// doubled, so the scale is halved to compensate: e8m0_to_float_half(e) = 2^(e - 128), built from bits
// as ggml does: e >= 2 -> float bits (e - 1) << 23;  e < 2 -> 0x00200000 << e (the subnormals 2^-128,
// 2^-127). e = 255 (NaN in the OCP spec) decodes to 2^127 here, as in ggml.
//
// Quantizer (ggml's reference rule): amax = max |x|; e = amax > 0 ? floor(log2(amax)) - 2 + 127 : 0
// (we clamp e to 0..255 where ggml's cast would be undefined: amax < 2^-125 or >= 2^129), then each
// element takes the code whose value * d is nearest to x (the lowest code on ties, so 0 over -0).
//
// Pairs with Q8_0 activations: per block sumi = sum kMxfp4Values[code] * q_a,
//   sum += (fp16(a.d) * e8m0_to_float_half(e)) * sumi.
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_0.h"

namespace ferry::quant {

struct BlockMXFP4 {
    uint8_t e;
    uint8_t qs[QK_MXFP4 / 2];
};
static_assert(sizeof(BlockMXFP4) == 17);

inline float e8m0_to_float_half(uint8_t e) {
    return f32_from_bits(e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23);
}

void dequantize_row_mxfp4(const BlockMXFP4* x, float* y, int64_t n);
void quantize_row_mxfp4(const float* x, BlockMXFP4* y, int64_t n);
float vec_dot_mxfp4_q8_0(int64_t n, const BlockMXFP4* w, const BlockQ8_0* a);

}  // namespace ferry::quant
