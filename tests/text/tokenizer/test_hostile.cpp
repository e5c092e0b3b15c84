// Hostile and broken vocabularies and inputs: every one is an error, never a crash.
#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "test_util.h"

namespace ferry::text {
namespace {

using gguf::Value;
using gguf::ValueType;

// A tiny byte-level BPE vocab: the bytes a, b, c, their merges and a control token.
struct Spec {
    std::string model = "gpt2";
    std::string pre = "gpt-2";
    std::vector<std::string> tokens = {"a", "b", "c", "ab", "abc", "bc", "<|end|>", "Ġ"};
    std::vector<int32_t> types = {1, 1, 1, 1, 1, 1, 3, 1};
    std::vector<std::string> merges = {"a b", "ab c", "b c"};
    std::vector<float> scores;
    std::vector<std::pair<std::string, Value>> extra;
    bool with_merges = true;
    bool with_types = true;
};

Result<Vocab> build(const Spec& s) {
    gguf::Writer w;
    if (!s.model.empty()) FERRY_TRY(w.add("tokenizer.ggml.model", Value::string(s.model)));
    if (!s.pre.empty()) FERRY_TRY(w.add("tokenizer.ggml.pre", Value::string(s.pre)));
    FERRY_TRY(w.add("tokenizer.ggml.tokens", Value::string_array(s.tokens)));
    if (s.with_types) FERRY_TRY(w.add("tokenizer.ggml.token_type", Value::numeric_array(ValueType::I32, s.types)));
    if (s.with_merges) FERRY_TRY(w.add("tokenizer.ggml.merges", Value::string_array(s.merges)));
    if (!s.scores.empty()) FERRY_TRY(w.add("tokenizer.ggml.scores", Value::numeric_array(ValueType::F32, s.scores)));
    for (const auto& [k, v] : s.extra) FERRY_TRY(w.add(k, v));
    const std::vector<uint8_t> bytes = w.to_bytes();
    auto file = gguf::File::parse(FileData::from_bytes(bytes.data(), bytes.size()));
    if (!file.ok()) return file.error();
    return Vocab::from_gguf(*file);
}

void expect_error(const Spec& s, const std::string& fragment) {
    auto v = build(s);
    ASSERT_FALSE(v.ok()) << "expected an error mentioning '" << fragment << "'";
    EXPECT_NE(v.error().message.find(fragment), std::string::npos) << v.error().message;
}

TEST(TinyBpe, MergesByRank) {
    auto v = build(Spec{});
    ASSERT_TRUE(v.ok()) << v.error().message;
    auto ids = v->tokenize("abc", false, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, std::vector<int32_t>({4}));  // a b -> ab, ab c -> abc
    ids = v->tokenize("abc<|end|>bc", false, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, std::vector<int32_t>({4, 6, 5}));
    ids = v->tokenize("abc<|end|>", false, false);  // control text stays text: '<' etc. unknown -> dropped
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, std::vector<int32_t>({4}));
}

TEST(TinyBpe, LeftmostMergeWinsTies) {
    Spec s;
    s.tokens = {"a", "aa"};
    s.types = {1, 1};
    s.merges = {"a a"};
    auto v = build(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    auto ids = v->tokenize("aaa", false, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, std::vector<int32_t>({1, 0}));  // (aa)(a), not (a)(aa)
}

TEST(TinySpm, MergesByScoreAndFallsBackToBytes) {
    Spec s;
    s.model = "llama";
    s.pre = "";
    s.with_merges = false;
    s.tokens = {"<unk>",
                "<s>",
                "</s>",
                "\xe2\x96\x81",
                "a",
                "b",
                "\xe2\x96\x81"
                "a",
                "ab",
                "<0x63>",
                "<0xC3>",
                "<0xA9>"};
    s.types = {2, 3, 3, 1, 1, 1, 1, 1, 6, 6, 6};
    s.scores = {0, 0, 0, -1, -2, -2, -3, -1, 0, 0, 0};
    auto v = build(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    // "▁ab": pairs ▁a (-3) and ab (-1): ab wins, then ▁+ab is no token.
    auto ids = v->tokenize("ab", false, false);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, std::vector<int32_t>({3, 7}));
    ids = v->tokenize("c\xc3\xa9", true, false);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, std::vector<int32_t>({1, 3, 8, 9, 10}));
    auto text = v->detokenize(*ids, false);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, " c\xc3\xa9");  // the first piece is BOS, so the dummy space stays (llama.cpp)
    // 'd' has neither a token nor a byte token.
    auto bad = v->tokenize("d", false, false);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("0x64"), std::string::npos) << bad.error().message;
}

