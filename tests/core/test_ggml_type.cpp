#include <gtest/gtest.h>

#include "core/ggml_type.h"

namespace ferry {
namespace {

TEST(GgmlType, GeometryAndNames) {
    EXPECT_EQ(type_info(GgmlType::Q4_K).type_size, 144u);
    EXPECT_EQ(type_info(GgmlType::Q4_K).block_size, 256u);
    EXPECT_EQ(type_info(GgmlType::MXFP4).type_size, 17u);
    EXPECT_FALSE(type_info(4).has_value());   // Q4_2, removed
    EXPECT_FALSE(type_info(31).has_value());  // Q4_0_4_4, removed
    EXPECT_FALSE(type_info(1000).has_value());
    EXPECT_EQ(type_from_name("q8_0"), GgmlType::Q8_0);
    EXPECT_EQ(type_from_name("bf16"), GgmlType::BF16);
    EXPECT_FALSE(type_from_name("q8").has_value());
    EXPECT_EQ(row_size(GgmlType::Q8_0, 64), 68u);
    EXPECT_FALSE(row_size(GgmlType::Q8_0, 65).has_value());
}

}  // namespace
}  // namespace ferry
