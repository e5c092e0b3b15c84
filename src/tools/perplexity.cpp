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
// As in llama-perplexity, n_seq = -b / -c chunks (at least 1) are evaluated side by side, each in its
// own sequence, so the weights are read once for all of them: one forward pass carries up to -ub tokens
// of several chunks (runtime::Session::step). Every chunk still starts from an empty cache, so the
// numbers are those of chunks evaluated one at a time, up to float rounding.
//
// Memory stays flat in the number of chunks: n_seq chunks of logits and one chunk of base rows at a
// time, plus 8 bytes per scored token for the percentiles.
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

// Progress on stderr: llama.cpp's "seconds per pass - ETA" line after the first pass (n_seq chunks),
// then one line every 10 seconds.
class Progress {
public:
    explicit Progress(int n_chunk) : n_chunk_(n_chunk), t0_(Clock::now()), last_(t0_) {}
    void chunks_done(int done) {
        const double elapsed = seconds_since(t0_);
        const double eta = elapsed / done * (n_chunk_ - done);
        if (first_) {
            std::fprintf(stderr, "perplexity: %.2f seconds per pass - ETA %.2f minutes\n", elapsed, eta / 60);
            first_ = false;
        } else if (done < n_chunk_ && seconds_since(last_) >= 10) {
            std::fprintf(stderr, "perplexity: %d/%d chunks in %.1f s - ETA %.1f s\n", done, n_chunk_, elapsed, eta);
        } else {
            return;
        }
        last_ = Clock::now();
    }

private:
    int n_chunk_;
    bool first_ = true;
    Clock::time_point t0_, last_;
};

// Loads a model for chunks of n_ctx tokens; the sessions are ChunkEvaluator's.
Result<Engine> load_for_chunks(const Params& params, const std::string& model, int32_t n_ctx) {
    Params p = params;
    p.model = model;
    p.ctx_size = n_ctx;
    FERRY_ASSIGN(Engine e, load_engine(p, "ferry perplexity", /*n_ctx_session=*/-1));
    if (e.vocab->add_eos())
        return make_error(e.path + ": the vocabulary appends EOS to every text; perplexity would score it");
    if (e.vocab->add_bos() && e.vocab->bos() == text::kNoToken)
        return make_error(e.path + ": the vocabulary asks for BOS but has no BOS token");
    return e;
}

// llama-perplexity's n_seq: chunks evaluated side by side, -b / -c of them, at least 1 and at most
// the chunks there are.
int32_t parallel_chunks(const Params& params, int32_t n_ctx, int32_t n_chunk) {
    return std::clamp(params.n_batch / n_ctx, 1, std::max(n_chunk, 1));
}

// Chunks evaluated side by side on one engine: n_seq sessions of n_ctx cells. Each chunk starts from
// an empty cache with its first token replaced by BOS when the vocab adds one (llama-perplexity's
// rule); its first half is evaluated for the cache only, its second half for the logits. Forward
// passes carry at most -ub tokens, taken from the chunks in order.
class ChunkEvaluator {
public:
    static Result<ChunkEvaluator> create(Engine& e, const Params& params, int32_t n_ctx, int32_t n_seq) {
        ChunkEvaluator ev(e, n_ctx, params.n_ubatch);
        runtime::SessionParams sp = session_params(params, n_ctx);
        sp.n_checkpoints = 0;  // chunks never go back
        // Chunks batched together keep ggml's float order: each chunk's logits as llama-perplexity computes them.
        sp.exact_batches = true;
        for (int32_t i = 0; i < n_seq; ++i) {
            FERRY_ASSIGN(runtime::Session s, runtime::Session::create(*e.model, *e.ops, sp));
            ev.sessions_.push_back(std::move(s));
        }
        return ev;
    }

    int32_t n_seq() const { return int32_t(sessions_.size()); }

    // Logits [n_ctx − n_ctx/2][n_vocab] of positions n_ctx/2 … n_ctx−1 of each chunk (at most n_seq).
    Result<std::vector<std::vector<float>>> eval(std::span<const std::span<const int32_t>> chunks) {
        FERRY_CHECK(!chunks.empty() && chunks.size() <= sessions_.size());
        std::vector<std::vector<int32_t>> tokens;
        for (size_t i = 0; i < chunks.size(); ++i) {
            FERRY_CHECK(int64_t(chunks[i].size()) == n_ctx_);
            tokens.emplace_back(chunks[i].begin(), chunks[i].end());
            if (e_->vocab->add_bos()) tokens.back()[0] = e_->vocab->bos();
            sessions_[i].clear();
        }
        const size_t first = size_t(n_ctx_ / 2);
        std::vector<std::vector<float>> logits(chunks.size());
        FERRY_TRY(run(tokens, 0, first, runtime::Logits::Last, logits));
        FERRY_TRY(run(tokens, first, size_t(n_ctx_), runtime::Logits::All, logits));
        return logits;
    }

private:
    ChunkEvaluator(Engine& e, int32_t n_ctx, int32_t n_ubatch) : e_(&e), n_ctx_(n_ctx), n_ubatch_(n_ubatch) {}

