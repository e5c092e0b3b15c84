// Pieces and streaming detokenization.
#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry::text {
namespace {

using namespace testing;

TEST(Decode, BpePiecesAreRawBytes) {
    auto v = load_vocab(kDataDir + "golden/ggml-vocab-gpt-2.gguf");
    ASSERT_TRUE(v.ok());
    auto ids = v->tokenize(" this is 🦙.cpp\n", false, false);
    ASSERT_TRUE(ids.ok());
    std::string all;
    for (int32_t id : *ids) all += *v->token_to_piece(id);
    EXPECT_EQ(all, " this is 🦙.cpp\n");
    EXPECT_EQ(*v->token_to_piece(220), " ");  // "Ġ"
}

TEST(Decode, SpmPieces) {
    auto v = load_vocab(kDataDir + "golden/ggml-vocab-llama-spm.gguf");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v->token_to_piece(15043), " Hello");
    EXPECT_EQ(*v->token_to_piece(13), "\n");  // <0x0A>
    EXPECT_EQ(*v->token_to_piece(1, true), "<s>");
    EXPECT_EQ(*v->token_to_piece(1, false), "");
    const std::vector<int32_t> ids = {1, 15043, 3186};
    // As llama.cpp: only the first piece loses its dummy-prefix space, and here that is BOS.
    EXPECT_EQ(*v->detokenize(ids, false), " Hello world");
    EXPECT_EQ(*v->detokenize(std::span(ids).subspan(1), false), "Hello world");
    EXPECT_EQ(*v->detokenize(ids, true), "<s> Hello world");
}

TEST(Decode, StreamNeverSplitsUtf8) {
    auto v = load_vocab(kDataDir + "golden/ggml-vocab-llama-spm.gguf");
    ASSERT_TRUE(v.ok());
    const std::string text = "A🦙é€中";
    auto ids = v->tokenize(text, false, false);
    ASSERT_TRUE(ids.ok());
    StreamDecoder dec(*v);
    std::string out;
    for (int32_t id : *ids) {
        auto part = dec.push(id);
        ASSERT_TRUE(part.ok());
        EXPECT_TRUE(utf8_validate(*part).ok()) << "emitted half a character";
        out += *part;
    }
    out += dec.flush();
    EXPECT_EQ(out, " " + text);
}

TEST(Decode, StreamFlushesIncompleteTail) {
    auto v = load_vocab(kDataDir + "golden/ggml-vocab-gpt-2.gguf");
    ASSERT_TRUE(v.ok());
    auto ids = v->tokenize("🦙", false, false);  // several byte-level tokens
    ASSERT_TRUE(ids.ok());
    ASSERT_GE(ids->size(), 2u);
    StreamDecoder dec(*v);
    auto first = dec.push((*ids)[0]);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(*first, "");
    EXPECT_FALSE(dec.flush().empty());
}

}  // namespace
}  // namespace ferry::text
