// gemma3: Gemma 3 (text).
//
//   x = token_embd[tokens] * sqrt(n_embd)
//   per layer:  a = attention(rms_norm(x) * attn_norm)       q/k RMS-normalized per head, NeoX RoPE
//               h = x + rms_norm(a) * post_attention_norm
//               f = ffn_down(gelu_tanh(ffn_gate(n)) * ffn_up(n)),  n = rms_norm(h) * ffn_norm
//               x = h + rms_norm(f) * post_ffw_norm
//   logits = token_embd(rms_norm(x) * output_norm)           (tied; output.weight if present)
//
// Sliding-window layers: with period P = attention.sliding_window_pattern (llama.cpp's default 6 when
// the key is absent, as in real Gemma 3 files), layer il slides iff il % P < P - 1; a query at position
// p then sees keys p - n_swa + 1 .. p and RoPE uses rope.freq_base_swa (default 10000, no scaling),
// while the global layers use rope.freq_base and the linear rope scaling.
//
// Query scale: 1 / sqrt(head_dim), except Gemma 3 27B (62 layers) whose query_pre_attn_scalar is
// n_embd / n_head. Norm weights are stored as final multipliers (the converter adds Gemma's +1).
#include <cmath>
#include <numeric>

#include "model/arch.h"
#include "model/blocks.h"
#include "model/loader.h"

namespace ferry::model {
namespace {

using backend::Act;

struct Gemma3Hparams {
    DenseHparams d;
    int64_t n_swa = 0;                    // attention.sliding_window (required)
    int64_t swa_period = 6;               // attention.sliding_window_pattern
    float rope_freq_base_swa = 10000.0f;  // rope.freq_base_swa
    float query_scale = 0.0f;

    bool is_swa(int il) const { return il % swa_period < swa_period - 1; }
};

struct Gemma3Layer {
    Tensor attn_norm;  // {n_embd}
    AttentionWeights attn;
    Tensor post_attention_norm;  // {n_embd}
    Tensor ffn_norm;             // {n_embd}
    Tensor ffn_gate;             // {n_embd, n_ff}
    Tensor ffn_up;               // {n_embd, n_ff}
    Tensor ffn_down;             // {n_ff, n_embd}
    Tensor post_ffw_norm;        // {n_embd}
};

class Gemma3Model final : public Model {
public:
    static Result<std::unique_ptr<Model>> load(const gguf::File& file);

    std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const override {
        const DenseHparams& h = hp_.d;
        return std::vector<backend::KvLayerSpec>(size_t(h.n_layer),
                                                 {n_ctx, h.n_head_kv, h.head_dim, h.head_dim_v, type_k, type_v});
    }

