// Sampling: turning one position's logits into the next token.
//
// A Sampler is llama.cpp's sampler chain: a candidate list of (id, logit) over the whole vocabulary
// goes through an ordered list of stages, each of which rewrites logits or drops candidates, and a
// final draw picks one token from softmax(logits) of the survivors (or the argmax when temp <= 0).
// The default order is llama.cpp's:
//
//     penalties -> top_k -> typical_p -> top_p -> min_p -> temperature -> draw
//
// Stages and their semantics (each is a no-op at its "off" value):
//   penalties    for each token seen c > 0 times in the last repeat_last_n accepted tokens:
//                logit /= repeat_penalty if logit > 0, else logit *= repeat_penalty; then
//                logit -= c * frequency_penalty + presence_penalty.
//   top_k        keep the k largest logits (ties: lower id first).
//   typical_p    locally typical sampling: order by |-log p - H| (H the entropy), keep the shortest
//                prefix whose probability mass exceeds typical_p.
//   top_p        nucleus: keep the shortest prefix of the sorted list with cumulative prob >= top_p.
//   min_p        keep tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
//   temperature  logit /= temp; temp <= 0 keeps only the argmax.
// Probabilities are always softmax over the candidates still alive, so top_p after top_k measures
// mass within the top k, as in llama.cpp.
//
// Invariants of Candidates: entries [0, size) are live; [0, n_sorted) hold the n_sorted largest of
// them in descending logit order (ties: lower id first), so stages that need an order only sort as
// far as they look. Cost on a 250K vocabulary: when the chain opens with [penalties;]top_k (the
// default), one read of the logits through a k-entry heap replaces building 250K candidates
// (fill_top_k), and the later stages see k entries; greedy (temp <= 0) is the same read with k = 1.
// Other orders build the full list; top_p then sorts a growing prefix, typical_p sorts everything.
// A Sampler allocates everything it needs in create(); sample() allocates nothing.
//
// Randomness: one std::mt19937 per Sampler seeded from SamplingParams::seed; no global state. Uniform
// doubles are built from two raw 32-bit outputs (not std::uniform_real_distribution, whose algorithm
// is library-specific), so a seed gives the same tokens on every platform. The stream is not
// llama.cpp's: the same seed does not reproduce llama.cpp's sampled text.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::runtime {

enum class SamplerStage : uint8_t { Penalties, TopK, TypicalP, TopP, MinP, Temperature };

inline constexpr uint32_t kRandomSeed = 0xFFFFFFFF;

// penalties;top_k;typical_p;top_p;min_p;temperature
std::vector<SamplerStage> default_sampler_order();

// The defaults are llama.cpp's (common_params_sampling).
struct SamplingParams {
    uint32_t seed = kRandomSeed;  // RNG seed; kRandomSeed picks one at random (see Sampler::seed())
    float temp = 0.8f;            // temperature; <= 0 means greedy (argmax, lowest id on ties)
    int32_t top_k = 40;           // keep the k most likely tokens; 0 = off
    float top_p = 0.95f;          // nucleus mass in (0, 1]; 1 = off
    float min_p = 0.05f;          // in [0, 1], relative to the most likely token; 0 = off
    float typical_p = 1.0f;       // locally typical mass in (0, 1]; 1 = off
    int32_t repeat_last_n = 64;   // penalty window in tokens; 0 = penalties off, -1 = context size
    float repeat_penalty = 1.0f;  // > 0; 1 = off; > 1 discourages repeats
    float frequency_penalty = 0;  // subtracted once per occurrence in the window; 0 = off
    float presence_penalty = 0;   // subtracted once if present in the window; 0 = off
    int32_t min_keep = 0;         // top_p, typical_p and min_p keep at least this many (>= 0)
    std::vector<SamplerStage> order = default_sampler_order();  // stages in the order they run
};

// Checks every parameter; the message names the parameter (as the flag maps onto it) and its range.
Status validate(const SamplingParams& params);

// "penalties;top_k;typical_p;top_p;min_p;temperature" (llama.cpp's --samplers names; also accepts
// its aliases top-k, top-p, nucleus, typ_p, typical, min-p, temp). Empty items are skipped.
Result<std::vector<SamplerStage>> parse_sampler_order(std::string_view names);
// llama.cpp's --sampling-seq letters: e = penalties, k, y = typical_p, p, m, t.
Result<std::vector<SamplerStage>> parse_sampler_letters(std::string_view letters);
std::string_view stage_name(SamplerStage stage);
std::string format_sampler_order(std::span<const SamplerStage> order);

