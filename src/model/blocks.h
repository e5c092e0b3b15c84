// Blocks shared by the architectures. Each takes a param struct that says everything about the
// variant (which norms, which RoPE, which activation); no block knows which architecture calls it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "model/loader.h"
#include "model/model.h"

namespace ferry::model {

struct AttentionWeights {
    Tensor wq;                     // attn_q      {n_embd, n_head * head_dim}
    Tensor wk;                     // attn_k      {n_embd, n_head_kv * head_dim}
    Tensor wv;                     // attn_v      {n_embd, n_head_kv * head_dim_v}
    Tensor wo;                     // attn_output {n_head * head_dim_v, n_embd}
    std::optional<Tensor> q_norm;  // attn_q_norm {head_dim}: RMSNorm of each query head before RoPE
    std::optional<Tensor> k_norm;  // attn_k_norm {head_dim}
};

struct AttentionParams {
    const AttentionWeights* w = nullptr;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t head_dim_v = 0;
    float norm_eps = 0.0f;  // for q_norm / k_norm
    backend::RopeParams rope;
    float kq_scale = 1.0f;
    int64_t n_swa = 0;  // sliding window (0 = full causal attention)
    // Gated attention (Qwen3.5): attn_q yields {2 * head_dim, n_head, T}, each head [q_h | gate_h]; the
    // attention output is multiplied by sigmoid(gate) before attn_output. wq is then {n_embd, 2 * n_head * head_dim}.
    bool output_gate = false;
};

// Layer il's attn_q, attn_k, attn_v, attn_output, and with qk_norm attn_q_norm / attn_k_norm {head_dim}
// (required), shaped by h.
Result<AttentionWeights> load_attention_weights(const TensorTable& t, int il, const DenseHparams& h, bool qk_norm);

// One KV layer per layer (every layer an attention layer), shaped by h's heads.
std::vector<backend::KvLayerSpec> dense_kv_layers(const DenseHparams& h, int64_t n_ctx, GgmlType type_k,
                                                  GgmlType type_v);

// The usual attention of a DenseHparams model: h's heads and RoPE (mode as given, h.n_rot dims),
// q/k norms with h.rms_eps, scores scaled by 1/sqrt(head_dim), no window.
AttentionParams dense_attention_params(const AttentionWeights* w, const DenseHparams& h, backend::RopeMode mode);

// Self-attention of x {n_embd, T} at positions pos0.. : projections, optional q/k norms, RoPE, writes
// K and V into kv cells [pos0, pos0 + T), attends over cells [0, pos0 + T), output projection.
// -> {n_embd, T}. Names Qcur, Kcur, Vcur, kqv_out (before attn_output) and attn_out.
backend::Act attention(backend::Ops& ops, const backend::Act& x, const AttentionParams& p, std::span<const int32_t> pos,
                       backend::KvHandle kv, int il);

// A Gated DeltaNet layer's weights (Qwen3.5 linear attention; SPEC §2), GGUF's tiled V-head order.
struct GatedDeltaNetWeights {
    Tensor attn_qkv;    // {n_embd, 2 * n_head_k * head_dim_k + n_head_v * head_dim_v}: q | k | v
    Tensor attn_gate;   // {n_embd, n_head_v * head_dim_v}: z
    Tensor ssm_conv1d;  // {conv_kernel, conv channels} F32
    Tensor ssm_dt;      // ssm_dt.bias {n_head_v} F32
    Tensor ssm_a;       // {n_head_v} F32: -exp(A_log)
    Tensor ssm_beta;    // {n_embd, n_head_v}
    Tensor ssm_alpha;   // {n_embd, n_head_v}
    Tensor ssm_norm;    // {head_dim_v} F32: the gated RMSNorm's weight, shared by the heads
    Tensor ssm_out;     // {n_head_v * head_dim_v, n_embd}
};

struct GatedDeltaNetParams {
    const GatedDeltaNetWeights* w = nullptr;
    int64_t n_head_k = 0;
    int64_t n_head_v = 0;
    int64_t head_dim_k = 0;
    int64_t head_dim_v = 0;
    float norm_eps = 0.0f;  // l2 norm of q and k, and the gated RMSNorm
};

// The recurrent state a Gated DeltaNet layer with these params needs.
backend::StateLayerSpec gated_delta_net_state(const GatedDeltaNetParams& p, int64_t conv_kernel);

// The positions of a batch's tokens, in order (each sequence from its own pos0).
std::vector<int32_t> batch_positions(const Batch& batch);

// One sequence of a Batch: its tokens are rows [first, first + n_tokens) of the batch's activations;
// kv and state are its memory (one handle per entry of kv_layers() / state_layers()).
struct SeqRange {
    int64_t first = 0;
    int64_t n_tokens = 0;
    std::span<const backend::KvHandle> kv;
    std::span<const backend::StateHandle> state;
};

// The sequences of a batch: one range over every token with the forward's kv and Batch::state, or one
// per Batch::seqs entry. Checks that every sequence has n_kv KV layers and n_state state layers.
std::vector<SeqRange> seq_ranges(const Batch& batch, std::span<const backend::KvHandle> kv, size_t n_kv,
                                 size_t n_state);

// attention() over the sequences of a batch: the projections run once over all tokens; each
// sequence writes and attends over its own KV layer kv_layer.
backend::Act attention(backend::Ops& ops, const backend::Act& x, const AttentionParams& p,
                       std::span<const SeqRange> seqs, std::span<const int32_t> pos, size_t kv_layer, int il);
// The same with KV layer il of a Batch (models whose every layer is an attention layer).
backend::Act attention(backend::Ops& ops, const backend::Act& x, const AttentionParams& p, const Batch& batch,
                       std::span<const int32_t> pos, std::span<const backend::KvHandle> kv, int il);

// Gated DeltaNet mixer of x {n_embd, T}: projections, causal conv + SiLU, L2-normalized q/k, the delta
// rule, RMSNorm(o) * ssm_norm * silu(z), ssm_out -> {n_embd, T}. Each sequence continues from its own
// state layer state_layer: the conv and the delta rule run per sequence over its rows, everything
// else once over all tokens.
backend::Act gated_delta_net(backend::Ops& ops, const backend::Act& x, const GatedDeltaNetParams& p,
                             std::span<const SeqRange> seqs, size_t state_layer, int il);

enum class GluActivation { Silu, GeluTanh };

struct FfnGluParams {
    const Tensor* gate = nullptr;  // ffn_gate {n_embd, n_ff}
    const Tensor* up = nullptr;    // ffn_up   {n_embd, n_ff}
    const Tensor* down = nullptr;  // ffn_down {n_ff, n_embd}
    GluActivation act = GluActivation::Silu;
};

// down(act(gate x) * up x): x {n_embd, T} -> {n_embd, T}. Names ffn_gate, ffn_up, ffn_out.
backend::Act ffn_glu(backend::Ops& ops, const backend::Act& x, const FfnGluParams& p, int il);

// Final norm and LM head: keeps the last row only unless all_logits, then RMSNorm with output_norm and
// the output matrix -> logits {n_vocab, n_out}. Names result_norm, result_output.
backend::Act output_head(backend::Ops& ops, const backend::Act& x, const Tensor& output_norm, float eps,
                         const Tensor& output, bool all_logits);
// The same for a Batch: with several sequences and no all_logits, the last row of each -> {n_vocab, n_seqs}.
backend::Act output_head(backend::Ops& ops, const backend::Act& x, const Tensor& output_norm, float eps,
                         const Tensor& output, const Batch& batch);

}  // namespace ferry::model