    Act forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const override;
    bool multi_sequence() const override { return true; }

private:
    Gemma3Hparams hp_;
    Tensor token_embd;  // {n_embd, n_vocab}
    std::vector<Gemma3Layer> layers;
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}: token_embd unless output.weight exists
};

Result<Gemma3Hparams> load_hparams(const HparamReader& r, const gguf::File& file) {
    Gemma3Hparams g;
    FERRY_ASSIGN(g.d, load_dense_hparams(r, file));
    FERRY_ASSIGN(g.n_swa, r.u32("attention.sliding_window"));
    if (g.n_swa == 0) return bad_key(r.key("attention.sliding_window"), "must be positive");
    FERRY_ASSIGN(g.swa_period, r.u32_or("attention.sliding_window_pattern", 6));
    if (g.swa_period == 0) return bad_key(r.key("attention.sliding_window_pattern"), "must be positive");
    FERRY_ASSIGN(g.rope_freq_base_swa, r.f32_or("rope.freq_base_swa", 10000.0f));
    if (!(g.rope_freq_base_swa > 0.0f)) return bad_key(r.key("rope.freq_base_swa"), "must be positive");
    const DenseHparams& h = g.d;
    const float pre_attn_scalar = h.n_layer == 62 ? float(h.n_embd / h.n_head) : float(h.head_dim);
    g.query_scale = 1.0f / std::sqrt(pre_attn_scalar);
    return g;
}

Result<std::unique_ptr<Model>> Gemma3Model::load(const gguf::File& file) {
    auto m = std::make_unique<Gemma3Model>();
    const HparamReader r(file, "gemma3");
    FERRY_ASSIGN(m->hp_, load_hparams(r, file));
    const DenseHparams& h = m->hp_.d;
    m->info_ = {
        .arch = "gemma3", .n_vocab = h.n_vocab, .n_embd = h.n_embd, .n_layer = h.n_layer, .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    const int64_t n_q = h.n_head * h.head_dim, n_k = h.n_head_kv * h.head_dim, n_v = h.n_head_kv * h.head_dim_v;
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    for (int il = 0; il < h.n_layer; ++il) {
        Gemma3Layer l;
        auto norm = [&](const char* suffix) { return t.get(layer_name(il, suffix), {h.n_embd}, WeightKind::Norm); };
        FERRY_ASSIGN(l.attn_norm, norm("attn_norm.weight"));
        FERRY_ASSIGN(l.attn.wq, t.get(layer_name(il, "attn_q.weight"), {h.n_embd, n_q}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wk, t.get(layer_name(il, "attn_k.weight"), {h.n_embd, n_k}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wv, t.get(layer_name(il, "attn_v.weight"), {h.n_embd, n_v}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wo, t.get(layer_name(il, "attn_output.weight"), {h.head_dim_v * h.n_head, h.n_embd},
                                      WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.q_norm, t.get(layer_name(il, "attn_q_norm.weight"), {h.head_dim}, WeightKind::Norm));
        FERRY_ASSIGN(l.attn.k_norm, t.get(layer_name(il, "attn_k_norm.weight"), {h.head_dim}, WeightKind::Norm));
        FERRY_ASSIGN(l.post_attention_norm, norm("post_attention_norm.weight"));
        FERRY_ASSIGN(l.ffn_norm, norm("ffn_norm.weight"));
        FERRY_ASSIGN(l.ffn_gate, t.get(layer_name(il, "ffn_gate.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_up, t.get(layer_name(il, "ffn_up.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_down, t.get(layer_name(il, "ffn_down.weight"), {h.n_ff, h.n_embd}, WeightKind::Matrix));
        FERRY_ASSIGN(l.post_ffw_norm, norm("post_ffw_norm.weight"));
        m->layers.push_back(std::move(l));
    }
    return std::unique_ptr<Model>(std::move(m));
}

Act Gemma3Model::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_.d;
    FERRY_CHECK(!batch.seqs.empty() || int64_t(kv.size()) == h.n_layer);
    const std::vector<int32_t> pos = batch_positions(batch);

    Act x = ops.get_rows(token_embd, batch.tokens);
    x = ops.scale(x, std::sqrt(float(h.n_embd)));
    ops.name(x, "inp_scaled");
    for (int il = 0; il < h.n_layer; ++il) {
        const Gemma3Layer& l = layers[size_t(il)];
        const bool swa = hp_.is_swa(il);
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        const AttentionParams ap{
            .w = &l.attn,
            .n_head = h.n_head,
            .n_head_kv = h.n_head_kv,
            .head_dim = h.head_dim,
            .head_dim_v = h.head_dim_v,
            .norm_eps = h.rms_eps,
            .rope = {.mode = backend::RopeMode::Neox,
                     .n_rot = h.n_rot,
                     .freq_base = swa ? hp_.rope_freq_base_swa : h.rope_freq_base,
                     .freq_scale = swa ? 1.0f : h.rope_freq_scale},
            .kq_scale = hp_.query_scale,
            .n_swa = swa ? hp_.n_swa : 0,
        };
        cur = attention(ops, cur, ap, batch, pos, kv, il);
        cur = ops.rms_norm(cur, &l.post_attention_norm, h.rms_eps);
        ops.name(cur, "attn_post_norm", il);
        const Act sa_out = ops.add(cur, x);
        ops.name(sa_out, "sa_out", il);

        cur = ops.rms_norm(sa_out, &l.ffn_norm, h.rms_eps);
        ops.name(cur, "ffn_norm", il);
        cur = ffn_glu(ops, cur,
                      {.gate = &l.ffn_gate, .up = &l.ffn_up, .down = &l.ffn_down, .act = GluActivation::GeluTanh}, il);
        cur = ops.rms_norm(cur, &l.post_ffw_norm, h.rms_eps);
        ops.name(cur, "ffn_post_norm", il);
        x = ops.add(cur, sa_out);
        ops.name(x, "l_out", il);
    }
    return output_head(ops, x, output_norm, h.rms_eps, output, batch);
}

}  // namespace

Result<std::unique_ptr<Model>> load_gemma3(const gguf::File& file) { return Gemma3Model::load(file); }

}  // namespace ferry::model
