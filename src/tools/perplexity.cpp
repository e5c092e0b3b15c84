// ferry perplexity: llama-perplexity's measurements on one model, or on a model against a base.
//
//   PPL     -f TEXT: tokenize the whole text (BOS as the vocab asks), cut it into chunks of -c tokens,
//           evaluate each from an empty cache with its first token replaced by BOS (when the vocab adds
//           one), score positions c/2 … c−2 on the token that follows; print the running PPL per chunk
//           ("[i]x,") and "Final estimate: PPL = x +/- σ". With --kl-divergence-base FILE the scored
//           log-probabilities are also written to FILE (kld_base.h: llama.cpp's layout or compact).
//   KLD     --kl-divergence --kl-divergence-base FILE: take the tokens from FILE, evaluate the model on
//           them the same way and compare with the stored distributions (kld_stats.h).
//   compare --compare-model BASE -f TEXT: both models in memory, the base's rows encoded as a base file
//           would hold them, the same statistics with no file.
//
// Memory stays flat in the number of chunks: one chunk of logits and one chunk of base rows at a
// time, plus 8 bytes per scored token for the percentiles. Chunks are evaluated one at a time
// (llama.cpp packs several into one batch when -b ≥ 2·c; the numbers are the same).
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tools/engine.h"
#include "tools/kld_base.h"
#include "tools/kld_stats.h"
#include "tools/tools.h"

namespace ferry::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kDefaultCtx = 512;  // llama-perplexity's default -c

