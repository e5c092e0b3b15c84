// Tokenizer vocabularies read from GGUF metadata, and text <-> token id conversion.
//
// Three families, chosen by `tokenizer.ggml.model`:
//   gpt2  byte-level BPE: text is pre-split by the `tokenizer.ggml.pre` patterns, each word's
//         bytes are mapped through GPT-2's bytes_to_unicode and merged by `tokenizer.ggml.merges`
//         rank (lowest first).
//   llama SentencePiece (SPM): spaces become U+2581, an optional dummy-prefix space, symbols are
//         merged by `tokenizer.ggml.scores` (highest first), unknown characters fall back to
//         <0xXX> byte tokens.
//   bert  WordPiece (WPM): BERT normalization, greedy longest match with a U+2581 word prefix.
//
// Before any of that, tokens whose type is USER_DEFINED are split out of the text, and
// CONTROL/UNKNOWN tokens too when parse_special is on (longest token text first, as llama.cpp).
// The results match llama.cpp's `llama_tokenize` token for token, including its per-model quirks
// that are not stored in the file (phi-3 control tokens swallow the whitespace after them).
//
// Everything read from the file is checked: ids in range, merges naming known tokens, byte tokens
// well-formed. Text to tokenize must be valid UTF-8. Errors come back as Result, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::gguf {
class File;
}

namespace ferry::text {

// GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

enum class VocabType { Bpe, Spm, Wpm };

constexpr int32_t kNoToken = -1;

class Vocab {
public:
    static Result<Vocab> from_gguf(const gguf::File& file);

    // add_special: BOS/EOS as the vocab asks (bert: CLS ... SEP). parse_special: control-token
    // text in `text` becomes the control token instead of being tokenized as text.
    Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for (may be part of a UTF-8 sequence). special=false renders
    // control and unknown tokens as "".
    Result<std::string> token_to_piece(int32_t id, bool special = true) const;
    // Concatenated pieces, as llama.cpp's llama_detokenize(remove_special=false): when the vocab
    // adds a dummy-prefix space, one leading space of the first piece is dropped (if the first
    // token is BOS, that is all it affects). No other clean-up.
    Result<std::string> detokenize(std::span<const int32_t> ids, bool special) const;

    int32_t n_tokens() const;
    VocabType type() const;
    std::string_view type_name() const;  // "gpt2", "llama", "bert"
    std::string_view pre_name() const;   // tokenizer.ggml.pre as read ("" if absent)
    int32_t bos() const;                 // kNoToken when the vocab has none
    int32_t eos() const;
    int32_t eot() const;
    int32_t unk() const;
    int32_t pad() const;
    int32_t sep() const;
    int32_t cls() const;
    bool add_bos() const;
    bool add_eos() const;
    bool is_eog(int32_t id) const;
    bool is_control(int32_t id) const;
    // Raw vocabulary entry (BPE pieces still byte-encoded, SPM pieces with U+2581).
    Result<std::string_view> token_text(int32_t id) const;
    Result<TokenType> token_type(int32_t id) const;

    struct Impl;

private:
    explicit Vocab(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;
};

// Turns a stream of generated tokens into text that is safe to print as it comes: bytes are
// held back while they end inside a UTF-8 sequence, and released once it is complete.
class StreamDecoder {
public:
    explicit StreamDecoder(const Vocab& vocab, bool special = true) : vocab_(&vocab), special_(special) {}

    // Text that can be emitted after this token (may be empty).
    Result<std::string> push(int32_t id);
    // Whatever is still held back (an incomplete sequence at the end of generation).
    std::string flush();

private:
    const Vocab* vocab_;
    bool special_;
    std::string pending_;
};

}  // namespace ferry::text
