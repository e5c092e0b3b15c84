// A loaded model: typed hyperparameters, the weight table (views into the GGUF file), and a forward
// pass over backend::Ops.
//
// Each architecture lives in its own file (llama.cpp, qwen3.cpp, qwen3moe.cpp, gemma3.cpp, qwen35.cpp,
// qwen35moe.cpp) and is written once, as plain code against Ops; `load` picks it from
// `general.architecture`. The forward of one micro-batch writes the batch's K and V into the KV layers the runtime
// allocated (from `kv_layers`: one per attention layer), advances the recurrent state layers (from `state_layers`: one
// per Gated DeltaNet layer of a hybrid model, none for a plain transformer) and returns the logits.
//
// Lifetime: a Model holds views into the gguf::File it was loaded from; the File must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/reader.h"

namespace ferry::model {

struct ModelInfo {
    std::string arch;  // general.architecture
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_ctx_train = 0;
};

// One sequence's part of a multi-sequence batch: n_tokens consecutive tokens of Batch::tokens at
// positions pos0.. of that sequence, written into its own KV layers and advancing its own recurrent
// state (as Batch::state for a single sequence).
struct SeqSlice {
    int64_t n_tokens = 0;
    int64_t pos0 = 0;
    std::span<const backend::KvHandle> kv;        // one per entry of kv_layers()
    std::span<const backend::StateHandle> state;  // one per entry of state_layers()
};

// One micro-batch: a single sequence (seqs empty), or several sequences side by side (continuous
// batching: the weights are read once for all of them; attention runs per sequence over its own KV).
struct Batch {
    std::span<const int32_t> tokens;  // PRECONDITION: each in [0, n_vocab)
    int64_t pos0 = 0;                 // token i is at position pos0 + i; cells [pos0, pos0 + n) are written
    bool all_logits = false;          // false: logits of the last token only (of each sequence)
    // One handle per entry of Model::state_layers(), holding the sequence's recurrent state after
    // position pos0 - 1 (zeros when pos0 == 0); the forward advances them past the batch.
    std::span<const backend::StateHandle> state;
    // Several sequences: sum of n_tokens == tokens.size(); pos0, state and forward's `kv` are then
    // unused, and without all_logits the logits are of each sequence's last token, in order (with
    // all_logits, every token's, in batch order).
    std::span<const SeqSlice> seqs;
};

class Model {
public:
    virtual ~Model() = default;

    const ModelInfo& info() const { return info_; }

    // The KV layers this model needs for a context of n_ctx positions, one per attention layer.
    virtual std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const = 0;
    // The recurrent state layers of one sequence (f32, constant in the context length); none by default.
    // Unlike KV cells, such a state cannot drop its last tokens: the runtime checkpoints it instead.
    virtual std::vector<backend::StateLayerSpec> state_layers() const { return {}; }

    // Runs one micro-batch. kv has one handle per entry of kv_layers(). Returns logits
    // {n_vocab, n_out}, n_out = tokens.size() or 1. PRECONDITION: pos0 + tokens.size() <= the KV n_ctx.
    virtual backend::Act forward(backend::Ops& ops, const Batch& batch,
                                 std::span<const backend::KvHandle> kv) const = 0;

    // Whether forward accepts Batch::seqs (several sequences in one batch; each sequence's logits
    // then equal what it gets alone, up to float rounding). Without it the runtime runs the sequences
    // one after another.
    virtual bool multi_sequence() const { return false; }

protected:
    ModelInfo info_;
};

// Loads the architecture named by general.architecture: llama, qwen3, qwen3moe, gemma3, qwen35,
// qwen35moe.
Result<std::unique_ptr<Model>> load(const gguf::File& file);

}  // namespace ferry::model
