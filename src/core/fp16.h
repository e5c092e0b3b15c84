// IEEE half (fp16) and bfloat16 conversions, scalar and bit-exact.
//
// fp32 -> fp16 rounds to nearest even, overflows to infinity and keeps NaN a NaN, as the F16C
// instruction `vcvtps2ph` with rounding mode 0 does (what ggml uses on x86). fp32 -> bf16 rounds to
// nearest even and quiets NaN. fp16/bf16 -> fp32 is exact.
#pragma once

#include <cstdint>
#include <cstring>

namespace ferry {

inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000 | (mant << 13));  // inf / NaN
    if (exp != 0) return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return f32_from_bits(sign);
    // Subnormal half: normalize into a float.
    int e = -1;
    do {
        mant <<= 1;
        ++e;
    } while ((mant & 0x400) == 0);
    return f32_from_bits(sign | uint32_t(112 - e) << 23 | ((mant & 0x3ff) << 13));
}

inline uint16_t fp32_to_fp16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000) return uint16_t(sign | 0x7e00 | ((abs >> 13) & 0x3ff));  // NaN stays NaN
    if (abs >= 0x477ff000) return uint16_t(sign | 0x7c00);                         // rounds to >= 65520: infinity
    if (abs < 0x38800000) {
        // Result is subnormal (or zero): value = mant * 2^-24.
        if (abs < 0x33000000) return sign;  // < 2^-25 rounds to zero
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // 14..24 bits dropped
        uint32_t half = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) ++half;
        return uint16_t(sign | half);
    }
    // Normal: rebias exponent, round the 13 dropped mantissa bits to nearest even.
    uint32_t h = ((abs >> 23) - 112) << 10 | ((abs >> 13) & 0x3ff);
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // carry may roll into the exponent: fine
    return uint16_t(sign | h);
}

inline float bf16_to_fp32(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 64);  // quiet NaN
    return uint16_t((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

}  // namespace ferry