int fail(const std::string& message) {
    std::fprintf(stderr, "ferry perplexity: %s\n", message.c_str());
    return 1;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Progress on stderr: llama.cpp's "seconds per pass - ETA" line after the first chunk, then one
// line every 10 seconds.
class Progress {
public:
    explicit Progress(int n_chunk) : n_chunk_(n_chunk), t0_(Clock::now()), last_(t0_) {}
    void chunk_done(int done) {
        const double elapsed = seconds_since(t0_);
        const double eta = elapsed / done * (n_chunk_ - done);
        if (done == 1) {
            std::fprintf(stderr, "perplexity: %.2f seconds per pass - ETA %.2f minutes\n", elapsed, eta / 60);
        } else if (done < n_chunk_ && seconds_since(last_) >= 10) {
            std::fprintf(stderr, "perplexity: %d/%d chunks in %.1f s - ETA %.1f s\n", done, n_chunk_, elapsed, eta);
        } else {
            return;
        }
        last_ = Clock::now();
    }

private:
    int n_chunk_;
    Clock::time_point t0_, last_;
};

// Loads a model for chunks of n_ctx tokens (the session holds exactly one chunk).
Result<Engine> load_for_chunks(const Params& params, const std::string& model, int32_t n_ctx) {
    Params p = params;
    p.model = model;
    p.ctx_size = n_ctx;
    FERRY_ASSIGN(Engine e, load_engine(p, "ferry perplexity"));
    if (e.vocab->add_eos())
        return make_error(e.path + ": the vocabulary appends EOS to every text; perplexity would score it");
    if (e.vocab->add_bos() && e.vocab->bos() == text::kNoToken)
        return make_error(e.path + ": the vocabulary asks for BOS but has no BOS token");
    return e;
}

// Logits [n_ctx − n_ctx/2][n_vocab] of positions n_ctx/2 … n_ctx−1 of one chunk, evaluated from an
// empty cache with the first token replaced by BOS when the vocab adds one (llama-perplexity's rule).
Result<std::vector<float>> eval_chunk(Engine& e, std::span<const int32_t> chunk) {
    std::vector<int32_t> tokens(chunk.begin(), chunk.end());
    if (e.vocab->add_bos()) tokens[0] = e.vocab->bos();
    const size_t first = tokens.size() / 2;
    e.session->clear();
    FERRY_TRY(e.session->prefill(std::span<const int32_t>(tokens).first(first), runtime::Logits::Last));
    return e.session->prefill(std::span<const int32_t>(tokens).subspan(first), runtime::Logits::All);
}

// The text's tokens, at least two chunks of them.
Result<std::vector<int32_t>> tokenize_text(const Engine& e, const std::string& path, int32_t n_ctx) {
    FERRY_ASSIGN(const std::string text, read_text_file(path));
    const auto t0 = Clock::now();
    FERRY_ASSIGN(std::vector<int32_t> tokens, e.vocab->tokenize(text, true, false));
    std::fprintf(stderr, "perplexity: tokenized %zu bytes into %zu tokens in %.0f ms\n", text.size(), tokens.size(),
                 1e3 * seconds_since(t0));
    if (tokens.size() < 2 * size_t(n_ctx))
        return make_error("you need at least " + std::to_string(2 * n_ctx) +
                          " tokens to evaluate perplexity with a context of " + std::to_string(n_ctx) + "; '" + path +
                          "' tokenizes to only " + std::to_string(tokens.size()));
    return tokens;
}

int32_t chunk_count(size_t n_tokens, int32_t n_ctx, int n_chunks_limit) {
    const int32_t n_max = int32_t(std::min<size_t>(n_tokens / size_t(n_ctx), INT32_MAX));
    return n_chunks_limit < 0 ? n_max : std::min(n_chunks_limit, n_max);
}

Result<kld::Format> parse_format(const std::string& name) {
    if (name == "llama") return kld::Format::Llama;
    if (name == "compact") return kld::Format::Compact;
    return make_error("--kld-format must be llama or compact, not '" + name + "'");
}

// PPL mode, optionally writing a base file.
int run_ppl(const Params& params, int32_t n_ctx) {
    auto format = parse_format(params.kld_format);
    if (!format.ok()) return fail(format.error().message);
    auto engine = load_for_chunks(params, params.model, n_ctx);
    if (!engine.ok()) return fail(engine.error().message);
    auto tokens = tokenize_text(*engine, params.prompt_file, n_ctx);
    if (!tokens.ok()) return fail(tokens.error().message);
    const int32_t n_chunk = chunk_count(tokens->size(), n_ctx, params.n_chunks);
    const int32_t n_vocab = int32_t(engine->model->info().n_vocab);
    const int32_t first = n_ctx / 2, n_rows = kld::n_scored(n_ctx);

    std::optional<kld::Writer> writer;
    kld::Encoder encoder(*format, n_vocab, params.kld_top_k);
    if (!params.kld_base.empty()) {
        kld::Header h{.format = *format,
                      .n_ctx = n_ctx,
                      .n_vocab = n_vocab,
                      .n_chunk = n_chunk,
                      .top_k = params.kld_top_k,
                      .tokens = {}};
        h.tokens.assign(tokens->begin(), tokens->begin() + int64_t(n_chunk) * n_ctx);
        auto w = kld::Writer::create(params.kld_base, h);
        if (!w.ok()) return fail(w.error().message);
        writer = std::move(*w);
        std::fprintf(stderr, "perplexity: saving all logits to %s (%s format, %.1f MiB)\n", params.kld_base.c_str(),
                     params.kld_format.c_str(),
                     (double(writer->bytes_written()) +
                      double(n_chunk) * n_rows * double(kld::row_bytes(*format, n_vocab, params.kld_top_k))) /
                         (1 << 20));
    }
    std::fprintf(stderr, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, n_seq=1\n",
                 n_chunk, n_ctx, params.n_batch);

    double nll = 0, nll2 = 0;
    int64_t count = 0;
    Progress progress(n_chunk);
    for (int32_t c = 0; c < n_chunk; ++c) {
        const auto chunk = std::span<const int32_t>(*tokens).subspan(size_t(c) * size_t(n_ctx), size_t(n_ctx));
        auto logits = eval_chunk(*engine, chunk);
        if (!logits.ok()) return fail(logits.error().message);
        if (writer) encoder.begin(n_rows);
        for (int32_t r = 0; r < n_rows; ++r) {
            const auto row = std::span<const float>(*logits).subspan(size_t(r) * size_t(n_vocab), size_t(n_vocab));
            const int32_t next = chunk[size_t(first + r + 1)];
            const double v = writer ? encoder.encode(r, row, next) : kld::token_nll(row, next);
            nll += v;
            nll2 += v * v;
        }
        count += n_rows;
        if (writer) {
            if (const Status st = writer->write_chunk(encoder); !st.ok()) return fail(st.error().message);
        }
        std::printf("[%d]%.4lf,", c + 1, std::exp(nll / double(count)));
        std::fflush(stdout);
        progress.chunk_done(c + 1);
    }
    std::printf("\n");
    if (writer) {
        if (const Status st = writer->close(); !st.ok()) return fail(st.error().message);
        std::fprintf(stderr, "perplexity: wrote %" PRIu64 " bytes to %s\n", writer->bytes_written(),
                     params.kld_base.c_str());
    }
    const double mean = nll / double(count);
    const double var = nll2 / double(count) - mean * mean;
    const double ppl = std::exp(mean);
    if (var <= 0) return fail("unexpected non-positive variance of log(prob)");
    std::printf("Final estimate: PPL = %.4lf +/- %.5lf\n", ppl, std::sqrt(var / double(count - 1)) * ppl);
    return 0;
}

// Evaluates `model` on chunks and compares each scored row with `next_base` (which fills a Chunk
// for chunk c), printing llama-perplexity's KL-divergence report.
template <class NextBase>
int compare_chunks(Engine& model, std::span<const int32_t> tokens, int32_t n_ctx, int32_t n_chunk,
                   NextBase&& next_base) {
    const int32_t n_vocab = int32_t(model.model->info().n_vocab);
    const int32_t first = n_ctx / 2, n_rows = kld::n_scored(n_ctx);
    kld::Stats stats(n_vocab);
    Progress progress(n_chunk);
    std::printf("\n");
    kld::Stats::print_chunk_header(stdout);
    for (int32_t c = 0; c < n_chunk; ++c) {
        const auto chunk = tokens.subspan(size_t(c) * size_t(n_ctx), size_t(n_ctx));
        auto base = next_base(c, chunk);
        if (!base.ok()) return fail(base.error().message);
        auto logits = eval_chunk(model, chunk);
        if (!logits.ok()) return fail(logits.error().message);
        for (int32_t r = 0; r < n_rows; ++r) {
            const auto row = std::span<const float>(*logits).subspan(size_t(r) * size_t(n_vocab), size_t(n_vocab));
            stats.add(row, (*base)->row(r), chunk[size_t(first + r + 1)]);
        }
        stats.print_chunk(stdout, c + 1);
        std::fflush(stdout);
        progress.chunk_done(c + 1);
    }
    std::printf("\n");
    stats.print_summary(stdout);
    return 0;
}

int run_kld(const Params& params) {
    auto reader = kld::Reader::open_file(params.kld_base);
    if (!reader.ok()) return fail(reader.error().message);
    const kld::Header& h = reader->header();
    if (params.ctx_size > 0 && params.ctx_size != h.n_ctx)
        std::fprintf(stderr, "perplexity: the base file was computed with -c %d; using that instead of %d\n", h.n_ctx,
                     params.ctx_size);
    auto engine = load_for_chunks(params, params.model, h.n_ctx);
    if (!engine.ok()) return fail(engine.error().message);
    if (engine->model->info().n_vocab != h.n_vocab)
        return fail("inconsistent vocabulary: the base file has " + std::to_string(h.n_vocab) + " tokens, the model " +
                    std::to_string(engine->model->info().n_vocab));
    const int32_t n_chunk = params.n_chunks < 0 ? h.n_chunk : std::min(params.n_chunks, h.n_chunk);
    std::fprintf(stderr, "perplexity: %s: %s format, n_ctx=%d, %d of %d chunks%s\n", params.kld_base.c_str(),
                 h.format == kld::Format::Llama ? "llama.cpp" : "compact", h.n_ctx, n_chunk, h.n_chunk,
                 h.format == kld::Format::Compact ? (", top " + std::to_string(h.top_k)).c_str() : "");
    kld::Chunk chunk;
    return compare_chunks(*engine, h.tokens, h.n_ctx, n_chunk,
                          [&](int32_t, std::span<const int32_t>) -> Result<const kld::Chunk*> {
                              FERRY_TRY(reader->read_chunk(chunk));
                              return &chunk;
                          });
}

// Weights plus KV cache of a loaded engine, in bytes.
uint64_t engine_bytes(const Engine& e, const Params& params, int32_t n_ctx) {
    uint64_t bytes = 0;
    for (const gguf::TensorInfo& t : e.file->tensors()) bytes += t.size;
    for (const backend::KvLayerSpec& s : e.model->kv_layers(n_ctx, params.cache_type_k, params.cache_type_v)) {
        const uint64_t k = row_size(s.type_k, uint64_t(s.head_dim_k)).value_or(0);
        const uint64_t v = row_size(s.type_v, uint64_t(s.head_dim_v)).value_or(0);
        bytes += uint64_t(s.n_ctx) * uint64_t(s.n_head_kv) * (k + v);
    }
    return bytes;
}

int run_compare(const Params& params, int32_t n_ctx) {
    auto base = load_for_chunks(params, params.compare_model, n_ctx);
    if (!base.ok()) return fail(base.error().message);
    auto model = load_for_chunks(params, params.model, n_ctx);
    if (!model.ok()) return fail(model.error().message);
    const int32_t n_vocab = int32_t(model->model->info().n_vocab);
    if (base->model->info().n_vocab != n_vocab)
        return fail("inconsistent vocabulary: the base model has " + std::to_string(base->model->info().n_vocab) +
                    " tokens, the model " + std::to_string(n_vocab));
    const uint64_t logits = 2 * uint64_t(n_ctx - n_ctx / 2) * uint64_t(n_vocab) * 4;
    const uint64_t rows = uint64_t(kld::n_scored(n_ctx)) * uint64_t(kld::row_bytes(kld::Format::Llama, n_vocab, 0));
    const uint64_t b = engine_bytes(*base, params, n_ctx), m = engine_bytes(*model, params, n_ctx);
    std::fprintf(stderr,
                 "perplexity: comparing against %s with both models in memory: %.1f MiB (base weights + KV %.1f, "
                 "model weights + KV %.1f, logits and base rows of one chunk %.1f)\n",
                 base->path.c_str(), double(b + m + logits + rows) / (1 << 20), double(b) / (1 << 20),
                 double(m) / (1 << 20), double(logits + rows) / (1 << 20));
    auto tokens = tokenize_text(*base, params.prompt_file, n_ctx);
    if (!tokens.ok()) return fail(tokens.error().message);
    const int32_t n_chunk = chunk_count(tokens->size(), n_ctx, params.n_chunks);
    const int32_t first = n_ctx / 2, n_rows = kld::n_scored(n_ctx);
    kld::Encoder encoder(kld::Format::Llama, n_vocab, 0);
    return compare_chunks(
        *model, *tokens, n_ctx, n_chunk, [&](int32_t, std::span<const int32_t> chunk) -> Result<const kld::Chunk*> {
            FERRY_ASSIGN(const std::vector<float> logits, eval_chunk(*base, chunk));
            encoder.begin(n_rows);
            for (int32_t r = 0; r < n_rows; ++r)
                encoder.encode(r, std::span<const float>(logits).subspan(size_t(r) * size_t(n_vocab), size_t(n_vocab)),
                               chunk[size_t(first + r + 1)]);
            return &encoder.chunk();
        });
}

}  // namespace

int run_perplexity(const Params& params) {
    const int32_t n_ctx = params.ctx_size > 0 ? params.ctx_size : kDefaultCtx;
    if (n_ctx < 4) return fail("-c " + std::to_string(n_ctx) + " is too small for perplexity (at least 4)");
    if (params.kl_divergence) {
        if (params.kld_base.empty()) return fail("--kl-divergence needs the base file: --kl-divergence-base FILE");
        if (!params.compare_model.empty()) return fail("--kl-divergence and --compare-model exclude each other");
        return run_kld(params);
    }
    if (params.prompt_file.empty()) return fail("no text: give -f FILE (e.g. wikitext-2-raw/wiki.test.raw)");
    if (!params.compare_model.empty()) {
        if (!params.kld_base.empty()) return fail("--compare-model writes no base file; drop --kl-divergence-base");
        return run_compare(params, n_ctx);
    }
    return run_ppl(params, n_ctx);
}

}  // namespace ferry::tools
