// qwen3moe: Qwen3 with a mixture-of-experts FFN on every layer (Qwen3-30B-A3B, Qwen3-235B-A22B).
//
//   x = token_embd[tokens]
//   per layer:  h = x + attn_output(attention(rms_norm(x) * attn_norm))
//                   with q and k RMS-normalized per head (attn_q_norm, attn_k_norm {head_dim}) before
//                   NeoX RoPE over the whole head (as qwen3)
//               n = rms_norm(h) * ffn_norm
//               x = h + sum_j w_j * ffn_down_exps[e_j](silu(ffn_gate_exps[e_j] n) * ffn_up_exps[e_j] n)
//                   where p = softmax(ffn_gate_inp n) over expert_count experts, e_1..e_k the
//                   k = expert_used_count most probable, w_j = p[e_j] / sum_j p[e_j]
//   logits = output(rms_norm(x) * output_norm)                               (token_embd when tied)
//
// feed_forward_length is read (real files carry it) but unused: experts are
// expert_feed_forward_length wide. No shared expert.
#include "model/arch.h"
#include "model/blocks.h"
#include "model/loader.h"

namespace ferry::model {
namespace {

using backend::Act;

struct Qwen3MoeLayer {
    Tensor attn_norm;  // {n_embd}
    AttentionWeights attn;
    Tensor ffn_norm;  // {n_embd}
    MoeTensors moe;
};

class Qwen3MoeModel final : public Model {
public:
    static Result<std::unique_ptr<Model>> load(const gguf::File& file);

    std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const override {
        return dense_kv_layers(hp_, n_ctx, type_k, type_v);
    }

    Act forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const override;
    bool multi_sequence() const override { return true; }

private:
    DenseHparams hp_;
    MoeHparams moe_hp_;
    Tensor token_embd;  // {n_embd, n_vocab}
    std::vector<Qwen3MoeLayer> layers;
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}; token_embd when absent
};

Result<std::unique_ptr<Model>> Qwen3MoeModel::load(const gguf::File& file) {
    auto m = std::make_unique<Qwen3MoeModel>();
    const HparamReader r(file, "qwen3moe");
    FERRY_ASSIGN(m->hp_, load_dense_hparams(r, file));
    FERRY_ASSIGN(m->moe_hp_, load_moe_hparams(r, /*shared_expert=*/false));
    const DenseHparams& h = m->hp_;
    m->info_ = {.arch = "qwen3moe",
                .n_vocab = h.n_vocab,
                .n_embd = h.n_embd,
                .n_layer = h.n_layer,
                .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    m->layers.resize(size_t(h.n_layer));
    for (int il = 0; il < h.n_layer; ++il) {
        Qwen3MoeLayer& l = m->layers[size_t(il)];
        FERRY_ASSIGN(l.attn_norm, t.get(layer_name(il, "attn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.attn, load_attention_weights(t, il, h, /*qk_norm=*/true));
        FERRY_ASSIGN(l.ffn_norm, t.get(layer_name(il, "ffn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.moe, load_moe_tensors(t, il, h.n_embd, m->moe_hp_));
    }
    return std::unique_ptr<Model>(std::move(m));
}

Act Qwen3MoeModel::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_;
    FERRY_CHECK(!batch.seqs.empty() || int64_t(kv.size()) == h.n_layer);
    const std::vector<int32_t> pos = batch_positions(batch);
    const backend::MoeParams mp{.n_expert = moe_hp_.n_expert,
                                .n_expert_used = moe_hp_.n_expert_used,
                                .gating = backend::MoeGating::Softmax,
                                .norm_topk = true};

    Act x = ops.get_rows(token_embd, batch.tokens);
    ops.name(x, "inp_embd");
    for (int il = 0; il < h.n_layer; ++il) {
        const Qwen3MoeLayer& l = layers[size_t(il)];
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        cur = attention(ops, cur, dense_attention_params(&l.attn, h, backend::RopeMode::Neox), batch, pos, kv, il);
        const Act ffn_inp = ops.add(cur, x);
        ops.name(ffn_inp, "ffn_inp", il);

        cur = ops.rms_norm(ffn_inp, &l.ffn_norm, h.rms_eps);
        ops.name(cur, "ffn_norm", il);
        cur = ops.moe_ffn(cur, l.moe.weights(), mp);
        ops.name(cur, "ffn_moe_out", il);
        x = ops.add(cur, ffn_inp);
        ops.name(x, "l_out", il);
    }
    return output_head(ops, x, output_norm, h.rms_eps, output, batch);
}

}  // namespace

Result<std::unique_ptr<Model>> load_qwen3moe(const gguf::File& file) { return Qwen3MoeModel::load(file); }

}  // namespace ferry::model
