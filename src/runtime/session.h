// A session: one sequence's KV cache and recurrent state, and the prefill / decode loop over a model.
//
// prefill(tokens) appends tokens at the end of the sequence, running them in micro-batches of at most
// n_ubatch tokens; decode(token) appends one. Both return logits ([n][n_vocab] for every token when
// asked, otherwise the last token's [n_vocab]). Cell i of the KV cache holds position i.
//
// Hybrid models (Qwen3.5: Gated DeltaNet layers) also carry a recurrent state per sequence, which sums
// up every token seen and so cannot simply forget its last tokens the way KV cells can. The session
// therefore keeps checkpoints: host copies of the whole recurrent state at chosen positions, taken
// automatically at the end of every prefill of more than one token (a prompt: the next turn of a
// conversation shares it as a prefix) and on request (checkpoint(), e.g. before a speculative draft
// is verified). truncate(n) restores the newest checkpoint at or before n and recomputes the tokens
// from there to n (the session remembers its tokens); with no usable checkpoint that is everything
// from position 0, which truncate reports through last_truncate_recomputed(). The llama.cpp failure to
// avoid (#21831) is a multi-turn cache that silently reprocesses the whole conversation.
//
// The session keeps references to the model and the Ops implementation; both must outlive it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "model/model.h"

namespace ferry::runtime {

struct SessionParams {
    int64_t n_ctx = 0;       // positions the KV cache holds; 0 = the model's training context
    int64_t n_ubatch = 512;  // tokens per forward call
    // KV cache types of K and V (llama.cpp's -ctk / -ctv), each one of backend::kv_cache_type_supported();
    // a block type needs head sizes that are multiples of its block size.
    GgmlType kv_type_k = GgmlType::F16;
    GgmlType kv_type_v = GgmlType::F16;
    // llama.cpp's -fa on (true; also what -fa auto means on a CPU) or off: which of llama.cpp's attention
    // computations the CPU backend reproduces (backend::KvLayerSpec::flash_attn).
    bool flash_attn = true;
    // Recurrent-state checkpoints kept per sequence (hybrid models only; the oldest is dropped first).
    // Each costs MemoryUse::state_bytes of host memory.
    int64_t n_checkpoints = 4;
    // Steps of several sequences (step) in ggml's float order, each sequence's logits bit-identical to what
    // it gets alone; false lets the backend take a faster order there (Ops::set_batched_step).
    bool exact_batches = false;
};

// The memory one sequence needs, as the model declares it.
struct MemoryUse {
    uint64_t kv_bytes = 0;            // KV cache of all attention layers for n_ctx positions
    uint64_t kv_bytes_per_token = 0;  // the same for one position
    uint64_t state_bytes = 0;         // recurrent state (conv + SSM), f32, independent of n_ctx
    int64_t n_kv_layers = 0;
    int64_t n_state_layers = 0;
};
MemoryUse memory_use(const std::vector<backend::KvLayerSpec>& kv, const std::vector<backend::StateLayerSpec>& state);
MemoryUse memory_use(const model::Model& model, int64_t n_ctx, GgmlType type_k, GgmlType type_v);

enum class Logits { Last, All };

class Session;

// One session's part of a multi-sequence step (Session::step).
struct SeqStep {
    Session* session = nullptr;
    std::span<const int32_t> tokens;  // at least one
};

class Session {
public:
    static Result<Session> create(const model::Model& model, backend::Ops& ops, const SessionParams& params);

    // Appends tokens (at least one). All: logits of every token, [tokens.size()][n_vocab].
    Result<std::vector<float>> prefill(std::span<const int32_t> tokens, Logits which = Logits::Last);
    // Appends one token; its logits [n_vocab].
    Result<std::vector<float>> decode(int32_t token);

    // Continuous batching: appends each step's tokens to its session in ONE forward pass, so the
    // weights are read once for all sequences; returns each session's logits, in order: the last
    // token's [n_vocab], or with All every token's [tokens.size()][n_vocab]. The sessions must be
    // distinct and share one model and Ops. No micro-batch split: the caller sizes the step. A
    // step of more than one token checkpoints the session's recurrent state, as prefill does. A
    // model without Model::multi_sequence() runs them one by one.
    static Result<std::vector<std::vector<float>>> step(std::span<const SeqStep> steps, Logits which = Logits::Last);

    // Forgets the sequence (the cache is reused from position 0; the recurrent state is zeroed).
    void clear();
    // Keeps the first n positions and forgets the rest, so a prompt that shares a prefix with what
    // the cache holds only computes its new part. A KV cache holds each position independently, so
    // dropping the tail is exact; a recurrent state is restored from a checkpoint and the tokens after
    // it recomputed (see above). Error if n > n_past().
    Status truncate(int64_t n);
    // Tokens the last truncate recomputed (0 for a model without recurrent state, or an exact checkpoint).
    int64_t last_truncate_recomputed() const { return last_recomputed_; }
    // How many tokens truncate(n) would recompute now.
    int64_t truncate_cost(int64_t n) const;
    // Saves the recurrent state at the current position (no-op for models without one).
    void checkpoint();
    // Positions that have a checkpoint, oldest first.
    std::vector<int64_t> checkpoint_positions() const;
    MemoryUse memory() const;

    int64_t n_past() const { return n_past_; }
    int64_t n_ctx() const { return params_.n_ctx; }
    const model::Model& model() const { return *model_; }

private:
    Session(const model::Model& model, backend::Ops& ops, const SessionParams& params)
        : model_(&model), ops_(&ops), params_(params) {}

    struct Checkpoint {
        int64_t n_past = 0;
        std::vector<float> state;  // every state layer's state_get, concatenated
    };
    // The newest checkpoint at or before n; nullptr if none.
    const Checkpoint* checkpoint_at_or_before(int64_t n) const;
    void restore(const Checkpoint* c);  // nullptr: the zero state of position 0
    Result<std::vector<float>> run(std::span<const int32_t> tokens, Logits which);
    Status check_append(std::span<const int32_t> tokens) const;

    const model::Model* model_;
    backend::Ops* ops_;
    SessionParams params_;
    std::vector<backend::KvHandle> kv_;
    std::vector<backend::StateLayerSpec> state_specs_;
    std::vector<backend::StateHandle> state_;
    std::vector<int32_t> tokens_;  // the sequence so far (recomputation after a restore)
    std::vector<Checkpoint> checkpoints_;
    int64_t n_past_ = 0;
    int64_t last_recomputed_ = 0;
};

}  // namespace ferry::runtime
