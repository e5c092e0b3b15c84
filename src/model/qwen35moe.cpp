// qwen35moe: Qwen3.5 mixture of experts (Qwen3.5-35B-A3B class), the hybrid of qwen35.cpp with a MoE FFN
// in every layer (SPEC §1.1-1.4).
//
//   x = token_embd[tokens]
//   per layer:  h = x + mixer(rms_norm(x) * attn_norm)      Gated DeltaNet or gated attention (qwen35.cpp)
//               x = h + moe(n),  n = rms_norm(h) * post_attention_norm
//                 moe: router softmax over expert_count, top expert_used_count renormalized to sum 1,
//                      routed SwiGLU experts, plus the shared expert scaled by sigmoid(ffn_gate_inp_shexp . n)
//   logits = output(rms_norm(x) * output_norm)
//
// As in qwen35, the MTP block(s) counted by nextn_predict_layers are loaded and kept but not run.
#include "model/arch.h"
#include "model/blocks.h"
#include "model/loader.h"
#include "model/qwen35_common.h"

namespace ferry::model {
namespace {

using backend::Act;

struct Qwen35MoeLayer {
    Tensor attn_norm;  // {n_embd}
    HybridMixer mixer;
    Tensor post_attention_norm;  // {n_embd}
    MoeTensors moe;
};

class Qwen35MoeModel final : public Model {
public:
    static Result<std::unique_ptr<Model>> load(const gguf::File& file);

    std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const override {
        return hybrid_kv_layers(hp_, n_ctx, type_k, type_v);
    }
    std::vector<backend::StateLayerSpec> state_layers() const override { return hybrid_state_layers(hp_); }

    Act forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const override;
    bool multi_sequence() const override { return true; }

private:
    HybridHparams hp_;
    MoeHparams moe_hp_;
    Tensor token_embd;  // {n_embd, n_vocab}
    std::vector<Qwen35MoeLayer> layers;
    Tensor output_norm;                      // {n_embd}
    Tensor output;                           // {n_embd, n_vocab}; token_embd when absent
    std::vector<Qwen35MoeLayer> mtp_layers;  // blocks n_layer .. block_count - 1 (not run)
    std::vector<NextnWeights> mtp;
};

Result<std::unique_ptr<Model>> Qwen35MoeModel::load(const gguf::File& file) {
    auto m = std::make_unique<Qwen35MoeModel>();
    const HparamReader r(file, "qwen35moe");
    FERRY_ASSIGN(m->hp_, load_hybrid_hparams(r, file, /*has_dense_ffn=*/false));
    FERRY_ASSIGN(m->moe_hp_, load_moe_hparams(r, /*shared_expert=*/true));
    const DenseHparams& h = m->hp_.base;
    m->info_ = {.arch = "qwen35moe",
                .n_vocab = h.n_vocab,
                .n_embd = h.n_embd,
                .n_layer = h.n_layer,
                .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    for (int il = 0; il < h.n_layer + m->hp_.n_nextn; ++il) {
        Qwen35MoeLayer l;
        FERRY_ASSIGN(l.attn_norm, t.get(layer_name(il, "attn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.mixer, load_hybrid_mixer(t, m->hp_, il));
        FERRY_ASSIGN(l.post_attention_norm,
                     t.get(layer_name(il, "post_attention_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.moe, load_moe_tensors(t, il, h.n_embd, m->moe_hp_));
        if (il < h.n_layer) {
            m->layers.push_back(std::move(l));
        } else {
            m->mtp_layers.push_back(std::move(l));
            FERRY_ASSIGN(NextnWeights n, load_nextn(t, h, il));
            m->mtp.push_back(std::move(n));
        }
    }
    return std::unique_ptr<Model>(std::move(m));
}

Act Qwen35MoeModel::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_.base;
    const std::vector<SeqRange> seqs = seq_ranges(batch, kv, hp_.n_attention_layers(), hp_.n_recurrent_layers());
    const std::vector<int32_t> pos = batch_positions(batch);
    const backend::MoeParams mp{.n_expert = moe_hp_.n_expert,
                                .n_expert_used = moe_hp_.n_expert_used,
                                .gating = backend::MoeGating::Softmax,
                                .norm_topk = true};

    Act x = ops.get_rows(token_embd, batch.tokens);
    ops.name(x, "inp_embd");
    HybridMemory mem{.seqs = seqs};
    for (int il = 0; il < h.n_layer; ++il) {
        const Qwen35MoeLayer& l = layers[size_t(il)];
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        cur = hybrid_mixer(ops, cur, hp_, l.mixer, pos, mem, il);
        const Act ffn_inp = ops.add(cur, x);
        ops.name(ffn_inp, "attn_residual", il);

        cur = ops.rms_norm(ffn_inp, &l.post_attention_norm, h.rms_eps);
        ops.name(cur, "attn_post_norm", il);
        cur = ops.moe_ffn(cur, l.moe.weights(), mp);
        ops.name(cur, "ffn_moe_out", il);
        x = ops.add(cur, ffn_inp);
        ops.name(x, "l_out", il);
    }
    return output_head(ops, x, output_norm, h.rms_eps, output, batch);
}

}  // namespace

Result<std::unique_ptr<Model>> load_qwen35moe(const gguf::File& file) { return Qwen35MoeModel::load(file); }

}  // namespace ferry::model
