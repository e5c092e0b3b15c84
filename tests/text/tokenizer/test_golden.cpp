// llama.cpp's tokenizer goldens (tests/data/tokenizer/golden, copied from
// ../shared/golden/tokenizer): 46 strings per vocabulary with ids from Hugging Face, and the
// llama.cpp-generated special-token / BOS cases in three modes.
#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry::text {
namespace {

using namespace testing;

const std::string kGolden = kDataDir + "golden/";

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesUpstreamIds) {
    const std::string base = kGolden + "ggml-vocab-" + GetParam() + ".gguf";
    auto vocab = load_vocab(base);
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    std::string inp, out;
    ASSERT_TRUE(read_file(base + ".inp", inp));
    ASSERT_TRUE(read_file(base + ".out", out));
    const auto texts = split_inp(inp);
    const auto expected = parse_out(out);
    ASSERT_EQ(texts.size(), expected.size());
    ASSERT_EQ(texts.size(), 46u);
    int failures = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        auto ids = vocab->tokenize(texts[i], false, false);
        ASSERT_TRUE(ids.ok()) << ids.error().message;
        EXPECT_EQ(ids_to_string(*ids), ids_to_string(expected[i])) << "test " << i << ": '" << texts[i] << "'";
        failures += *ids != expected[i];
    }
    EXPECT_EQ(failures, 0);
}

TEST_P(Golden, SpecialTokensAndBos) {
    const std::string base = kGolden + "llamacpp-special/ggml-vocab-" + GetParam() + ".special";
    auto vocab = load_vocab(kGolden + "ggml-vocab-" + GetParam() + ".gguf");
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    std::string inp;
    ASSERT_TRUE(read_file(base + ".inp", inp));
    const auto texts = split_inp(inp);
    ASSERT_GE(texts.size(), 6u);
    struct Mode {
        bool add_special, parse_special;
        const char* suffix;
    };
    for (const Mode m : {Mode{false, false, ".add_special=0.parse_special=0.out"},
                         Mode{false, true, ".add_special=0.parse_special=1.out"},
                         Mode{true, true, ".add_special=1.parse_special=1.out"}}) {
        std::string out;
        ASSERT_TRUE(read_file(base + m.suffix, out));
        const auto expected = parse_out(out);
        ASSERT_EQ(expected.size(), texts.size()) << m.suffix;
        for (size_t i = 0; i < texts.size(); ++i) {
            auto ids = vocab->tokenize(texts[i], m.add_special, m.parse_special);
            ASSERT_TRUE(ids.ok()) << ids.error().message;
            EXPECT_EQ(ids_to_string(*ids), ids_to_string(expected[i]))
                << m.suffix << " test " << i << ": '" << texts[i] << "'";
        }
    }
}

// Detokenizing what we tokenized gives the text back wherever the vocabulary can represent it
// (byte-level BPE always can; SPM loses nothing with byte fallback; WPM normalizes, so skip it).
TEST_P(Golden, RoundTrips) {
    const std::string base = kGolden + "ggml-vocab-" + GetParam() + ".gguf";
    auto vocab = load_vocab(base);
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    if (vocab->type() == VocabType::Wpm) GTEST_SKIP() << "WordPiece normalizes text; no round trip";
    std::string inp;
    ASSERT_TRUE(read_file(base + ".inp", inp));
    for (const std::string& text : split_inp(inp)) {
        auto ids = vocab->tokenize(text, false, false);
        ASSERT_TRUE(ids.ok());
        auto back = vocab->detokenize(*ids, true);
        ASSERT_TRUE(back.ok()) << back.error().message;
        // SPM drops the dummy-prefix space again; a text that started with a space keeps it.
        EXPECT_EQ(*back, text);
    }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, Golden,
                         ::testing::Values("bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "llama-spm",
                                           "mpt", "phi-3", "refact", "starcoder"),
                         [](const auto& info) {
                             std::string n = info.param;
                             for (char& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

}  // namespace
}  // namespace ferry::text