    // Appends tokens [begin, end) of every chunk to its session; with All, their logits to `out`.
    Status run(const std::vector<std::vector<int32_t>>& tokens, size_t begin, size_t end, runtime::Logits which,
               std::vector<std::vector<float>>& out) {
        std::vector<size_t> done(tokens.size(), begin);
        while (true) {
            std::vector<runtime::SeqStep> steps;
            std::vector<size_t> who;
            size_t budget = size_t(n_ubatch_);
            for (size_t i = 0; i < tokens.size() && budget > 0; ++i) {
                const size_t n = std::min(end - done[i], budget);
                if (n == 0) continue;
                steps.push_back({&sessions_[i], std::span<const int32_t>(tokens[i]).subspan(done[i], n)});
                who.push_back(i);
                done[i] += n;
                budget -= n;
            }
            if (steps.empty()) return {};
            FERRY_ASSIGN(const std::vector<std::vector<float>> logits, runtime::Session::step(steps, which));
            if (which == runtime::Logits::All)
                for (size_t j = 0; j < who.size(); ++j)
                    out[who[j]].insert(out[who[j]].end(), logits[j].begin(), logits[j].end());
        }
    }

    Engine* e_;
    int32_t n_ctx_, n_ubatch_;
    std::vector<runtime::Session> sessions_;
};

