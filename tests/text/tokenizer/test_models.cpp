// Real models' vocabularies against llama.cpp (ids written by scripts/tokenizer_expected.py with
// llama-cpp-python; version in tests/data/tokenizer/expected/VERSION):
//   smollm2-135m  gpt2 BPE, `smollm` pre-tokenizer (vocab-only extract in tests/data)
//   gemma3-270m   SPM without dummy prefix, 262K tokens (tests/data/tokenizer/gemma3-270m.vocab.gguf,
//                 made by scripts/tokenizer_get_gemma.sh)
// Each is checked on hard strings in three modes and on the whole WikiText-2 test file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_util.h"

namespace ferry::text {
namespace {

using namespace testing;

struct Model {
    const char* name;
    const char* vocab_path;
    bool optional;  // fetched by a script, not in the repo
};

const Model kModels[] = {
    {"smollm2-135m", "tests/data/tokenizer/smollm2-135m.vocab.gguf", false},
    {"gemma3-270m", "tests/data/tokenizer/gemma3-270m.vocab.gguf", true},
};

void PrintTo(const Model& m, std::ostream* os) { *os << m.name; }

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xCBF29CE484222325ull) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

std::string hex64(uint64_t x) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
    return buf;
}

class RealModel : public ::testing::TestWithParam<Model> {
protected:
    void SetUp() override {
        if (GetParam().optional && !std::filesystem::exists(GetParam().vocab_path)) {
            GTEST_SKIP() << GetParam().vocab_path << " is absent; run scripts/tokenizer_get_gemma.sh to fetch it";
        }
        auto v = load_vocab(GetParam().vocab_path);
        ASSERT_TRUE(v.ok()) << v.error().message;
        vocab_ = std::make_unique<Vocab>(std::move(*v));
    }
    std::unique_ptr<Vocab> vocab_;
};

TEST_P(RealModel, HardStringsMatchLlamaCpp) {
    std::string inp;
    ASSERT_TRUE(read_file(kDataDir + "hard_strings.inp", inp));
    const auto texts = split_inp(inp);
    struct Mode {
        bool add_special, parse_special;
        const char* suffix;
    };
    for (const Mode m : {Mode{false, false, ".add_special=0.parse_special=0.out"},
                         Mode{false, true, ".add_special=0.parse_special=1.out"},
                         Mode{true, true, ".add_special=1.parse_special=1.out"}}) {
        std::string out;
        const std::string path = kDataDir + "expected/" + GetParam().name + ".hard" + m.suffix;
        ASSERT_TRUE(read_file(path, out)) << path;
        const auto expected = parse_out(out);
        ASSERT_EQ(expected.size(), texts.size()) << path;
        for (size_t i = 0; i < texts.size(); ++i) {
            auto ids = vocab_->tokenize(texts[i], m.add_special, m.parse_special);
            ASSERT_TRUE(ids.ok()) << ids.error().message;
            EXPECT_EQ(ids_to_string(*ids), ids_to_string(expected[i]))
                << m.suffix << " test " << i << ": '" << texts[i] << "'";
        }
    }
}

std::string find_wikitext() {
    if (const char* env = std::getenv("FERRY_WIKITEXT")) return env;
    for (const char* p : {"tests/data/tokenizer/wiki.test.raw", "../shared/data/wikitext-2-raw/wiki.test.raw"})
        if (std::filesystem::exists(p)) return p;
    return "";
}

// The whole file as one string with add_special, as llama-perplexity tokenizes it.
TEST_P(RealModel, WikiTextMatchesLlamaCpp) {
    const std::string path = find_wikitext();
    if (path.empty()) GTEST_SKIP() << "WikiText-2 wiki.test.raw not found (set FERRY_WIKITEXT)";
    std::string text, digest;
    ASSERT_TRUE(read_file(path, text));
    ASSERT_TRUE(read_file(kDataDir + "expected/" + GetParam().name + ".wikitext.digest", digest));

    std::istringstream in(digest);
    std::string key;
    size_t source_bytes = 0, n_tokens = 0, chunk = 0;
    std::string source_hash, first_line;
    in >> key >> source_bytes >> key >> source_hash >> key >> n_tokens >> key >> chunk >> key;
    std::getline(in, first_line);
    std::vector<int32_t> first = parse_out(first_line)[0];
    std::vector<std::string> chunks;
    for (std::string h; in >> h;) chunks.push_back(h);
    ASSERT_EQ(text.size(), source_bytes) << path << " is not the file the ids were made from";
    ASSERT_EQ(hex64(fnv1a64(text.data(), text.size())), source_hash)
        << path << " is not the file the ids were made from";

    auto ids = vocab_->tokenize(text, true, false);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    ASSERT_GE(ids->size(), first.size());
    EXPECT_EQ(ids_to_string(std::vector<int32_t>(ids->begin(), ids->begin() + ptrdiff_t(first.size()))),
              ids_to_string(first));
    EXPECT_EQ(ids->size(), n_tokens);
    ASSERT_EQ(chunks.size(), (n_tokens + chunk - 1) / chunk);
    for (size_t c = 0; c < chunks.size(); ++c) {
        const size_t b = c * chunk;
        const size_t e = std::min(b + chunk, ids->size());
        if (b >= e) {
            ADD_FAILURE() << "missing chunk " << c;
            break;
        }
        const std::string h = hex64(fnv1a64(ids->data() + b, (e - b) * sizeof(int32_t)));
        if (h != chunks[c]) {
            auto piece = vocab_->detokenize(std::span(ids->data() + b, std::min<size_t>(e - b, 40)), true);
            ADD_FAILURE() << "token chunk " << c << " (ids " << b << ".." << e
                          << ") differs from llama.cpp; it starts with '" << (piece.ok() ? *piece : "?") << "'";
            break;
        }
    }
}

TEST_P(RealModel, DetokenizeRoundTripsWikiTextStart) {
    const std::string path = find_wikitext();
    if (path.empty()) GTEST_SKIP() << "WikiText-2 wiki.test.raw not found";
    std::string text;
    ASSERT_TRUE(read_file(path, text));
    text.resize(20000);
    text.resize(utf8_cut(text));
    auto ids = vocab_->tokenize(text, false, false);
    ASSERT_TRUE(ids.ok());
    auto back = vocab_->detokenize(*ids, true);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, text);
}

INSTANTIATE_TEST_SUITE_P(Models, RealModel, ::testing::ValuesIn(kModels), [](const auto& info) {
    std::string n = info.param.name;
    for (char& c : n)
        if (c == '-') c = '_';
    return n;
});

TEST(SmolLM2, SpecialIds) {
    auto v = load_vocab("tests/data/tokenizer/smollm2-135m.vocab.gguf");
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->n_tokens(), 49152);
    EXPECT_EQ(v->type(), VocabType::Bpe);
    EXPECT_EQ(v->pre_name(), "smollm");
    EXPECT_EQ(v->bos(), 1);
    EXPECT_EQ(v->eos(), 2);
    EXPECT_FALSE(v->add_bos());
    EXPECT_TRUE(v->is_eog(2));
    EXPECT_FALSE(v->is_eog(1));
    EXPECT_EQ(*v->token_text(1), "<|im_start|>");
    EXPECT_TRUE(v->is_control(1));
    auto ids = v->tokenize("<|im_start|>user", false, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->front(), 1);
    EXPECT_EQ(*v->token_to_piece(1, true), "<|im_start|>");
    EXPECT_EQ(*v->token_to_piece(1, false), "");
}

}  // namespace
}  // namespace ferry::text
