// Q4_K (ggml type 12): 4.5 bits per weight. Super-block of 256 elements = 8 sub-blocks of 32,
// 144 bytes:
//
//   offset 0   d           fp16   super-scale of the scale codes
//   offset 2   dmin        fp16   super-scale of the min codes
//   offset 4   scales[12]  uint8  eight 6-bit scale codes sc_j and eight 6-bit min codes m_j, packed
//                                 (s = scales):
//                                   j < 4:  sc_j = s[j] & 63,  m_j = s[j + 4] & 63
//                                   j >= 4: sc_j = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4
//                                           m_j  = (s[j + 4] >> 4) | (s[j] >> 6) << 4
//   offset 16  qs[128]     uint8  4-bit codes, per 64-element group g = 0..3 (bytes qs[32g .. 32g+31]):
//                                 element 64g + l in the low nibble of qs[32g + l], element
//                                 64g + 32 + l in the high nibble (l = 0..31)
//
//   for element i in sub-block j = i / 32:  y[i] = (d * sc_j) * q[i] - (dmin * m_j)
//
// Quantizer (ours): per sub-block fit_scale_offset with nmax 15 (unit weights); scales and mins coded
// on 6 bits against d = max scale / 63 and dmin = max min / 63 (rounded to fp16 first); codes
// recomputed with the decoded scale and min.
//
// Pairs with Q8_K activations: per super-block
//   sumi = sum_j sc_j * sum_{i in j} q[i] * a.qs[i],  summ = sum_j m_j * (a.bsums[2j] + a.bsums[2j+1])
//   sum += a.d * (d * sumi) - a.d * (dmin * summ)
#pragma once

#include <cstdint>

#include "quant/common.h"
#include "quant/q8_k.h"

namespace ferry::quant {

struct BlockQ4K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

void dequantize_row_q4_k(const BlockQ4K* x, float* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4K* y, int64_t n);
float vec_dot_q4_k_q8_k(int64_t n, const BlockQ4K* w, const BlockQ8K* a);

namespace detail {

// Scale and min codes of sub-block j (0..7) from the packed 12 bytes shared by Q4_K and Q5_K.
inline void scale_min_k4(const uint8_t s[K_SCALE_SIZE], int j, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// The part of the Q4_K / Q5_K quantizers they share: fits one super-block x[0..256) with 8 affine
// sub-blocks of codes 0..nmax; writes the fp16 super-scales, the packed scales and the codes L.
void quantize_superblock_k4(const float* x, int nmax, uint16_t* d, uint16_t* dmin, uint8_t scales[K_SCALE_SIZE],
                            uint8_t L[QK_K]);

}  // namespace detail
}  // namespace ferry::quant