// Chunks c … c + n − 1 of the tokens, n_ctx each.
std::vector<std::span<const int32_t>> chunk_group(std::span<const int32_t> tokens, int32_t n_ctx, int32_t c,
                                                  int32_t n) {
    std::vector<std::span<const int32_t>> out;
    for (int32_t i = c; i < c + n; ++i) out.push_back(tokens.subspan(size_t(i) * size_t(n_ctx), size_t(n_ctx)));
    return out;
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
    auto evaluator = ChunkEvaluator::create(*engine, params, n_ctx, parallel_chunks(params, n_ctx, n_chunk));
    if (!evaluator.ok()) return fail(evaluator.error().message);
    std::fprintf(stderr, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, n_seq=%d\n",
                 n_chunk, n_ctx, params.n_batch, evaluator->n_seq());

    double nll = 0, nll2 = 0;
    int64_t count = 0;
    Progress progress(n_chunk);
    for (int32_t c0 = 0; c0 < n_chunk; c0 += evaluator->n_seq()) {
        const auto group = chunk_group(*tokens, n_ctx, c0, std::min(evaluator->n_seq(), n_chunk - c0));
        auto logits = evaluator->eval(group);
        if (!logits.ok()) return fail(logits.error().message);
        for (size_t g = 0; g < group.size(); ++g) {
            const std::span<const int32_t> chunk = group[g];
            if (writer) encoder.begin(n_rows);
            for (int32_t r = 0; r < n_rows; ++r) {
                const auto row =
                    std::span<const float>((*logits)[g]).subspan(size_t(r) * size_t(n_vocab), size_t(n_vocab));
                const int32_t next = chunk[size_t(first + r + 1)];
                const double v = writer ? encoder.encode(r, row, next) : kld::token_nll(row, next);
                nll += v;
                nll2 += v * v;
            }
            count += n_rows;
            if (writer) {
                if (const Status st = writer->write_chunk(encoder); !st.ok()) return fail(st.error().message);
            }
            std::printf("[%d]%.4lf,", c0 + int32_t(g) + 1, std::exp(nll / double(count)));
        }
        std::fflush(stdout);
        progress.chunks_done(c0 + int32_t(group.size()));
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

// Evaluates `model` on chunks, n_seq at a time, and compares each scored row with `next_base`
// (which fills a Chunk for chunk c, in order), printing llama-perplexity's KL-divergence report.
template <class NextBase>
int compare_chunks(ChunkEvaluator& model, std::span<const int32_t> tokens, int32_t n_ctx, int32_t n_chunk,
                   int32_t n_vocab, NextBase&& next_base) {
    const int32_t first = n_ctx / 2, n_rows = kld::n_scored(n_ctx);
    kld::Stats stats(n_vocab);
    Progress progress(n_chunk);
    std::printf("\n");
    kld::Stats::print_chunk_header(stdout);
    for (int32_t c0 = 0; c0 < n_chunk; c0 += model.n_seq()) {
        const auto group = chunk_group(tokens, n_ctx, c0, std::min(model.n_seq(), n_chunk - c0));
        auto logits = model.eval(group);
        if (!logits.ok()) return fail(logits.error().message);
        for (size_t g = 0; g < group.size(); ++g) {
            const int32_t c = c0 + int32_t(g);
            auto base = next_base(c, group[g]);
            if (!base.ok()) return fail(base.error().message);
            for (int32_t r = 0; r < n_rows; ++r) {
                const auto row =
                    std::span<const float>((*logits)[g]).subspan(size_t(r) * size_t(n_vocab), size_t(n_vocab));
                stats.add(row, (*base)->row(r), group[g][size_t(first + r + 1)]);
            }
            stats.print_chunk(stdout, c + 1);
        }
        std::fflush(stdout);
        progress.chunks_done(c0 + int32_t(group.size()));
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
    auto evaluator = ChunkEvaluator::create(*engine, params, h.n_ctx, parallel_chunks(params, h.n_ctx, n_chunk));
    if (!evaluator.ok()) return fail(evaluator.error().message);
    std::fprintf(stderr, "perplexity: %s: %s format, n_ctx=%d, %d of %d chunks%s, n_seq=%d\n", params.kld_base.c_str(),
                 h.format == kld::Format::Llama ? "llama.cpp" : "compact", h.n_ctx, n_chunk, h.n_chunk,
                 h.format == kld::Format::Compact ? (", top " + std::to_string(h.top_k)).c_str() : "",
                 evaluator->n_seq());
    kld::Chunk chunk;
    return compare_chunks(*evaluator, h.tokens, h.n_ctx, n_chunk, h.n_vocab,
                          [&](int32_t, std::span<const int32_t>) -> Result<const kld::Chunk*> {
                              FERRY_TRY(reader->read_chunk(chunk));
                              return &chunk;
                          });
}

// Weights plus the KV cache and recurrent state of n_seq sequences of a loaded engine, in bytes.
uint64_t engine_bytes(const Engine& e, const Params& params, int32_t n_ctx, int32_t n_seq) {
    uint64_t bytes = 0;
    for (const gguf::TensorInfo& t : e.file->tensors()) bytes += t.size;
    const runtime::MemoryUse mem = runtime::memory_use(*e.model, n_ctx, params.cache_type_k, params.cache_type_v);
    return bytes + uint64_t(n_seq) * (mem.kv_bytes + mem.state_bytes);
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
    auto tokens = tokenize_text(*base, params.prompt_file, n_ctx);
    if (!tokens.ok()) return fail(tokens.error().message);
    const int32_t n_chunk = chunk_count(tokens->size(), n_ctx, params.n_chunks);
    const int32_t n_seq = parallel_chunks(params, n_ctx, n_chunk);
    auto base_eval = ChunkEvaluator::create(*base, params, n_ctx, n_seq);
    if (!base_eval.ok()) return fail(base_eval.error().message);
    auto model_eval = ChunkEvaluator::create(*model, params, n_ctx, n_seq);
    if (!model_eval.ok()) return fail(model_eval.error().message);

    const uint64_t logits = 2 * uint64_t(n_seq) * uint64_t(n_ctx - n_ctx / 2) * uint64_t(n_vocab) * 4;
    const uint64_t rows = uint64_t(kld::n_scored(n_ctx)) * uint64_t(kld::row_bytes(kld::Format::Llama, n_vocab, 0));
    const uint64_t b = engine_bytes(*base, params, n_ctx, n_seq), m = engine_bytes(*model, params, n_ctx, n_seq);
    std::fprintf(stderr,
                 "perplexity: comparing against %s with both models in memory: %.1f MiB (base weights + KV %.1f, "
                 "model weights + KV %.1f, logits of %d chunk%s and base rows of one %.1f)\n",
                 base->path.c_str(), double(b + m + logits + rows) / (1 << 20), double(b) / (1 << 20),
                 double(m) / (1 << 20), n_seq, n_seq == 1 ? "" : "s", double(logits + rows) / (1 << 20));
    const int32_t first = n_ctx / 2, n_rows = kld::n_scored(n_ctx);
    kld::Encoder encoder(kld::Format::Llama, n_vocab, 0);
    // The base's logits of the group of chunks the model is evaluating, encoded one chunk at a time.
    std::vector<std::vector<float>> base_logits;
    int32_t base_first = 0;
    return compare_chunks(
        *model_eval, *tokens, n_ctx, n_chunk, n_vocab,
        [&](int32_t c, std::span<const int32_t> chunk) -> Result<const kld::Chunk*> {
            if (c % n_seq == 0) {
                base_first = c;
                FERRY_ASSIGN(base_logits,
                             base_eval->eval(chunk_group(*tokens, n_ctx, c, std::min(n_seq, n_chunk - c))));
            }
            const std::vector<float>& logits = base_logits[size_t(c - base_first)];
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
