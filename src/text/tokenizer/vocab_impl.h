// Internal state of a Vocab, shared by the tokenizer algorithms (bpe.cpp, spm.cpp, wpm.cpp,
// special.cpp). Built once by from_gguf and immutable afterwards, so one Vocab may tokenize on
// many threads at once (per-call caches live on the caller's stack).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "text/tokenizer/pretokenize.h"
#include "text/tokenizer/vocab.h"

namespace ferry::text {

// llama.cpp's token attributes that matter for tokenizing: the type plus strip flags.
enum TokenAttr : uint32_t {
    kAttrNormal = 1u << 0,
    kAttrUnknown = 1u << 1,
    kAttrControl = 1u << 2,
    kAttrUserDefined = 1u << 3,
    kAttrUnused = 1u << 4,
    kAttrByte = 1u << 5,
    kAttrLstrip = 1u << 6,  // whitespace before the token is dropped
    kAttrRstrip = 1u << 7,  // whitespace after the token is dropped
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct TokenData {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::Normal;
    uint32_t attr = kAttrNormal;
};

struct BpeMerge {
    int32_t rank;
    int32_t result;
};

// Byte trie over the texts of the tokens split out before the main algorithm.
struct SpecialTrie {
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> next;  // (byte, node), unsorted, usually tiny
        int32_t token = kNoToken;
    };
    std::vector<Node> nodes{1};
    std::array<bool, 256> first{};

    void insert(std::string_view text, int32_t id);
    // Calls f(token, length) for every special token whose text starts at s[pos].
    template <class F>
    void matches_at(std::string_view s, size_t pos, F&& f) const {
        if (!first[uint8_t(s[pos])]) return;
        int32_t node = 0;
        for (size_t i = pos; i < s.size(); ++i) {
            int32_t child = -1;
            for (const auto& [b, n] : nodes[size_t(node)].next)
                if (b == uint8_t(s[i])) child = n;
            if (child < 0) return;
            node = child;
            if (nodes[size_t(node)].token != kNoToken) f(nodes[size_t(node)].token, i + 1 - pos);
        }
    }
};

struct Vocab::Impl {
    VocabType type = VocabType::Bpe;
    std::string model_name;  // tokenizer.ggml.model
    std::string pre_name;
    tok::PreType pre = tok::PreType::Default;

    std::vector<TokenData> tokens;
    TokenMap token_to_id;
    std::unordered_map<uint64_t, BpeMerge> merges;  // key: left id << 32 | right id
    std::array<int32_t, 256> byte_token{};          // token for a raw byte, kNoToken if none
    std::vector<std::string> pieces;                // token_to_piece(id, special=true)
    size_t max_token_len = 0;

    int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken;
    int32_t pad = kNoToken, sep = kNoToken, cls = kNoToken;
    bool add_bos = false, add_eos = false, add_space_prefix = false, ignore_merges = false;
    bool wpm_lowercase = true, wpm_strip_accents = true;
    std::unordered_set<int32_t> eog;

    // CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first (ties: lower id first).
    std::vector<int32_t> special_tokens;
    std::vector<uint32_t> special_rank;  // per token: position in special_tokens, or UINT32_MAX
    SpecialTrie special_trie;

    bool valid(int32_t id) const { return id >= 0 && size_t(id) < tokens.size(); }
    int32_t find(std::string_view text) const {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? kNoToken : it->second;
    }
};

namespace detail {

// One piece of the text after special tokens are split out: raw text or a token.
struct Fragment {
    int32_t token = kNoToken;  // kNoToken: raw text [begin, end)
    size_t begin = 0;
    size_t end = 0;
};

std::vector<Fragment> split_special(const Vocab::Impl& v, std::string_view text, bool parse_special);

// Per-call memo of BPE results, keyed by the word's raw bytes.
using BpeCache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

void bpe_tokenize(const Vocab::Impl& v, std::string_view text, BpeCache& cache, std::vector<int32_t>& out);
Status spm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out);
void wpm_tokenize(const Vocab::Impl& v, std::string_view text, std::vector<int32_t>& out);

// Builds the piece strings (token_to_piece with special=true) for every token.
Status build_pieces(Vocab::Impl& v);

}  // namespace detail

}  // namespace ferry::text
