// Pre-tokenizer split rules, checked piece by piece on inputs where the families differ.
#include <gtest/gtest.h>

#include <chrono>

#include "text/tokenizer/pretokenize.h"

namespace ferry::text::tok {
namespace {

std::vector<std::string> split(PreType type, const std::string& text) {
    const CpText t = decode_cps(text);
    std::vector<std::string> out;
    for (const Span s : pre_split(type, t))
        out.push_back(text.substr(t.offsets[s.begin], t.offsets[s.end] - t.offsets[s.begin]));
    return out;
}

using V = std::vector<std::string>;

TEST(PreTokenize, Gpt2) {
    EXPECT_EQ(split(PreType::Gpt2, "Hello world's  12x\n\n a"),
              V({"Hello", " world", "'s", " ", " 12", "x", "\n\n", " a"}));
    EXPECT_EQ(split(PreType::Gpt2, "I'M  !!?"), V({"I", "'", "M", " ", " !!?"}));
    EXPECT_EQ(split(PreType::Gpt2, "\tb"), V({"\t", "b"}));  // unmatched whitespace stays a piece
}

TEST(PreTokenize, Llama3AndQwen2) {
    EXPECT_EQ(split(PreType::Llama3, "I'M 1234567 ok!!\n\n  x"),
              V({"I", "'M", " ", "123", "456", "7", " ok", "!!\n\n", " ", " x"}));
    EXPECT_EQ(split(PreType::Qwen2, "a 123"), V({"a", " ", "1", "2", "3"}));
    EXPECT_EQ(split(PreType::Llama3, "\"Hello\" \n\n  \nx"), V({"\"Hello", "\"", " \n\n  \n", "x"}));
}

TEST(PreTokenize, Qwen35MarksJoinLetters) {
    EXPECT_EQ(split(PreType::Qwen2, "re\u0301sume\u0301"), V({"re", "\u0301sume", "\u0301"}));
    EXPECT_EQ(split(PreType::Qwen35, "re\u0301sume\u0301"), V({"re\u0301sume\u0301"}));
    EXPECT_EQ(split(PreType::Qwen35, " Vi\u1ebft Nam"), V({" Vi\u1ebft", " Nam"}));
}

// The regex-backtracking stress input of llama.cpp's qwen35 tests: must stay linear.
TEST(PreTokenize, Qwen35LongMarkRunIsLinear) {
    std::string s;
    for (int i = 0; i < 200000; ++i) s += "a\u0300";
    s += "!";
    const auto t0 = std::chrono::steady_clock::now();
    const V pieces = split(PreType::Qwen35, s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[1], "!");
    EXPECT_LT(secs, 5.0);  // a guard against quadratic blow-up, not a benchmark
}

TEST(PreTokenize, Gpt4o) {
    EXPECT_EQ(split(PreType::Gpt4o, "HelloWorld ABCdef I'M x/y\n/"),
              V({"Hello", "World", " ABCdef", " I'M", " x", "/y", "\n", "/"}));
    EXPECT_EQ(split(PreType::Gpt4o, "12345 don't"), V({"123", "45", " don't"}));
}

TEST(PreTokenize, Starcoder) { EXPECT_EQ(split(PreType::Starcoder, "x 123"), V({"x", " ", "1", "2", "3"})); }

TEST(PreTokenize, DeepseekLlmTrailingSpace) {
    EXPECT_EQ(split(PreType::DeepseekLlm, "ab   "), V({"ab", "   "}));
    const std::string spaces(100000, ' ');
    EXPECT_EQ(split(PreType::DeepseekLlm, spaces + "x").size(), 2u);
}

TEST(PreTokenize, NameTable) {
    PreType t;
    EXPECT_TRUE(pre_type_from_name("smollm", t));
    EXPECT_EQ(t, PreType::Starcoder);
    EXPECT_TRUE(pre_type_from_name("llama-bpe", t));
    EXPECT_EQ(t, PreType::Llama3);
    EXPECT_TRUE(pre_type_from_name("gpt-4o", t));
    EXPECT_EQ(t, PreType::Gpt4o);
    EXPECT_FALSE(pre_type_from_name("nonsense", t));
}

}  // namespace
}  // namespace ferry::text::tok
