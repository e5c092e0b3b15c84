// KL-divergence base files: the base model's log-probabilities at every scored position of a
// perplexity run, written once (`--kl-divergence-base FILE`) and compared against later
// (`--kl-divergence`). Two encodings, told apart by their first 8 bytes:
//
// llama.cpp's layout (`llama-perplexity --kl-divergence-base`, byte-compatible both ways):
//     "_logits_" · n_ctx u32 · n_vocab i32 · n_chunk i32 · tokens i32[n_chunk·n_ctx] (as tokenized:
//     the BOS substituted at each chunk start is not stored) · per chunk n_scored(n_ctx) rows of
//     nv = 2·⌈n_vocab/2⌉ + 4 uint16. A row: {scale f32, min_log_prob f32}, then one u16 per token with
//     log p = scale·u + min_log_prob; only the top 16 nats of logits are resolved (u = 0 below).
//     496,648 bytes per scored token at a 248,320 vocabulary.
//
// ferry's compact layout (`--kld-format compact`):
//     "_topklp_" · version u32 = 1 · n_ctx u32 · n_vocab i32 · n_chunk i32 · top_k i32 · tokens as above
//     · per chunk n_scored rows of {log p(next token) f32, log of the mass outside the top k f32,
//     top_k × {token id i32, log p f32} by falling probability}. 8 + 8·top_k bytes per scored token
//     (520 at k = 64, 0.1% of the llama.cpp row at a 248K vocabulary).
//
// Scored positions are llama-perplexity's: in a chunk of n_ctx tokens, positions n_ctx/2 … n_ctx−2,
// each predicting the token after it. Both writer and reader stream one chunk at a time, so memory
// does not grow with the number of chunks. Files are little-endian (as llama.cpp writes them on
// every machine it runs on).
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ferry::tools::kld {

enum class Format { Llama, Compact };

inline constexpr int32_t kMaxTopK = 4096;

// Positions scored per chunk: n_ctx/2 … n_ctx−2.
inline int32_t n_scored(int32_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }
// uint16 values per row of the llama.cpp layout.
inline int64_t llama_row_u16(int32_t n_vocab) { return 2 * ((int64_t(n_vocab) + 1) / 2) + 4; }
// Bytes of one scored row in a format.
int64_t row_bytes(Format format, int32_t n_vocab, int32_t top_k);

struct Header {
    Format format = Format::Llama;
    int32_t n_ctx = 0;
    int32_t n_vocab = 0;
    int32_t n_chunk = 0;
    int32_t top_k = 0;            // compact only
    std::vector<int32_t> tokens;  // n_chunk · n_ctx, as tokenized
};

// The base distribution at one scored position, as stored.
struct BaseRow {
    // Llama: the nv uint16 of the row (first 4 = {scale, min_log_prob} as f32).
    std::span<const uint16_t> packed;
    // Compact: the top-k (by falling probability), the next token's log p and the tail mass.
    std::span<const int32_t> top_ids;
    std::span<const float> top_log_p;
    float log_p_next = 0;
    float log_tail = 0;  // log of 1 − Σ top-k p; −inf when the top k hold everything
};

// One chunk's rows in storage order; views stay valid until the next read.
class Chunk {
public:
    int32_t n_rows() const { return n_rows_; }
    BaseRow row(int32_t i) const;

private:
    friend class Reader;
    friend class Encoder;
    Format format_ = Format::Llama;
    int32_t n_rows_ = 0;
    int64_t stride_ = 0;             // u16 per row (llama) or 4-byte words per row (compact)
    std::vector<uint16_t> packed_;   // llama
    std::vector<uint32_t> compact_;  // compact, raw words as on disk
    std::vector<int32_t> top_ids_;   // compact, de-interleaved: n_rows × top_k ids …
    std::vector<float> top_log_p_;   // … and their log-probabilities
    int32_t top_k_ = 0;
};

// Turns logits into stored rows (for the writer and for --compare-model, which never touches disk).
class Encoder {
public:
    Encoder(Format format, int32_t n_vocab, int32_t top_k);
    // Starts a chunk of n_rows rows.
    void begin(int32_t n_rows);
    // Encodes row i from [n_vocab] logits; `next` is the token that follows. Returns its negative
    // log-likelihood, computed as llama-perplexity computes it.
    double encode(int32_t i, std::span<const float> logits, int32_t next);
    const Chunk& chunk() const { return chunk_; }
    std::span<const uint8_t> bytes() const;

private:
    int32_t n_vocab_;
    Chunk chunk_;
    std::vector<int32_t> order_;  // scratch for the top-k selection
};

class Writer {
public:
    // Writes the header and tokens; `tokens` is n_chunk · n_ctx long. top_k only for compact.
    static Result<Writer> create(const std::string& path, const Header& header);
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) noexcept;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    ~Writer();

    Status write_chunk(const Encoder& encoder);
    // Flushes and closes; an error here (disk full) means the file is incomplete.
    Status close();
    uint64_t bytes_written() const { return bytes_; }

private:
    Writer() = default;
    std::FILE* f_ = nullptr;
    std::string path_;
    uint64_t bytes_ = 0;
};

class Reader {
public:
    // Reads and checks the header and tokens; the size of the stream must be exactly what the
    // header announces (so a truncated or padded file is rejected before any model work).
    static Result<Reader> open(std::unique_ptr<std::istream> in, const std::string& name);
    static Result<Reader> open_file(const std::string& path);

    const Header& header() const { return header_; }
    uint64_t file_bytes() const { return file_bytes_; }
    // The next chunk, with every row checked (finite values, ids in range).
    Status read_chunk(Chunk& chunk);

private:
    Reader() = default;
    std::unique_ptr<std::istream> in_;
    std::string name_;
    Header header_;
    uint64_t file_bytes_ = 0;
    int32_t next_chunk_ = 0;
};

}  // namespace ferry::tools::kld
