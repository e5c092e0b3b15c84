#include <gtest/gtest.h>

#include "text/utf8.h"

namespace ferry::text {
namespace {

TEST(Utf8, DecodesAndRejects) {
    const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\xa6\x99";  // a é € 🦙
    size_t pos = 0;
    EXPECT_EQ(utf8_decode(s, pos), U'a');
    EXPECT_EQ(utf8_decode(s, pos), U'\u00e9');
    EXPECT_EQ(utf8_decode(s, pos), U'\u20ac');
    EXPECT_EQ(utf8_decode(s, pos), U'\U0001f999');
    EXPECT_EQ(pos, s.size());
    for (const char* bad : {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xff", "\xc3"}) {
        size_t p = 0;
        EXPECT_FALSE(utf8_decode(bad, p).has_value()) << bad;
        EXPECT_EQ(p, 0u);
        EXPECT_FALSE(utf8_validate(bad).ok());
    }
    EXPECT_TRUE(utf8_validate(s).ok());
    EXPECT_NE(utf8_validate("ok\xffno").error().message.find("byte 2"), std::string::npos);
}

TEST(Utf8, EncodeRoundTrips) {
    for (char32_t cp : {U'\0', U'\x7f', U'\x80', U'\u07ff', U'\u0800', U'\uffff', U'\U00010000', U'\U0010ffff'}) {
        std::string out;
        utf8_append(out, cp);
        size_t pos = 0;
        EXPECT_EQ(utf8_decode(out, pos), cp);
        EXPECT_EQ(pos, out.size());
    }
}

TEST(Utf8, CompletePrefixHoldsBackOnlyUnfinishedSequences) {
    EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
    EXPECT_EQ(utf8_complete_prefix("ab\xf0\x9f\xa6"), 2u);  // 🦙 missing its last byte
    EXPECT_EQ(utf8_complete_prefix("ab\xf0\x9f"), 2u);
    EXPECT_EQ(utf8_complete_prefix("ab\xf0"), 2u);
    EXPECT_EQ(utf8_complete_prefix("ab\xf0\x9f\xa6\x99"), 6u);
    EXPECT_EQ(utf8_complete_prefix("ab\xc3"), 2u);
    EXPECT_EQ(utf8_complete_prefix("ab\xff"), 3u);      // invalid byte: never completes
    EXPECT_EQ(utf8_complete_prefix("ab\xe0\x80"), 4u);  // overlong start: can never be valid
    EXPECT_EQ(utf8_complete_prefix(""), 0u);
}

}  // namespace
}  // namespace ferry::text
