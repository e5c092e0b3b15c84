// What the Qwen3.5 hybrids (qwen35 dense, qwen35moe) share: hyperparameters of the Gated DeltaNet and
// gated-attention layers, their tensor tables, the KV / recurrent-state layout, and the MTP block's
// extra weights.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "model/blocks.h"
#include "model/loader.h"

namespace ferry::model {

struct HybridHparams {
    DenseHparams base;        // n_layer = block_count - nextn_predict_layers (the trunk); n_ff 0 for MoE
    int64_t n_nextn = 0;      // nextn_predict_layers: MTP blocks after the trunk
    int64_t conv_kernel = 0;  // ssm.conv_kernel
    int64_t head_dim_k = 0;   // ssm.state_size: GDN q/k head size
    int64_t n_head_k = 0;     // ssm.group_count: GDN q/k heads
    int64_t n_head_v = 0;     // ssm.time_step_rank: GDN v heads
    int64_t head_dim_v = 0;   // ssm.inner_size / n_head_v
    int64_t full_attention_interval = 0;

    // Layer il of the trunk is Gated DeltaNet unless (il + 1) % full_attention_interval == 0; MTP
    // blocks are full attention.
    bool is_recurrent(int64_t il) const { return il < base.n_layer && (il + 1) % full_attention_interval != 0; }
    size_t n_recurrent_layers() const;
    size_t n_attention_layers() const { return size_t(base.n_layer) - n_recurrent_layers(); }
};

// Reads `<arch>.` keys; has_dense_ffn: feed_forward_length is required (qwen35) or absent (qwen35moe).
Result<HybridHparams> load_hybrid_hparams(const HparamReader& r, const gguf::File& file, bool has_dense_ffn);

// One KV layer per full-attention layer of the trunk, in layer order.
std::vector<backend::KvLayerSpec> hybrid_kv_layers(const HybridHparams& hp, int64_t n_ctx, GgmlType type_k,
                                                   GgmlType type_v);
// One recurrent state layer per Gated DeltaNet layer, in layer order.
std::vector<backend::StateLayerSpec> hybrid_state_layers(const HybridHparams& hp);

Result<GatedDeltaNetWeights> load_gated_delta_net(const TensorTable& t, const HybridHparams& hp, int il);
// attn_q {n_embd, 2 * n_head * head_dim} (q and gate interleaved per head), attn_k, attn_v, attn_output,
// attn_q_norm, attn_k_norm.
Result<AttentionWeights> load_gated_attention(const TensorTable& t, const HybridHparams& hp, int il);

GatedDeltaNetParams gdn_params(const HybridHparams& hp, const GatedDeltaNetWeights& w);
AttentionParams gated_attention_params(const HybridHparams& hp, const AttentionWeights& w);

// The token mixer of one layer: Gated DeltaNet or gated full attention, as hp.is_recurrent(il) says.
struct HybridMixer {
    bool recurrent = false;
    GatedDeltaNetWeights gdn;  // when recurrent
    AttentionWeights attn;     // otherwise
};
Result<HybridMixer> load_hybrid_mixer(const TensorTable& t, const HybridHparams& hp, int il);

// The batch's sequences and which of their KV / recurrent state layers the next layer uses (the
// forward walks both in layer order).
struct HybridMemory {
    std::span<const SeqRange> seqs;
    size_t next_kv = 0, next_state = 0;
};

// The mixer of cur = attn_norm(x) {n_embd, T} at positions pos -> {n_embd, T}, each sequence of
// mem.seqs through its own KV or state layer.
backend::Act hybrid_mixer(backend::Ops& ops, const backend::Act& cur, const HybridHparams& hp, const HybridMixer& m,
                          std::span<const int32_t> pos, HybridMemory& mem, int il);

// The multi-token-prediction block's own weights (blk.<n_layer>.nextn.*), besides its decoder block.
struct NextnWeights {
    Tensor eh_proj;                          // {2 * n_embd, n_embd}: [enorm(embedding) ; hnorm(hidden)]
    Tensor enorm;                            // {n_embd}
    Tensor hnorm;                            // {n_embd}
    std::optional<Tensor> shared_head_norm;  // {n_embd}
    std::optional<Tensor> shared_head_head;  // {n_embd, n_vocab}; the trunk's output when absent
    std::optional<Tensor> embed_tokens;      // {n_embd, n_vocab}; token_embd when absent
};
Result<NextnWeights> load_nextn(const TensorTable& t, const DenseHparams& h, int il);

}  // namespace ferry::model
