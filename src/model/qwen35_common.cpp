#include "model/qwen35_common.h"

#include <cmath>
#include <string>

namespace ferry::model {

size_t HybridHparams::n_recurrent_layers() const {
    size_t n = 0;
    for (int64_t il = 0; il < base.n_layer; ++il) n += is_recurrent(il);
    return n;
}

Result<HybridHparams> load_hybrid_hparams(const HparamReader& r, const gguf::File& file, bool has_dense_ffn) {
    HybridHparams hp;
    FERRY_ASSIGN(hp.base, load_dense_hparams(r, file, /*require_ffn=*/has_dense_ffn));
    DenseHparams& h = hp.base;
    FERRY_ASSIGN(const uint32_t nextn, r.u32_or("nextn_predict_layers", 0));
    if (nextn >= h.n_layer)
        return bad_key(
            r.key("nextn_predict_layers"),
            "= " + std::to_string(nextn) + " leaves no trunk layers of block_count = " + std::to_string(h.n_layer));
    hp.n_nextn = nextn;
    h.n_layer -= nextn;

    FERRY_ASSIGN(hp.conv_kernel, r.u32("ssm.conv_kernel"));
    FERRY_ASSIGN(hp.head_dim_k, r.u32("ssm.state_size"));
    FERRY_ASSIGN(hp.n_head_k, r.u32("ssm.group_count"));
    FERRY_ASSIGN(hp.n_head_v, r.u32("ssm.time_step_rank"));
    FERRY_ASSIGN(const uint32_t inner, r.u32("ssm.inner_size"));
    FERRY_ASSIGN(hp.full_attention_interval, r.u32_or("full_attention_interval", 4));
    if (hp.conv_kernel == 0) return bad_key(r.key("ssm.conv_kernel"), "must be positive");
    if (hp.head_dim_k == 0) return bad_key(r.key("ssm.state_size"), "must be positive");
    if (hp.n_head_k == 0) return bad_key(r.key("ssm.group_count"), "must be positive");
    if (hp.n_head_v == 0 || hp.n_head_v % hp.n_head_k != 0)
        return bad_key(r.key("ssm.time_step_rank"),
                       "= " + std::to_string(hp.n_head_v) +
                           " must be a positive multiple of ssm.group_count = " + std::to_string(hp.n_head_k));
    if (inner == 0 || inner % hp.n_head_v != 0)
        return bad_key(r.key("ssm.inner_size"),
                       "= " + std::to_string(inner) +
                           " must be a positive multiple of ssm.time_step_rank = " + std::to_string(hp.n_head_v));
    hp.head_dim_v = inner / hp.n_head_v;
    if (hp.full_attention_interval == 0) return bad_key(r.key("full_attention_interval"), "must be positive");
    if (file.find(r.key("attention.recurrent_layers")) != nullptr)
        return bad_key(r.key("attention.recurrent_layers"),
                       "an explicit layer pattern is not supported (full_attention_interval only)");
    return hp;
}

std::vector<backend::KvLayerSpec> hybrid_kv_layers(const HybridHparams& hp, int64_t n_ctx, GgmlType type_k,
                                                   GgmlType type_v) {
    const DenseHparams& h = hp.base;
    return std::vector<backend::KvLayerSpec>(hp.n_attention_layers(),
                                             {n_ctx, h.n_head_kv, h.head_dim, h.head_dim_v, type_k, type_v});
}

std::vector<backend::StateLayerSpec> hybrid_state_layers(const HybridHparams& hp) {
    const GatedDeltaNetParams p = gdn_params(hp, GatedDeltaNetWeights{});
    return std::vector<backend::StateLayerSpec>(hp.n_recurrent_layers(), gated_delta_net_state(p, hp.conv_kernel));
}

Result<GatedDeltaNetWeights> load_gated_delta_net(const TensorTable& t, const HybridHparams& hp, int il) {
    const int64_t n_embd = hp.base.n_embd, n_v = hp.n_head_v * hp.head_dim_v;
    const int64_t n_conv = 2 * hp.n_head_k * hp.head_dim_k + n_v;
    GatedDeltaNetWeights w;
    FERRY_ASSIGN(w.attn_qkv, t.get(layer_name(il, "attn_qkv.weight"), {n_embd, n_conv}, WeightKind::Matrix));
    FERRY_ASSIGN(w.attn_gate, t.get(layer_name(il, "attn_gate.weight"), {n_embd, n_v}, WeightKind::Matrix));
    FERRY_ASSIGN(w.ssm_conv1d, t.get(layer_name(il, "ssm_conv1d.weight"), {hp.conv_kernel, n_conv}, WeightKind::Norm));
    FERRY_ASSIGN(w.ssm_dt, t.get(layer_name(il, "ssm_dt.bias"), {hp.n_head_v}, WeightKind::Norm));
    FERRY_ASSIGN(w.ssm_a, t.get(layer_name(il, "ssm_a"), {hp.n_head_v}, WeightKind::Norm));
    FERRY_ASSIGN(w.ssm_beta, t.get(layer_name(il, "ssm_beta.weight"), {n_embd, hp.n_head_v}, WeightKind::Matrix));
    FERRY_ASSIGN(w.ssm_alpha, t.get(layer_name(il, "ssm_alpha.weight"), {n_embd, hp.n_head_v}, WeightKind::Matrix));
    FERRY_ASSIGN(w.ssm_norm, t.get(layer_name(il, "ssm_norm.weight"), {hp.head_dim_v}, WeightKind::Norm));
    FERRY_ASSIGN(w.ssm_out, t.get(layer_name(il, "ssm_out.weight"), {n_v, n_embd}, WeightKind::Matrix));
    return w;
}

Result<AttentionWeights> load_gated_attention(const TensorTable& t, const HybridHparams& hp, int il) {
    const DenseHparams& h = hp.base;
    AttentionWeights a;
    FERRY_ASSIGN(a.wq,
                 t.get(layer_name(il, "attn_q.weight"), {h.n_embd, 2 * h.n_head * h.head_dim}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wk,
                 t.get(layer_name(il, "attn_k.weight"), {h.n_embd, h.n_head_kv * h.head_dim}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wv,
                 t.get(layer_name(il, "attn_v.weight"), {h.n_embd, h.n_head_kv * h.head_dim_v}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wo,
                 t.get(layer_name(il, "attn_output.weight"), {h.n_head * h.head_dim_v, h.n_embd}, WeightKind::Matrix));
    FERRY_ASSIGN(a.q_norm, t.get(layer_name(il, "attn_q_norm.weight"), {h.head_dim}, WeightKind::Norm));
    FERRY_ASSIGN(a.k_norm, t.get(layer_name(il, "attn_k_norm.weight"), {h.head_dim}, WeightKind::Norm));
    return a;
}

GatedDeltaNetParams gdn_params(const HybridHparams& hp, const GatedDeltaNetWeights& w) {
    return {.w = &w,
            .n_head_k = hp.n_head_k,
            .n_head_v = hp.n_head_v,
            .head_dim_k = hp.head_dim_k,
            .head_dim_v = hp.head_dim_v,
            .norm_eps = hp.base.rms_eps};
}

AttentionParams gated_attention_params(const HybridHparams& hp, const AttentionWeights& w) {
    const DenseHparams& h = hp.base;
    return {
        .w = &w,
        .n_head = h.n_head,
        .n_head_kv = h.n_head_kv,
        .head_dim = h.head_dim,
        .head_dim_v = h.head_dim_v,
        .norm_eps = h.rms_eps,
        .rope = {.mode = backend::RopeMode::Neox,
                 .n_rot = h.n_rot,
                 .freq_base = h.rope_freq_base,
                 .freq_scale = h.rope_freq_scale},
        .kq_scale = 1.0f / std::sqrt(float(h.head_dim)),
        .output_gate = true,
    };
}

Result<HybridMixer> load_hybrid_mixer(const TensorTable& t, const HybridHparams& hp, int il) {
    HybridMixer m;
    m.recurrent = hp.is_recurrent(il);
    if (m.recurrent) {
        FERRY_ASSIGN(m.gdn, load_gated_delta_net(t, hp, il));
    } else {
        FERRY_ASSIGN(m.attn, load_gated_attention(t, hp, il));
    }
    return m;
}

backend::Act hybrid_mixer(backend::Ops& ops, const backend::Act& cur, const HybridHparams& hp, const HybridMixer& m,
                          std::span<const int32_t> pos, HybridMemory& mem, int il) {
    FERRY_CHECK(!mem.seqs.empty());
    if (m.recurrent) {
        FERRY_CHECK(mem.next_state < mem.seqs[0].state.size());
        return gated_delta_net(ops, cur, gdn_params(hp, m.gdn), mem.seqs, mem.next_state++, il);
    }
    FERRY_CHECK(mem.next_kv < mem.seqs[0].kv.size());
    return attention(ops, cur, gated_attention_params(hp, m.attn), mem.seqs, pos, mem.next_kv++, il);
}

Result<NextnWeights> load_nextn(const TensorTable& t, const DenseHparams& h, int il) {
    NextnWeights n;
    FERRY_ASSIGN(n.eh_proj,
                 t.get(layer_name(il, "nextn.eh_proj.weight"), {2 * h.n_embd, h.n_embd}, WeightKind::Matrix));
    FERRY_ASSIGN(n.enorm, t.get(layer_name(il, "nextn.enorm.weight"), {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(n.hnorm, t.get(layer_name(il, "nextn.hnorm.weight"), {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(n.shared_head_norm,
                 t.get_optional(layer_name(il, "nextn.shared_head_norm.weight"), {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(n.shared_head_head, t.get_optional(layer_name(il, "nextn.shared_head_head.weight"),
                                                    {h.n_embd, h.n_vocab}, WeightKind::Matrix));
    FERRY_ASSIGN(n.embed_tokens, t.get_optional(layer_name(il, "nextn.embed_tokens.weight"), {h.n_embd, h.n_vocab},
                                                WeightKind::Matrix));
    return n;
}

}  // namespace ferry::model
