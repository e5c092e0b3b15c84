// The activation quantizers reproduce ggml's reference ones exactly (quantize_row_q8_0_ref,
// quantize_row_q8_1_ref, quantize_row_q8_K_ref): hand-computed blocks that pin the rounding rule
// (half away from zero for Q8_0/Q8_1, half to even for Q8_K), the sign of the Q8_K scale, the
// all-zero block, and the group sums. The matmul activation quantizers (quantize_act_row_q8_0 / _q8_1)
// follow ggml-cpu's x86 versions instead: id = 127 / amax and half to even.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/q8_0.h"
#include "quant/q8_1.h"
#include "quant/q8_k.h"

namespace ferry::quant {
namespace {

// amax = 63.5 (negative), so d = 0.5 exactly and id = 2: the products below are exact ties.
std::vector<float> q8_0_example() {
    std::vector<float> x(QK8_0, 0.0f);
    x[0] = -63.5f;  // -> -127
    x[1] = 1.25f;   // 2.5  -> 3   (half to even would give 2)
    x[2] = -1.25f;  // -2.5 -> -3
    x[3] = 0.75f;   // 1.5  -> 2
    x[4] = 0.25f;   // 0.5  -> 1   (half to even would give 0)
    x[5] = -0.25f;  // -0.5 -> -1
    x[6] = 63.5f;   // -> 127
    x[7] = 0.2f;    // 0.4  -> 0
    x[31] = 10.0f;  // 20
    return x;
}

const int8_t kQ8_0Expected[8] = {-127, 3, -3, 2, 1, -1, 127, 0};

TEST(Q8_0Quantize, RoundsHalfAwayFromZero) {
    const std::vector<float> x = q8_0_example();
    BlockQ8_0 b;
    quantize_row_q8_0(x.data(), &b, QK8_0);
    EXPECT_EQ(b.d, 0x3800);  // fp16(0.5)
    for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], kQ8_0Expected[j]) << j;
    for (int j = 8; j < 31; ++j) EXPECT_EQ(b.qs[j], 0) << j;
    EXPECT_EQ(b.qs[31], 20);
}

TEST(Q8_0Quantize, AllZeroBlock) {
    const std::vector<float> x(2 * QK8_0, 0.0f);
    BlockQ8_0 b[2];
    std::memset(b, 0x5a, sizeof(b));
    quantize_row_q8_0(x.data(), b, 2 * QK8_0);
    for (const BlockQ8_0& blk : b) {
        EXPECT_EQ(blk.d, 0);
        for (const int8_t q : blk.qs) EXPECT_EQ(q, 0);
    }
}

TEST(Q8_0Quantize, QuantsUseTheUnroundedScale) {
    // amax = 1: d = 1/127 is not an fp16 value. The stored scale is its fp16 rounding; the quants
    // are computed with 1 / (1/127 in float), so the largest element still maps to exactly 127.
    std::vector<float> x(QK8_0, 0.0f);
    x[3] = 1.0f;
    x[4] = -0.5f;
    BlockQ8_0 b;
    quantize_row_q8_0(x.data(), &b, QK8_0);
    EXPECT_EQ(b.d, fp32_to_fp16(1.0f / 127.0f));
    EXPECT_EQ(b.qs[3], 127);
    EXPECT_EQ(b.qs[4], -64);  // -63.5 rounds away from zero
}

TEST(Q8_1Quantize, MatchesQ8_0AndStoresScaledSum) {
    const std::vector<float> x = q8_0_example();
    BlockQ8_1 b;
    quantize_row_q8_1(x.data(), &b, QK8_1);
    EXPECT_EQ(b.d, 0x3800);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], kQ8_0Expected[j]) << j;
    EXPECT_EQ(b.qs[31], 20);
    // sum q = -127 + 3 - 3 + 2 + 1 - 1 + 127 + 0 + 20 = 22; s = fp16(22 * 0.5) = fp16(11)
    EXPECT_EQ(b.s, fp32_to_fp16(11.0f));
    EXPECT_EQ(b.s, 0x4980);
}

TEST(Q8_1Quantize, AllZeroBlock) {
    const std::vector<float> x(QK8_1, 0.0f);
    BlockQ8_1 b;
    std::memset(&b, 0x5a, sizeof(b));
    quantize_row_q8_1(x.data(), &b, QK8_1);
    EXPECT_EQ(b.d, 0);
    EXPECT_EQ(b.s, 0);
    for (const int8_t q : b.qs) EXPECT_EQ(q, 0);
}

TEST(Q8_0ActivationQuantize, RoundsHalfToEven) {
    const std::vector<float> x = q8_0_example();  // id = 127 / 63.5 = 2 exactly
    BlockQ8_0 b;
    quantize_act_row_q8_0(x.data(), &b, QK8_0);
    EXPECT_EQ(b.d, 0x3800);
    const int8_t want[8] = {-127, 2, -2, 2, 0, 0, 127, 0};
    for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
    EXPECT_EQ(b.qs[31], 20);
}

