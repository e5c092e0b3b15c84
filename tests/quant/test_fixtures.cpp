// Bit-exact agreement with gguf-py (an implementation independent of ours) on fixtures written by
// scripts/gen_quant_fixtures.py: dequantization of random blocks for every format gguf-py knows,
// and quantization for the formats whose reference quantizer we reproduce exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/q8_1.h"
#include "quant/q8_k.h"
#include "quant_test_util.h"

namespace ferry::quant::testing {
namespace {

std::string param_name(const ::testing::TestParamInfo<GgmlType>& info) { return lower_name(info.param); }

class DequantFixture : public ::testing::TestWithParam<GgmlType> {};

TEST_P(DequantFixture, BitExactWithGgufPy) {
    const GgmlType type = GetParam();
    const FormatTraits* f = find_format(type);
    ASSERT_NE(f, nullptr);
    Fixture fx;
    ASSERT_TRUE(load_fixture(lower_name(type) + ".deq.bin", true, &fx));
    ASSERT_EQ(fx.type, uint32_t(type));
    ASSERT_EQ(fx.block_size, uint32_t(f->block_size));
    ASSERT_EQ(fx.type_size, uint32_t(f->type_size));
    const std::vector<float> y = dequantized(*f, fx.raw, fx.n());
    int mismatches = 0;
    for (int64_t i = 0; i < fx.n(); ++i) {
        if (bits_of(y[size_t(i)]) != bits_of(fx.floats[size_t(i)]) && ++mismatches <= 5) {
            ADD_FAILURE() << type_name(type) << " element " << i << " (block " << i / f->block_size << "): got "
                          << y[size_t(i)] << " want " << fx.floats[size_t(i)];
        }
    }
    EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Quant, DequantFixture,
                         ::testing::Values(GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                                           GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                           GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4),
                         param_name);

class QuantFixture : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantFixture, BitExactWithGgufPy) {
    const GgmlType type = GetParam();
    const FormatTraits* f = find_format(type);
    ASSERT_NE(f, nullptr);
    Fixture fx;
    ASSERT_TRUE(load_fixture(lower_name(type) + ".quant.bin", false, &fx));
    ASSERT_EQ(fx.type, uint32_t(type));
    ASSERT_EQ(fx.type_size, uint32_t(f->type_size));
    const std::vector<uint8_t> q = quantized(*f, fx.floats);
    int mismatches = 0;
    for (uint32_t b = 0; b < fx.n_blocks; ++b) {
        const size_t at = size_t(b) * fx.type_size;
        if (std::memcmp(q.data() + at, fx.raw.data() + at, fx.type_size) != 0 && ++mismatches <= 5) {
            ADD_FAILURE() << type_name(type) << " block " << b << " differs (input element " << b * fx.block_size
                          << " = " << fx.floats[b * fx.block_size] << ")";
        }
    }
    EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantFixture,
                         ::testing::Values(GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::MXFP4),
                         param_name);

// gguf-py has no Q8_1 / Q8_K; their dequantization is the one-line formula y = d * q, checked here
// on random blocks against that formula written out independently of the library.
TEST(DequantFormula, Q8_1) {
    std::mt19937 rng(7);
    std::vector<BlockQ8_1> blocks(16);
    for (BlockQ8_1& b : blocks) {
        b.d = uint16_t(rng() % 0x7800);  // finite halves, including subnormals
        b.s = uint16_t(rng());
        for (int8_t& q : b.qs) q = int8_t(rng());
    }
    std::vector<float> y(blocks.size() * QK8_1);
    dequantize_row_q8_1(blocks.data(), y.data(), int64_t(y.size()));
    for (size_t i = 0; i < y.size(); ++i) {
        const BlockQ8_1& b = blocks[i / QK8_1];
        const double want = double(fp16_to_fp32(b.d)) * double(b.qs[i % QK8_1]);
        EXPECT_EQ(y[i], float(want)) << i;  // one rounding: float(d) * q is exact in double
    }
}

TEST(DequantFormula, Q8_K) {
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
    std::vector<BlockQ8K> blocks(4);
    for (BlockQ8K& b : blocks) {
        b.d = scale(rng);
        for (int8_t& q : b.qs) q = int8_t(rng());
    }
    std::vector<float> y(blocks.size() * QK_K);
    dequantize_row_q8_k(blocks.data(), y.data(), int64_t(y.size()));
    for (size_t i = 0; i < y.size(); ++i) {
        const BlockQ8K& b = blocks[i / QK_K];
        EXPECT_EQ(y[i], float(double(b.d) * double(b.qs[i % QK_K]))) << i;
    }
}

}  // namespace
}  // namespace ferry::quant::testing
