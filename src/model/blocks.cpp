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

std::vector<backend::KvLayerSpec> dense_kv_layers(const DenseHparams& h, int64_t n_ctx, GgmlType type_k,
                                                  GgmlType type_v) {
    return std::vector<backend::KvLayerSpec>(size_t(h.n_layer),
                                             {n_ctx, h.n_head_kv, h.head_dim, h.head_dim_v, type_k, type_v});
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

namespace {

struct Qkv {
    Act q, k, v;              // {head_dim, n_head, T}, {head_dim, n_head_kv, T}, {head_dim_v, n_head_kv, T}
    std::optional<Act> gate;  // {head_dim * n_head, T}: the sigmoid output gate (AttentionParams::output_gate)
};

// Projections, optional per-head norms and RoPE of all T tokens.
Qkv project_qkv(Ops& ops, const Act& x, const AttentionParams& p, std::span<const int32_t> pos, int il) {
    const AttentionWeights& w = *p.w;
    const int64_t n_tok = x.ne[1];
    const Tensor* ws[3] = {&w.wq, &w.wk, &w.wv};
    std::vector<Act> qkv = ops.matmul_many(ws, x);
    Act q = qkv[0];
    std::optional<Act> gate;
    if (p.output_gate) {
        ops.name(q, "Qcur_full", il);
        const Act qg = backend::reshape(q, {2 * p.head_dim, p.n_head, n_tok, 1});
        q = ops.cols(qg, 0, p.head_dim);
        gate = backend::reshape(ops.cols(qg, p.head_dim, p.head_dim), {p.head_dim * p.n_head, n_tok, 1, 1});
        ops.name(*gate, "gate", il);
    }
    ops.name(q, "Qcur", il);
    Act k = qkv[1];
    ops.name(k, "Kcur", il);
    Act v = qkv[2];
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
    return {q, k, v, gate};
}

// Writes one sequence's K/V (k, v: its tokens) into its cells [pos0, pos0 + T); its attention over
// cells [0, pos0 + T), queries from token `first` of the micro-batch on.
backend::AttnSeq write_kv(Ops& ops, const Act& k, const Act& v, const AttentionParams& p, std::span<const int32_t> pos,
                          backend::KvHandle kv, int64_t first) {
    const int64_t pos0 = pos[0];
    for (size_t i = 0; i < pos.size(); ++i) FERRY_CHECK(pos[i] == pos0 + int64_t(i));  // cell = position
    ops.kv_write(kv, k, v, pos0);
    return {.kv = kv,
            .first = first,
            .pos = pos,
            .p = {.kq_scale = p.kq_scale, .n_kv = pos0 + int64_t(pos.size()), .n_swa = p.n_swa}};
}

// kqv_out times the optional sigmoid gate, then attn_output.
Act output_projection(Ops& ops, const Act& o, const std::optional<Act>& gate, const AttentionParams& p, int64_t n_tok,
                      int il) {
    Act flat = backend::reshape(o, {p.head_dim_v * p.n_head, n_tok, 1, 1});
    ops.name(flat, "kqv_out", il);
    if (gate) {
        flat = ops.mul(flat, ops.sigmoid(*gate));
        ops.name(flat, "attn_gated", il);
    }
    Act out = ops.matmul(p.w->wo, flat);
    ops.name(out, "attn_out", il);
    return out;
}

// Rows [first, first + n) of a per-head activation {d, heads, T} -> {d, heads, n}.
Act token_rows(Ops& ops, const Act& a, int64_t first, int64_t n) {
    const Act flat = backend::reshape(a, {a.ne[0] * a.ne[1], a.ne[2], 1, 1});
    return backend::reshape(ops.rows(flat, first, n), {a.ne[0], a.ne[1], n, 1});
}

}  // namespace

Act attention(Ops& ops, const Act& x, const AttentionParams& p, std::span<const int32_t> pos, backend::KvHandle kv,
              int il) {
    const int64_t n_tok = x.ne[1];
    FERRY_CHECK(int64_t(pos.size()) == n_tok && n_tok > 0);
    const Qkv t = project_qkv(ops, x, p, pos, il);
    const backend::AttnSeq a = write_kv(ops, t.k, t.v, p, pos, kv, 0);
    return output_projection(ops, ops.attention(t.q, a.kv, a.pos, a.p), t.gate, p, n_tok, il);
}

std::vector<int32_t> batch_positions(const Batch& batch) {
    std::vector<int32_t> pos(batch.tokens.size());
    if (batch.seqs.empty()) {
        for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(batch.pos0 + int64_t(i));
        return pos;
    }
    size_t i = 0;
    for (const SeqSlice& s : batch.seqs) {
        for (int64_t j = 0; j < s.n_tokens; ++j) {
            FERRY_CHECK(i < pos.size());
            pos[i++] = int32_t(s.pos0 + j);
        }
    }
    FERRY_CHECK(i == pos.size());
    return pos;
}

std::vector<SeqRange> seq_ranges(const Batch& batch, std::span<const backend::KvHandle> kv, size_t n_kv,
                                 size_t n_state) {
    std::vector<SeqRange> out;
    if (batch.seqs.empty()) {
        out.push_back({.first = 0, .n_tokens = int64_t(batch.tokens.size()), .kv = kv, .state = batch.state});
    } else {
        int64_t first = 0;
        for (const SeqSlice& s : batch.seqs) {
            out.push_back({.first = first, .n_tokens = s.n_tokens, .kv = s.kv, .state = s.state});
            first += s.n_tokens;
        }
        FERRY_CHECK(first == int64_t(batch.tokens.size()));
    }
    for (const SeqRange& r : out) FERRY_CHECK(r.n_tokens > 0 && r.kv.size() == n_kv && r.state.size() == n_state);
    return out;
}

Act attention(Ops& ops, const Act& x, const AttentionParams& p, std::span<const SeqRange> seqs,
              std::span<const int32_t> pos, size_t kv_layer, int il) {
    const int64_t n_tok = x.ne[1];
    FERRY_CHECK(int64_t(pos.size()) == n_tok && n_tok > 0 && !seqs.empty());
    if (seqs.size() == 1) return attention(ops, x, p, pos, seqs[0].kv[kv_layer], il);
    const Qkv t = project_qkv(ops, x, p, pos, il);
    // Each sequence's K / V into its own cells, then every sequence's attention in one call.
    std::vector<backend::AttnSeq> as;
    as.reserve(seqs.size());
    for (const SeqRange& s : seqs)
        as.push_back(write_kv(ops, token_rows(ops, t.k, s.first, s.n_tokens), token_rows(ops, t.v, s.first, s.n_tokens),
                              p, pos.subspan(size_t(s.first), size_t(s.n_tokens)), s.kv[kv_layer], s.first));
    return output_projection(ops, ops.attention_seqs(t.q, as), t.gate, p, n_tok, il);
}

Act attention(Ops& ops, const Act& x, const AttentionParams& p, const Batch& batch, std::span<const int32_t> pos,
              std::span<const backend::KvHandle> kv, int il) {
    if (batch.seqs.empty()) return attention(ops, x, p, pos, kv[size_t(il)], il);
    const size_t n_kv = batch.seqs[0].kv.size();
    FERRY_CHECK(size_t(il) < n_kv);
    const std::vector<SeqRange> seqs = seq_ranges(batch, kv, n_kv, batch.seqs[0].state.size());
    return attention(ops, x, p, seqs, pos, size_t(il), il);
}

backend::StateLayerSpec gated_delta_net_state(const GatedDeltaNetParams& p, int64_t conv_kernel) {
    return {.n_conv_channels = 2 * p.n_head_k * p.head_dim_k + p.n_head_v * p.head_dim_v,
            .conv_kernel = conv_kernel,
            .n_head_v = p.n_head_v,
            .head_dim_k = p.head_dim_k,
            .head_dim_v = p.head_dim_v};
}

Act gated_delta_net(Ops& ops, const Act& x, const GatedDeltaNetParams& p, std::span<const SeqRange> seqs,
                    size_t state_layer, int il) {
    const GatedDeltaNetWeights& w = *p.w;
    const int64_t n_tok = x.ne[1], n_qk = p.n_head_k * p.head_dim_k, n_v = p.n_head_v * p.head_dim_v;
    FERRY_CHECK(!seqs.empty());

    const Tensor* ws[4] = {&w.attn_qkv, &w.attn_gate, &w.ssm_beta, &w.ssm_alpha};
    const std::vector<Act> proj = ops.matmul_many(ws, x);
    const Act& qkv = proj[0];
    ops.name(qkv, "linear_attn_qkv_mixed", il);
    const Act& z = proj[1];
    ops.name(z, "z", il);
    const Act& beta = proj[2];
    ops.name(beta, "beta", il);
    const Act& alpha = proj[3];
    ops.name(alpha, "alpha", il);

    // The conv and the delta rule continue each sequence's own state; with one sequence they run
    // over the whole activations, otherwise over each sequence's rows, stacked afterwards.
    const bool one = seqs.size() == 1;
    const auto seq_rows = [&](const Act& a, const SeqRange& s) {  // a {n, T}
        return one ? a : ops.rows(a, s.first, s.n_tokens);
    };
    const auto seq_head_rows = [&](const Act& a, const SeqRange& s) {  // a {head_dim, heads, T}
        return one ? a : token_rows(ops, a, s.first, s.n_tokens);
    };
    std::vector<Act> parts;
    for (const SeqRange& s : seqs) parts.push_back(ops.ssm_conv(seq_rows(qkv, s), w.ssm_conv1d, s.state[state_layer]));
    Act conv = one ? parts[0] : ops.concat_rows(parts);
    ops.name(conv, "conv_output_silu", il);
    Act q = backend::reshape(ops.cols(conv, 0, n_qk), {p.head_dim_k, p.n_head_k, n_tok, 1});
    Act k = backend::reshape(ops.cols(conv, n_qk, n_qk), {p.head_dim_k, p.n_head_k, n_tok, 1});
    const Act v = backend::reshape(ops.cols(conv, 2 * n_qk, n_v), {p.head_dim_v, p.n_head_v, n_tok, 1});
    q = ops.l2_norm(q, p.norm_eps);
    ops.name(q, "q_conv_predelta", il);
    k = ops.l2_norm(k, p.norm_eps);
    ops.name(k, "k_conv_predelta", il);
    ops.name(v, "v_conv_predelta", il);

    parts.clear();
    for (const SeqRange& s : seqs) {
        const backend::GdnParams gp{.ssm_a = &w.ssm_a, .dt_bias = &w.ssm_dt, .state = s.state[state_layer]};
        parts.push_back(ops.gated_delta_net(seq_head_rows(q, s), seq_head_rows(k, s), seq_head_rows(v, s),
                                            seq_rows(alpha, s), seq_rows(beta, s), gp));
    }
    Act o = one ? parts[0] : backend::reshape(ops.concat_rows(parts), {p.head_dim_v, p.n_head_v, n_tok, 1});
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
    const Tensor* ws[2] = {p.gate, p.up};
    const std::vector<Act> gate_up = ops.matmul_many(ws, x);
    const Act& gate = gate_up[0];
    ops.name(gate, "ffn_gate", il);
    const Act& up = gate_up[1];
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

Act output_head(Ops& ops, const Act& x, const Tensor& output_norm, float eps, const Tensor& output,
                const Batch& batch) {
    if (batch.seqs.empty() || batch.all_logits) return output_head(ops, x, output_norm, eps, output, batch.all_logits);
    // Decode-only batches (one token per sequence) already are the rows wanted.
    if (x.n_rows() == int64_t(batch.seqs.size())) return output_head(ops, x, output_norm, eps, output, true);
    std::vector<Act> last;
    int64_t end = 0;
    for (const SeqSlice& s : batch.seqs) {
        end += s.n_tokens;
        last.push_back(ops.rows(x, end - 1, 1));
    }
    return output_head(ops, ops.concat_rows(last), output_norm, eps, output, true);
}

}  // namespace ferry::model
