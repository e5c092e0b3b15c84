// qwen35: dense Qwen3.5, a hybrid of Gated DeltaNet (linear attention with a recurrent state) and gated
// full attention (SPEC §1.2-1.4, §2).
//
//   x = token_embd[tokens]
//   per layer:  h = x + mixer(rms_norm(x) * attn_norm)
//                 mixer = Gated DeltaNet       if (il + 1) % full_attention_interval != 0   (blocks.h)
//                       = gated attention      otherwise: attn_q gives [q_h | gate_h] per head; q and k
//                         RMS-normalized per head, NeoX RoPE on the first rope.dimension_count dims (the
//                         text-only case of llama.cpp's interleaved M-RoPE), output * sigmoid(gate)
//               x = h + ffn_down(silu(ffn_gate(n)) * ffn_up(n)),  n = rms_norm(h) * post_attention_norm
//   logits = output(rms_norm(x) * output_norm)
//
// The converter already added 1 to the zero-centred norm weights (all but ssm_norm) and stored
// ssm_a = -exp(A_log), so every norm here is a plain RMSNorm. block_count counts the multi-token-
// prediction block(s) (nextn_predict_layers); their weights are loaded and kept (for speculative
// decoding) but the forward does not run them.
#include <cmath>

#include "model/arch.h"
#include "model/blocks.h"
#include "model/loader.h"
#include "model/qwen35_common.h"

namespace ferry::model {
namespace {

using backend::Act;

struct Qwen35Layer {
    Tensor attn_norm;  // {n_embd}
    HybridMixer mixer;
    Tensor post_attention_norm;  // {n_embd}
    Tensor ffn_gate;             // {n_embd, n_ff}
    Tensor ffn_up;               // {n_embd, n_ff}
    Tensor ffn_down;             // {n_ff, n_embd}
};

class Qwen35Model final : public Model {
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
    Tensor token_embd;  // {n_embd, n_vocab}
    std::vector<Qwen35Layer> layers;
    Tensor output_norm;                   // {n_embd}
    Tensor output;                        // {n_embd, n_vocab}; token_embd when absent
    std::vector<Qwen35Layer> mtp_layers;  // blocks n_layer .. block_count - 1 (not run)
    std::vector<NextnWeights> mtp;
};

Result<Qwen35Layer> load_layer(const TensorTable& t, const HybridHparams& hp, int il) {
    const DenseHparams& h = hp.base;
    Qwen35Layer l;
    FERRY_ASSIGN(l.attn_norm, t.get(layer_name(il, "attn_norm.weight"), {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(l.mixer, load_hybrid_mixer(t, hp, il));
    FERRY_ASSIGN(l.post_attention_norm,
                 t.get(layer_name(il, "post_attention_norm.weight"), {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(l.ffn_gate, t.get(layer_name(il, "ffn_gate.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
    FERRY_ASSIGN(l.ffn_up, t.get(layer_name(il, "ffn_up.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
    FERRY_ASSIGN(l.ffn_down, t.get(layer_name(il, "ffn_down.weight"), {h.n_ff, h.n_embd}, WeightKind::Matrix));
    return l;
}

Result<std::unique_ptr<Model>> Qwen35Model::load(const gguf::File& file) {
    auto m = std::make_unique<Qwen35Model>();
    const HparamReader r(file, "qwen35");
    FERRY_ASSIGN(m->hp_, load_hybrid_hparams(r, file, /*has_dense_ffn=*/true));
    const DenseHparams& h = m->hp_.base;
    m->info_ = {
        .arch = "qwen35", .n_vocab = h.n_vocab, .n_embd = h.n_embd, .n_layer = h.n_layer, .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    for (int il = 0; il < h.n_layer + m->hp_.n_nextn; ++il) {
        FERRY_ASSIGN(Qwen35Layer l, load_layer(t, m->hp_, il));
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

Act Qwen35Model::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_.base;
    const std::vector<SeqRange> seqs = seq_ranges(batch, kv, hp_.n_attention_layers(), hp_.n_recurrent_layers());
    const std::vector<int32_t> pos = batch_positions(batch);

    Act x = ops.get_rows(token_embd, batch.tokens);
    ops.name(x, "inp_embd");
    HybridMemory mem{.seqs = seqs};
    for (int il = 0; il < h.n_layer; ++il) {
        const Qwen35Layer& l = layers[size_t(il)];
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        cur = hybrid_mixer(ops, cur, hp_, l.mixer, pos, mem, il);
        const Act ffn_inp = ops.add(cur, x);
        ops.name(ffn_inp, "attn_residual", il);

        cur = ops.rms_norm(ffn_inp, &l.post_attention_norm, h.rms_eps);
        ops.name(cur, "attn_post_norm", il);
        cur = ffn_glu(ops, cur, {.gate = &l.ffn_gate, .up = &l.ffn_up, .down = &l.ffn_down, .act = GluActivation::Silu},
                      il);
        x = ops.add(cur, ffn_inp);
        ops.name(x, "l_out", il);
    }
    return output_head(ops, x, output_norm, h.rms_eps, output, batch);
}

}  // namespace

Result<std::unique_ptr<Model>> load_qwen35(const gguf::File& file) { return Qwen35Model::load(file); }

}  // namespace ferry::model
