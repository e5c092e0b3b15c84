// llama: Llama 2/3, SmolLM2, Mistral (dense).
//
//   x = token_embd[tokens]
//   per layer:  h = x + attn_output(attention(rms_norm(x) * attn_norm))      RoPE normal (adjacent pairs)
//               x = h + ffn_down(silu(ffn_gate(n)) * ffn_up(n)),  n = rms_norm(h) * ffn_norm
//   logits = output(rms_norm(x) * output_norm)                               (token_embd when tied)
//
// RoPE is the "normal" (interleaved-pair) kind: the HF checkpoint rotates halves (NeoX style), but
// llama.cpp's converter permutes the rows of attn_q / attn_k so that GGUF llama files use adjacent
// pairs. Llama 3 adds rope_freqs.weight {n_rot/2}, the per-frequency divisors of its scaling.
#include <cmath>
#include <numeric>

#include "model/arch.h"
#include "model/blocks.h"
#include "model/loader.h"

namespace ferry::model {
namespace {

using backend::Act;

struct LlamaLayer {
    Tensor attn_norm;  // {n_embd}
    AttentionWeights attn;
    Tensor ffn_norm;  // {n_embd}
    Tensor ffn_gate;  // {n_embd, n_ff}
    Tensor ffn_up;    // {n_embd, n_ff}
    Tensor ffn_down;  // {n_ff, n_embd}
};

class LlamaModel final : public Model {
public:
    static Result<std::unique_ptr<Model>> load(const gguf::File& file);

    std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const override {
        return std::vector<backend::KvLayerSpec>(size_t(hp_.n_layer),
                                                 {n_ctx, hp_.n_head_kv, hp_.head_dim, hp_.head_dim_v, type_k, type_v});
    }

    Act forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const override;
    bool multi_sequence() const override { return true; }

private:
    DenseHparams hp_;
    Tensor token_embd;                 // {n_embd, n_vocab}
    std::optional<Tensor> rope_freqs;  // {n_rot / 2}
    std::vector<LlamaLayer> layers;
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}; token_embd when absent
};

Result<std::unique_ptr<Model>> LlamaModel::load(const gguf::File& file) {
    auto m = std::make_unique<LlamaModel>();
    const HparamReader r(file, "llama");
    FERRY_ASSIGN(m->hp_, load_dense_hparams(r, file));
    const DenseHparams& h = m->hp_;
    m->info_ = {
        .arch = "llama", .n_vocab = h.n_vocab, .n_embd = h.n_embd, .n_layer = h.n_layer, .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    const int64_t n_q = h.n_head * h.head_dim, n_k = h.n_head_kv * h.head_dim, n_v = h.n_head_kv * h.head_dim_v;
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    FERRY_ASSIGN(m->rope_freqs, t.get_optional("rope_freqs.weight", {h.n_rot / 2}, WeightKind::Norm));
    for (int il = 0; il < h.n_layer; ++il) {
        LlamaLayer l;
        FERRY_ASSIGN(l.attn_norm, t.get(layer_name(il, "attn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.attn.wq, t.get(layer_name(il, "attn_q.weight"), {h.n_embd, n_q}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wk, t.get(layer_name(il, "attn_k.weight"), {h.n_embd, n_k}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wv, t.get(layer_name(il, "attn_v.weight"), {h.n_embd, n_v}, WeightKind::Matrix));
        FERRY_ASSIGN(l.attn.wo, t.get(layer_name(il, "attn_output.weight"), {h.head_dim_v * h.n_head, h.n_embd},
                                      WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_norm, t.get(layer_name(il, "ffn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.ffn_gate, t.get(layer_name(il, "ffn_gate.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_up, t.get(layer_name(il, "ffn_up.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_down, t.get(layer_name(il, "ffn_down.weight"), {h.n_ff, h.n_embd}, WeightKind::Matrix));
        m->layers.push_back(std::move(l));
    }
    return std::unique_ptr<Model>(std::move(m));
}

Act LlamaModel::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_;
    FERRY_CHECK(!batch.seqs.empty() || int64_t(kv.size()) == h.n_layer);
    const std::vector<int32_t> pos = batch_positions(batch);

    Act x = ops.get_rows(token_embd, batch.tokens);
    ops.name(x, "inp_embd");
    for (int il = 0; il < h.n_layer; ++il) {
        const LlamaLayer& l = layers[size_t(il)];
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        const AttentionParams ap{
            .w = &l.attn,
            .n_head = h.n_head,
            .n_head_kv = h.n_head_kv,
            .head_dim = h.head_dim,
            .head_dim_v = h.head_dim_v,
            .norm_eps = h.rms_eps,
            .rope = {.mode = backend::RopeMode::Normal,
                     .n_rot = h.n_rot,
                     .freq_base = h.rope_freq_base,
                     .freq_scale = h.rope_freq_scale,
                     .freq_factors = rope_freqs ? &*rope_freqs : nullptr},
            .kq_scale = 1.0f / std::sqrt(float(h.head_dim)),
        };
        cur = attention(ops, cur, ap, batch, pos, kv, il);
        const Act ffn_inp = ops.add(cur, x);
        ops.name(ffn_inp, "ffn_inp", il);

        cur = ops.rms_norm(ffn_inp, &l.ffn_norm, h.rms_eps);
        ops.name(cur, "ffn_norm", il);
        cur = ffn_glu(ops, cur, {.gate = &l.ffn_gate, .up = &l.ffn_up, .down = &l.ffn_down, .act = GluActivation::Silu},
                      il);
        x = ops.add(cur, ffn_inp);
        ops.name(x, "l_out", il);
    }
    return output_head(ops, x, output_norm, h.rms_eps, output, batch);
}

}  // namespace

Result<std::unique_ptr<Model>> load_llama(const gguf::File& file) { return LlamaModel::load(file); }

}  // namespace ferry::model
