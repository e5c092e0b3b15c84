#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/fp16.h"

namespace ferry {
namespace {

// Round trip of every half bit pattern: fp16 -> fp32 is exact, so fp32 -> fp16 must give it back.
TEST(Fp16, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_fp32(uint16_t(h));
        const uint16_t back = fp32_to_fp16(f);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(fp16_to_fp32(back))) << h;
        } else {
            EXPECT_EQ(back, h) << h;
        }
    }
}

TEST(Fp16, RoundsToNearestEven) {
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(1.0f + 1.0f / 2048)), 1.0f);                // tie -> even (1.0)
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(1.0f + 3.0f / 2048)), 1.0f + 4.0f / 2048);  // tie -> even
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // overflows to inf
    EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.0f, -24)), 0x03ff);  // largest subnormal
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up to smallest normal
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNan) {
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
    EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f808000)), 0x3f80);  // tie -> even
    EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f818000)), 0x3f82);  // tie -> even (up)
    EXPECT_EQ(fp32_to_bf16(f32_from_bits(0x3f808001)), 0x3f81);
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace ferry