struct Candidate {
    int32_t id;
    float logit;
    float p;  // filled by stages that need probabilities; stale otherwise
};

struct Candidates {
    std::vector<Candidate> data;  // capacity reused across calls; only [0, size) is live
    size_t size = 0;
    size_t n_sorted = 0;    // see the invariant at the top of this file
    bool id_order = false;  // data[i].id == i for all live i (straight from fill)

    void fill(std::span<const float> logits);
    std::span<Candidate> live() { return {data.data(), size}; }
    std::span<const Candidate> live() const { return {data.data(), size}; }
};

// Counts of each token among the last `capacity` accepted tokens (a ring buffer).
class TokenHistory {
public:
    TokenHistory(size_t capacity, size_t n_vocab);
    void push(int32_t token);
    void clear();
    int32_t count(int32_t token) const;
    std::span<const int32_t> distinct() const { return distinct_; }  // tokens with count > 0

private:
    std::vector<int32_t> ring_;
    size_t head_ = 0;  // next slot to write
    size_t filled_ = 0;
    std::vector<int32_t> counts_;    // [n_vocab]
    std::vector<int32_t> distinct_;  // at most capacity entries
};

struct Penalties {
    float repeat = 1.0f;
    float frequency = 0.0f;
    float presence = 0.0f;

    bool active() const { return repeat != 1.0f || frequency != 0.0f || presence != 0.0f; }
    // The logit of a token seen `count` > 0 times in the window.
    float apply(float logit, int32_t count) const {
        // Dividing a negative logit would make the token more likely; multiplying pushes it down.
        logit = logit <= 0 ? logit * repeat : logit / repeat;
        return logit - (float(count) * frequency + presence);
    }
};

// The stages, usable alone (tests, tools). Each leaves at least one candidate when given one.
void apply_penalties(Candidates& c, const TokenHistory& history, const Penalties& penalties);
void apply_top_k(Candidates& c, int32_t k);
void apply_typical(Candidates& c, float p, size_t min_keep, std::vector<Candidate>& scratch);
void apply_top_p(Candidates& c, float p, size_t min_keep);
void apply_min_p(Candidates& c, float p, size_t min_keep);
void apply_temperature(Candidates& c, float temp);
// Sets p = softmax(logit) over the live candidates; returns the sum of exp(logit - max) before
// normalizing.
double apply_softmax(Candidates& c);
// Sorts until [0, k) holds the k largest live candidates in order.
void sort_prefix(Candidates& c, size_t k);
// fill(logits) + apply_penalties + apply_top_k(k) in one read of the logits, without writing a
// candidate per token: a k-entry heap admits the few logits above its minimum. 0 < k < logits.size().
void fill_top_k(Candidates& c, std::span<const float> logits, size_t k, const TokenHistory& history,
                const Penalties& penalties);

class Sampler {
public:
    // n_vocab: the length of every logits row; n_ctx resolves repeat_last_n = -1.
    static Result<Sampler> create(const SamplingParams& params, int32_t n_vocab, int64_t n_ctx = 0);

    // Runs the chain on one row of logits [n_vocab] and draws a token. Does not accept it.
    int32_t sample(std::span<const float> logits);
    // Records a token (generated or from the prompt) in the penalty window.
    void accept(int32_t token);
    // Forgets the penalty window and restarts the random stream from seed().
    void reset();

    // The candidates that survive the chain, before the draw (diagnostics, tests). Valid until the
    // next call.
    std::span<const Candidate> apply(std::span<const float> logits);

    uint32_t seed() const { return seed_; }  // the seed in use, even when picked at random
    const SamplingParams& params() const { return params_; }

private:
    Sampler(const SamplingParams& params, int32_t n_vocab, size_t window, uint32_t seed);

    bool greedy_shortcut() const;
    int32_t draw();
    double uniform01();

    SamplingParams params_;
    Penalties penalties_;
    bool greedy_;     // temp <= 0 and the chain reduces to penalties + argmax
    size_t n_fused_;  // leading stages ([penalties;]top_k) done by fill_top_k; 0 = none
    int32_t n_vocab_;
    uint32_t seed_;
    std::mt19937 rng_;
    TokenHistory history_;
    Candidates cand_;
    std::vector<Candidate> scratch_;
};

}  // namespace ferry::runtime