TEST(HostileVocab, MissingOrWrongKeys) {
    Spec s;
    s.model = "";
    expect_error(s, "tokenizer.ggml.model");
    s = Spec{};
    s.model = "sentencepiece-v9";
    expect_error(s, "unsupported tokenizer model");
    s = Spec{};
    s.pre = "no-such-pre";
    expect_error(s, "unsupported pre-tokenizer");
    s = Spec{};
    s.with_merges = false;
    expect_error(s, "merges");
    s = Spec{};
    s.tokens.clear();
    s.types.clear();
    expect_error(s, "empty");
    s = Spec{};
    s.extra.emplace_back("tokenizer.ggml.add_bos_token", Value::string("yes"));
    expect_error(s, "add_bos_token");
}

TEST(HostileVocab, WrongTypes) {
    Spec s;
    s.extra.emplace_back("tokenizer.ggml.scores", Value::string_array({"x"}));
    expect_error(s, "scores");
    s = Spec{};
    s.with_types = false;
    s.extra.emplace_back("tokenizer.ggml.token_type", Value::numeric_array(ValueType::F32, std::vector<float>{1.5f}));
    expect_error(s, "token_type");
    gguf::Writer w;
    ASSERT_TRUE(w.add("tokenizer.ggml.model", Value::string("gpt2")).ok());
    ASSERT_TRUE(w.add("tokenizer.ggml.tokens", Value::u32(7)).ok());
    const auto bytes = w.to_bytes();
    auto file = gguf::File::parse(FileData::from_bytes(bytes.data(), bytes.size()));
    ASSERT_TRUE(file.ok());
    auto v = Vocab::from_gguf(*file);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("tokenizer.ggml.tokens"), std::string::npos);
}

TEST(HostileVocab, ShortArrays) {
    Spec s;
    s.types.pop_back();
    expect_error(s, "token_type");
    s = Spec{};
    s.scores = {1.0f};
    expect_error(s, "scores");
}

TEST(HostileVocab, BadTokenTypes) {
    Spec s;
    s.types[2] = 99;
    expect_error(s, "invalid type");
    s = Spec{};
    s.types[2] = 6;  // BYTE, but "c" is not <0xXX>
    expect_error(s, "byte token");
    s = Spec{};
    s.tokens[2] = "<0xG1>";
    s.types[2] = 6;
    expect_error(s, "byte token");
}

TEST(HostileVocab, BadMerges) {
    Spec s;
    s.merges.push_back("a zz");
    expect_error(s, "merge 3");
    s = Spec{};
    s.merges.push_back("abc");
    expect_error(s, "merge 3");
    s = Spec{};
    s.merges.push_back("c a");  // both parts known, but "ca" is not a token
    expect_error(s, "merge 3");
}

TEST(HostileVocab, SpecialIdsOutOfRange) {
    for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                            "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.cls_token_id"}) {
        Spec s;
        s.extra.emplace_back(key, Value::u32(8));
        expect_error(s, "out of range");
        s = Spec{};
        s.extra.emplace_back(key, Value::i32(-1));
        expect_error(s, key);
    }
}

TEST(HostileVocab, DefaultIdsOutOfRangeAreDropped) {
    // gpt2 defaults BOS/EOS to 11 (llama.cpp); this vocab has 8 tokens, so there is none.
    Spec s;
    s.extra.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(true));
    auto v = build(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->bos(), kNoToken);
    auto ids = v->tokenize("a", true, false);
    ASSERT_FALSE(ids.ok());
    EXPECT_NE(ids.error().message.find("BOS"), std::string::npos);
}

TEST(HostileInput, InvalidUtf8AndIds) {
    auto v = build(Spec{});
    ASSERT_TRUE(v.ok());
    for (const char* bad : {"ab\xff", "\xc3", "a\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
        auto ids = v->tokenize(bad, false, false);
        ASSERT_FALSE(ids.ok()) << bad;
        EXPECT_NE(ids.error().message.find("UTF-8"), std::string::npos);
    }
    EXPECT_FALSE(v->token_to_piece(-1).ok());
    EXPECT_FALSE(v->token_to_piece(8).ok());
    EXPECT_FALSE(v->token_to_piece(INT32_MAX).ok());
    EXPECT_FALSE(v->token_text(8).ok());
    EXPECT_FALSE(v->token_type(-5).ok());
    const std::vector<int32_t> ids = {0, 1, 1000};
    EXPECT_FALSE(v->detokenize(ids, true).ok());
    StreamDecoder dec(*v);
    EXPECT_FALSE(dec.push(-3).ok());
}

TEST(HostileVocab, SpecialTokenSplittingAUtf8Sequence) {
    // A user-defined token that is half of "é": splitting it out leaves invalid fragments, which
    // must still be handled without reading out of bounds.
    Spec s;
    s.tokens.push_back("\xc3");
    s.types.push_back(4);
    auto v = build(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    auto ids = v->tokenize(
        "a\xc3\xa9"
        "b",
        false, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->size(), 3u);  // a, the user token, b (the lone continuation byte has no token)
}

TEST(HostileVocab, EmptyTokenTextIsRenamed) {
    Spec s;
    s.tokens[7] = "";
    auto v = build(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(*v->token_text(7), "[EMPTY_7]");
}

}  // namespace
}  // namespace ferry::text
