// A session: one sequence's KV cache and the prefill / decode loop over a model.
//
// prefill(tokens) appends tokens at the end of the sequence, running them in micro-batches of at most
// n_ubatch tokens; decode(token) appends one. Both return logits ([n][n_vocab] for every token when
// asked, otherwise the last token's [n_vocab]). Cell i of the KV cache holds position i.
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
};

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
    // weights are read once for all sequences; returns each session's last-token logits [n_vocab],
    // in order. The sessions must be distinct and share one model and Ops. No micro-batch split:
    // the caller sizes the step. A model without Model::multi_sequence() runs them one by one.
    static Result<std::vector<std::vector<float>>> step(std::span<const SeqStep> steps);

    // Forgets the sequence (the cache is reused from position 0).
    void clear() { n_past_ = 0; }
    // Keeps the first n positions and forgets the rest, so a prompt that shares a prefix with what
    // the cache holds only computes its new part. A KV cache holds each position independently, so
    // dropping the tail is exact. Error if n > n_past().
    Status truncate(int64_t n);

    int64_t n_past() const { return n_past_; }
    int64_t n_ctx() const { return params_.n_ctx; }
    const model::Model& model() const { return *model_; }

private:
    Session(const model::Model& model, backend::Ops& ops, const SessionParams& params)
        : model_(&model), ops_(&ops), params_(params) {}

    Status check_append(std::span<const int32_t> tokens) const;

    const model::Model* model_;
    backend::Ops* ops_;
    SessionParams params_;
    std::vector<backend::KvHandle> kv_;
    int64_t n_past_ = 0;
};

}  // namespace ferry::runtime
