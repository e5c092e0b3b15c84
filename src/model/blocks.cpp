#include "model/blocks.h"

#include <cmath>

namespace ferry::model {

using backend::Act;
using backend::Ops;

Result<AttentionWeights> load_attention_weights(const TensorTable& t, int il, const DenseHparams& h, bool qk_norm) {
    AttentionWeights a;
    const int64_t n_q = h.n_head * h.head_dim, n_k = h.n_head_kv * h.head_dim, n_v = h.n_head_kv * h.head_dim_v;
    FERRY_ASSIGN(a.wq, t.get(layer_name(il, "attn_q.weight"), {h.n_embd, n_q}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wk, t.get(layer_name(il, "attn_k.weight"), {h.n_embd, n_k}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wv, t.get(layer_name(il, "attn_v.weight"), {h.n_embd, n_v}, WeightKind::Matrix));
    FERRY_ASSIGN(a.wo,
                 t.get(layer_name(il, "attn_output.weight"), {h.head_dim_v * h.n_head, h.n_embd}, WeightKind::Matrix));
    if (qk_norm) {
        FERRY_ASSIGN(a.q_norm, t.get(layer_name(il, "attn_q_norm.weight"), {h.head_dim}, WeightKind::Norm));
        FERRY_ASSIGN(a.k_norm, t.get(layer_name(il, "attn_k_norm.weight"), {h.head_dim}, WeightKind::Norm));
    }
    return a;
}

AttentionParams dense_attention_params(const AttentionWeights* w, const DenseHparams& h, backend::RopeMode mode) {
    return {
        .w = w,
        .n_head = h.n_head,
        .n_head_kv = h.n_head_kv,
        .head_dim = h.head_dim,
        .head_dim_v = h.head_dim_v,
        .norm_eps = h.rms_eps,
        .rope = {.mode = mode, .n_rot = h.n_rot, .freq_base = h.rope_freq_base, .freq_scale = h.rope_freq_scale},
        .kq_scale = 1.0f / std::sqrt(float(h.head_dim)),
    };
}

Act attention(Ops& ops, const Act& x, const AttentionParams& p, std::span<const int32_t> pos, backend::KvHandle kv,
              int il) {
    const AttentionWeights& w = *p.w;
    const int64_t n_tok = x.ne[1];
    FERRY_CHECK(int64_t(pos.size()) == n_tok && n_tok > 0);
    const int64_t pos0 = pos[0];
    for (int64_t t = 0; t < n_tok; ++t) FERRY_CHECK(pos[size_t(t)] == pos0 + t);  // cell = position

    Act q = ops.matmul(w.wq, x);
    std::optional<Act> gate;
    if (p.output_gate) {
        ops.name(q, "Qcur_full", il);
        const Act qg = backend::reshape(q, {2 * p.head_dim, p.n_head, n_tok, 1});
        q = ops.cols(qg, 0, p.head_dim);
        gate = backend::reshape(ops.cols(qg, p.head_dim, p.head_dim), {p.head_dim * p.n_head, n_tok, 1, 1});
        ops.name(*gate, "gate", il);
    }
    ops.name(q, "Qcur", il);
    Act k = ops.matmul(w.wk, x);
    ops.name(k, "Kcur", il);
    Act v = ops.matmul(w.wv, x);
    ops.name(v, "Vcur", il);

    q = backend::reshape(q, {p.head_dim, p.n_head, n_tok, 1});
    k = backend::reshape(k, {p.head_dim, p.n_head_kv, n_tok, 1});
    v = backend::reshape(v, {p.head_dim_v, p.n_head_kv, n_tok, 1});
    if (w.q_norm) {
        q = ops.rms_norm(q, &*w.q_norm, p.norm_eps);
        ops.name(q, "Qcur_normed", il);
    }
    if (w.k_norm) {
        k = ops.rms_norm(k, &*w.k_norm, p.norm_eps);
        ops.name(k, "Kcur_normed", il);
    }
    q = ops.rope(q, pos, p.rope);
    k = ops.rope(k, pos, p.rope);

    ops.kv_write(kv, k, v, pos0);
    const backend::AttnParams ap{.kq_scale = p.kq_scale, .n_kv = pos0 + n_tok, .n_swa = p.n_swa};
    Act o = ops.attention(q, kv, pos, ap);
    o = backend::reshape(o, {p.head_dim_v * p.n_head, n_tok, 1, 1});
    ops.name(o, "kqv_out", il);
    if (gate) {
        o = ops.mul(o, ops.sigmoid(*gate));
        ops.name(o, "attn_gated", il);
    }
    o = ops.matmul(w.wo, o);
    ops.name(o, "attn_out", il);
    return o;
}

backend::StateLayerSpec gated_delta_net_state(const GatedDeltaNetParams& p, int64_t conv_kernel) {
    return {.n_conv_channels = 2 * p.n_head_k * p.head_dim_k + p.n_head_v * p.head_dim_v,
            .conv_kernel = conv_kernel,
            .n_head_v = p.n_head_v,
            .head_dim_k = p.head_dim_k,
            .head_dim_v = p.head_dim_v};
}

Act gated_delta_net(Ops& ops, const Act& x, const GatedDeltaNetParams& p, backend::StateHandle state, int il) {
    const GatedDeltaNetWeights& w = *p.w;
    const int64_t n_tok = x.ne[1], n_qk = p.n_head_k * p.head_dim_k, n_v = p.n_head_v * p.head_dim_v;

    Act qkv = ops.matmul(w.attn_qkv, x);
    ops.name(qkv, "linear_attn_qkv_mixed", il);
    Act z = ops.matmul(w.attn_gate, x);
    ops.name(z, "z", il);
    Act beta = ops.matmul(w.ssm_beta, x);
    ops.name(beta, "beta", il);
    Act alpha = ops.matmul(w.ssm_alpha, x);
    ops.name(alpha, "alpha", il);

    Act conv = ops.ssm_conv(qkv, w.ssm_conv1d, state);
    ops.name(conv, "conv_output_silu", il);
    Act q = backend::reshape(ops.cols(conv, 0, n_qk), {p.head_dim_k, p.n_head_k, n_tok, 1});
    Act k = backend::reshape(ops.cols(conv, n_qk, n_qk), {p.head_dim_k, p.n_head_k, n_tok, 1});
    const Act v = backend::reshape(ops.cols(conv, 2 * n_qk, n_v), {p.head_dim_v, p.n_head_v, n_tok, 1});
    q = ops.l2_norm(q, p.norm_eps);
    ops.name(q, "q_conv_predelta", il);
    k = ops.l2_norm(k, p.norm_eps);
    ops.name(k, "k_conv_predelta", il);
    ops.name(v, "v_conv_predelta", il);

    Act o = ops.gated_delta_net(q, k, v, alpha, beta, {.ssm_a = &w.ssm_a, .dt_bias = &w.ssm_dt, .state = state});
    ops.name(o, "attn_output", il);
    o = ops.rms_norm(o, &w.ssm_norm, p.norm_eps);
    o = ops.mul(o, ops.silu(backend::reshape(z, o.ne)));
    o = backend::reshape(o, {n_v, n_tok, 1, 1});
    ops.name(o, "final_output", il);
    o = ops.matmul(w.ssm_out, o);
    ops.name(o, "linear_attn_out", il);
    return o;
}

Act ffn_glu(Ops& ops, const Act& x, const FfnGluParams& p, int il) {
    Act gate = ops.matmul(*p.gate, x);
    ops.name(gate, "ffn_gate", il);
    Act up = ops.matmul(*p.up, x);
    ops.name(up, "ffn_up", il);
    Act h = p.act == GluActivation::Silu ? ops.swiglu(gate, up) : ops.geglu(gate, up);
    Act out = ops.matmul(*p.down, h);
    ops.name(out, "ffn_out", il);
    return out;
}

Act output_head(Ops& ops, const Act& x, const Tensor& output_norm, float eps, const Tensor& output, bool all_logits) {
    Act cur = all_logits ? x : ops.rows(x, x.n_rows() - 1, 1);
    cur = ops.rms_norm(cur, &output_norm, eps);
    ops.name(cur, "result_norm");
    cur = ops.matmul(output, cur);
    ops.name(cur, "result_output");
    return cur;
}

}  // namespace ferry::model
