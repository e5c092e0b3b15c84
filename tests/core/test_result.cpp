#include <gtest/gtest.h>

#include "core/checked_math.h"
#include "core/result.h"

namespace ferry {
namespace {

Result<int> parse_positive(int x) {
    if (x <= 0) return make_error("not positive: " + std::to_string(x));
    return x;
}

Result<int> doubled(int x) {
    int v = 0;
    FERRY_ASSIGN(v, parse_positive(x));
    return 2 * v;
}

Status check_both(int a, int b) {
    FERRY_TRY(parse_positive(a));
    FERRY_TRY(parse_positive(b));
    return {};
}

TEST(Result, ValueAndErrorPropagate) {
    EXPECT_EQ(doubled(4).value(), 8);
    auto r = doubled(-1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "not positive: -1");
    EXPECT_TRUE(check_both(1, 2).ok());
    EXPECT_EQ(check_both(1, 0).error().message, "not positive: 0");
}

TEST(CheckedMath, DetectsOverflow) {
    uint64_t out = 0;
    EXPECT_TRUE(checked_mul(1ull << 31, 1ull << 31, &out));
    EXPECT_EQ(out, 1ull << 62);
    EXPECT_FALSE(checked_mul(1ull << 32, 1ull << 32, &out));
    EXPECT_FALSE(checked_add(~0ull, 1, &out));
    EXPECT_TRUE(checked_align_up(33, 32, &out));
    EXPECT_EQ(out, 64u);
    EXPECT_FALSE(checked_align_up(~0ull - 3, 32, &out));
    EXPECT_TRUE(is_power_of_two(32));
    EXPECT_FALSE(is_power_of_two(0));
    EXPECT_FALSE(is_power_of_two(48));
}

}  // namespace
}  // namespace ferry
