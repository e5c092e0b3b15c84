#include "model/blocks.h"

namespace ferry::model {

using backend::Act;
using backend::Ops;

namespace {

struct Qkv {
    Act q, k, v;  // {head_dim, n_head, T}, {head_dim, n_head_kv, T}, {head_dim_v, n_head_kv, T}
};

// Projections, optional per-head norms and RoPE of all T tokens.
Qkv project_qkv(Ops& ops, const Act& x, const AttentionParams& p, std::span<const int32_t> pos, int il) {
    const AttentionWeights& w = *p.w;
    const int64_t n_tok = x.ne[1];
    Act q = ops.matmul(w.wq, x);
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
    return {q, k, v};
}

// Writes one sequence's K/V into its cells [pos0, pos0 + T) and attends over cells [0, pos0 + T).
Act attend(Ops& ops, const Qkv& t, const AttentionParams& p, std::span<const int32_t> pos, backend::KvHandle kv) {
    const int64_t pos0 = pos[0];
    for (size_t i = 0; i < pos.size(); ++i) FERRY_CHECK(pos[i] == pos0 + int64_t(i));  // cell = position
    ops.kv_write(kv, t.k, t.v, pos0);
    const backend::AttnParams ap{.kq_scale = p.kq_scale, .n_kv = pos0 + int64_t(pos.size()), .n_swa = p.n_swa};
    return ops.attention(t.q, kv, pos, ap);
}

Act output_projection(Ops& ops, const Act& o, const AttentionParams& p, int64_t n_tok, int il) {
    const Act flat = backend::reshape(o, {p.head_dim_v * p.n_head, n_tok, 1, 1});
    ops.name(flat, "kqv_out", il);
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
    return output_projection(ops, attend(ops, t, p, pos, kv), p, n_tok, il);
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

Act attention(Ops& ops, const Act& x, const AttentionParams& p, const Batch& batch, std::span<const int32_t> pos,
              std::span<const backend::KvHandle> kv, int il) {
    if (batch.seqs.empty()) return attention(ops, x, p, pos, kv[size_t(il)], il);
    const int64_t n_tok = x.ne[1];
    FERRY_CHECK(int64_t(pos.size()) == n_tok && n_tok > 0);
    const Qkv t = project_qkv(ops, x, p, pos, il);
    std::vector<Act> parts;
    parts.reserve(batch.seqs.size());
    int64_t first = 0;
    for (const SeqSlice& s : batch.seqs) {
        FERRY_CHECK(s.n_tokens > 0 && size_t(il) < s.kv.size());
        const Qkv st{token_rows(ops, t.q, first, s.n_tokens), token_rows(ops, t.k, first, s.n_tokens),
                     token_rows(ops, t.v, first, s.n_tokens)};
        const Act o = attend(ops, st, p, pos.subspan(size_t(first), size_t(s.n_tokens)), s.kv[size_t(il)]);
        parts.push_back(backend::reshape(o, {o.ne[0] * o.ne[1], s.n_tokens, 1, 1}));
        first += s.n_tokens;
    }
    FERRY_CHECK(first == n_tok);
    return output_projection(ops, ops.concat_rows(parts), p, n_tok, il);
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