TEST(Q8_1ActivationQuantize, RoundsHalfToEvenAndStoresScaledSum) {
    const std::vector<float> x = q8_0_example();
    BlockQ8_1 b;
    quantize_act_row_q8_1(x.data(), &b, QK8_1);
    EXPECT_EQ(b.d, 0x3800);
    const int8_t want[8] = {-127, 2, -2, 2, 0, 0, 127, 0};
    for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
    // sum q = -127 + 2 - 2 + 2 + 127 + 20 = 22; s = fp16(22 * 0.5)
    EXPECT_EQ(b.s, fp32_to_fp16(11.0f));
}

TEST(Q8_0ActivationQuantize, ScalesBy127OverAmax) {
    // amax = 1: id = 127 exactly (the reference's 1 / (1/127) is not), so 0.5 -> 63.5 -> 64 (even).
    std::vector<float> x(QK8_0, 0.0f);
    x[3] = 1.0f;
    x[4] = -0.5f;
    x[5] = 1.5f / 127.0f;
    BlockQ8_0 b;
    quantize_act_row_q8_0(x.data(), &b, QK8_0);
    EXPECT_EQ(b.d, fp32_to_fp16(1.0f / 127.0f));
    EXPECT_EQ(b.qs[3], 127);
    EXPECT_EQ(b.qs[4], -64);
    EXPECT_EQ(b.qs[5], int8_t(std::nearbyint(1.5f / 127.0f * 127.0f)));
    const std::vector<float> zero(QK8_0, 0.0f);
    quantize_act_row_q8_0(zero.data(), &b, QK8_0);
    EXPECT_EQ(b.d, 0);
    for (const int8_t q : b.qs) EXPECT_EQ(q, 0);
}

TEST(Q8_KQuantize, PositiveMaxGivesNegativeScaleAndRoundsHalfToEven) {
    std::vector<float> x(QK_K, 0.0f);
    x[0] = 127.0f;   // the max: iscale = -1, q = -127, d = -1
    x[1] = 2.5f;     // -2.5 -> -2 (half to even; half away would give -3)
    x[2] = 3.5f;     // -3.5 -> -4
    x[3] = -0.5f;    // 0.5  -> 0
    x[4] = -1.5f;    // 1.5  -> 2
    x[5] = -127.0f;  // same |x| as the max but later: max stays +127; -> 127
    x[16] = 10.0f;   // group 1: -10
    x[255] = 0.6f;   // group 15: -0.6 -> -1
    BlockQ8K b;
    std::memset(&b, 0x5a, sizeof(b));
    quantize_row_q8_k(x.data(), &b, QK_K);
    EXPECT_EQ(b.d, -1.0f);
    const int8_t want[6] = {-127, -2, -4, 0, 2, 127};
    for (int j = 0; j < 6; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
    EXPECT_EQ(b.qs[16], -10);
    EXPECT_EQ(b.qs[255], -1);
    EXPECT_EQ(b.bsums[0], -127 - 2 - 4 + 0 + 2 + 127);
    EXPECT_EQ(b.bsums[1], -10);
    for (int g = 2; g < 15; ++g) EXPECT_EQ(b.bsums[g], 0) << g;
    EXPECT_EQ(b.bsums[15], -1);
}

TEST(Q8_KQuantize, NegativeMaxGivesPositiveScale) {
    std::vector<float> x(QK_K, 0.0f);
    x[0] = 3.0f;     // 1.5  -> 2
    x[1] = 5.0f;     // 2.5  -> 2 (half to even)
    x[2] = -1.0f;    // -0.5 -> 0
    x[3] = -254.0f;  // the max: iscale = 0.5, q = -127, d = 2
    x[4] = 254.0f;   // -> 127
    BlockQ8K b;
    quantize_row_q8_k(x.data(), &b, QK_K);
    EXPECT_EQ(b.d, 2.0f);
    const int8_t want[5] = {2, 2, 0, -127, 127};
    for (int j = 0; j < 5; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
    EXPECT_EQ(b.bsums[0], 2 + 2 + 0 - 127 + 127);
}

TEST(Q8_KQuantize, FirstOfEqualMagnitudesIsTheMax) {
    std::vector<float> x(QK_K, 0.0f);
    x[7] = -5.0f;
    x[9] = 5.0f;
    BlockQ8K b;
    quantize_row_q8_k(x.data(), &b, QK_K);
    EXPECT_EQ(b.qs[7], -127);
    EXPECT_EQ(b.qs[9], 127);
    EXPECT_GT(b.d, 0.0f);
}

TEST(Q8_KQuantize, AllZeroBlock) {
    std::vector<float> x(2 * QK_K, 0.0f);
    x[QK_K + 1] = 1.0f;  // the second block is not zero
    BlockQ8K b[2];
    std::memset(b, 0x5a, sizeof(b));
    quantize_row_q8_k(x.data(), b, 2 * QK_K);
    EXPECT_EQ(b[0].d, 0.0f);
    for (const int8_t q : b[0].qs) EXPECT_EQ(q, 0);
    for (const int16_t s : b[0].bsums) EXPECT_EQ(s, 0);
    EXPECT_EQ(b[1].qs[1], -127);
    EXPECT_EQ(b[1].d, 1.0f / (-127.0f / 1.0f));
}

}  // namespace
}  // namespace ferry::quant
