// The scalar format table: every format is present with the geometry core/ggml_type.h gives, the
// pairing with its activation format is the one ggml uses (F16/BF16 excepted, see f16.h), and types
// without a block format are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "quant/formats.h"
#include "quant_test_util.h"

namespace ferry::quant::testing {
namespace {

struct Pairing {
    GgmlType weight, activation;
    bool has_dot;
};

const Pairing kPairings[] = {
    {GgmlType::F32, GgmlType::F32, true},     {GgmlType::F16, GgmlType::F32, true},
    {GgmlType::BF16, GgmlType::F32, true},    {GgmlType::Q4_0, GgmlType::Q8_0, true},
    {GgmlType::Q4_1, GgmlType::Q8_1, true},   {GgmlType::Q5_0, GgmlType::Q8_0, true},
    {GgmlType::Q5_1, GgmlType::Q8_1, true},   {GgmlType::Q8_0, GgmlType::Q8_0, true},
    {GgmlType::Q8_1, GgmlType::Q8_1, false},  {GgmlType::Q2_K, GgmlType::Q8_K, true},
    {GgmlType::Q3_K, GgmlType::Q8_K, true},   {GgmlType::Q4_K, GgmlType::Q8_K, true},
    {GgmlType::Q5_K, GgmlType::Q8_K, true},   {GgmlType::Q6_K, GgmlType::Q8_K, true},
    {GgmlType::Q8_K, GgmlType::Q8_K, false},  {GgmlType::IQ4_NL, GgmlType::Q8_0, true},
    {GgmlType::IQ4_XS, GgmlType::Q8_K, true}, {GgmlType::MXFP4, GgmlType::Q8_0, true},
};

TEST(FormatTable, EveryFormatWithItsGeometryAndPairing) {
    for (const Pairing& p : kPairings) {
        const FormatTraits* f = find_format(p.weight);
        ASSERT_NE(f, nullptr) << type_name(p.weight);
        EXPECT_EQ(f->type, p.weight);
        const TypeInfo& info = type_info(p.weight);
        EXPECT_EQ(f->block_size, int64_t(info.block_size)) << type_name(p.weight);
        EXPECT_EQ(f->type_size, int64_t(info.type_size)) << type_name(p.weight);
        EXPECT_NE(f->dequantize_row, nullptr);
        EXPECT_NE(f->quantize_row, nullptr);
        EXPECT_EQ(f->vec_dot != nullptr, p.has_dot) << type_name(p.weight);
        EXPECT_EQ(f->vec_dot_type, p.activation) << type_name(p.weight);
        // The activation format's blocks tile the weight's blocks.
        const FormatTraits* a = find_format(p.activation);
        ASSERT_NE(a, nullptr);
        EXPECT_EQ(std::max(f->block_size, a->block_size) % std::min(f->block_size, a->block_size), 0);
    }
}

TEST(FormatTable, HoldsExactlyTheListedFormats) {
    EXPECT_EQ(all_formats().size(), std::size(kPairings));
    std::set<GgmlType> seen;
    for (const FormatTraits& f : all_formats()) EXPECT_TRUE(seen.insert(f.type).second) << type_name(f.type);
    for (const GgmlType t : {GgmlType::IQ2_XXS, GgmlType::IQ3_S, GgmlType::IQ1_M, GgmlType::TQ1_0, GgmlType::I8,
                             GgmlType::I32, GgmlType::F64}) {
        EXPECT_EQ(find_format(t), nullptr) << type_name(t);
    }
}

}  // namespace
}  // namespace ferry::quant::testing
