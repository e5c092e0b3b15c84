#include "model/dense_swiglu.h"

#include <optional>
#include <vector>

#include "model/blocks.h"
#include "model/loader.h"

namespace ferry::model {
namespace {

using backend::Act;

struct DenseLayer {
    Tensor attn_norm;  // {n_embd}
    AttentionWeights attn;
    Tensor ffn_norm;  // {n_embd}
    Tensor ffn_gate;  // {n_embd, n_ff}
    Tensor ffn_up;    // {n_embd, n_ff}
    Tensor ffn_down;  // {n_ff, n_embd}
};

class DenseSwigluModel final : public Model {
public:
    static Result<std::unique_ptr<Model>> load(const gguf::File& file, const DenseSwigluVariant& v);

    std::vector<backend::KvLayerSpec> kv_layers(int64_t n_ctx, GgmlType type_k, GgmlType type_v) const override {
        return dense_kv_layers(hp_, n_ctx, type_k, type_v);
    }

    Act forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const override;
    bool multi_sequence() const override { return true; }

private:
    DenseSwigluVariant variant_;
    DenseHparams hp_;
    Tensor token_embd;                 // {n_embd, n_vocab}
    std::optional<Tensor> rope_freqs;  // {n_rot / 2}
    std::vector<DenseLayer> layers;
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}; token_embd when absent
};

Result<std::unique_ptr<Model>> DenseSwigluModel::load(const gguf::File& file, const DenseSwigluVariant& v) {
    auto m = std::make_unique<DenseSwigluModel>();
    m->variant_ = v;
    const HparamReader r(file, v.arch);
    FERRY_ASSIGN(m->hp_, load_dense_hparams(r, file));
    const DenseHparams& h = m->hp_;
    m->info_ = {
        .arch = v.arch, .n_vocab = h.n_vocab, .n_embd = h.n_embd, .n_layer = h.n_layer, .n_ctx_train = h.n_ctx_train};

    const TensorTable t(file);
    FERRY_ASSIGN(const EmbeddingAndHead io, load_embedding_and_head(t, h));
    m->token_embd = io.token_embd;
    m->output_norm = io.output_norm;
    m->output = io.output;
    if (v.rope_freqs) {
        FERRY_ASSIGN(m->rope_freqs, t.get_optional("rope_freqs.weight", {h.n_rot / 2}, WeightKind::Norm));
    }
    for (int il = 0; il < h.n_layer; ++il) {
        DenseLayer l;
        FERRY_ASSIGN(l.attn_norm, t.get(layer_name(il, "attn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.attn, load_attention_weights(t, il, h, v.qk_norm));
        FERRY_ASSIGN(l.ffn_norm, t.get(layer_name(il, "ffn_norm.weight"), {h.n_embd}, WeightKind::Norm));
        FERRY_ASSIGN(l.ffn_gate, t.get(layer_name(il, "ffn_gate.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_up, t.get(layer_name(il, "ffn_up.weight"), {h.n_embd, h.n_ff}, WeightKind::Matrix));
        FERRY_ASSIGN(l.ffn_down, t.get(layer_name(il, "ffn_down.weight"), {h.n_ff, h.n_embd}, WeightKind::Matrix));
        m->layers.push_back(std::move(l));
    }
    return std::unique_ptr<Model>(std::move(m));
}

Act DenseSwigluModel::forward(backend::Ops& ops, const Batch& batch, std::span<const backend::KvHandle> kv) const {
    const DenseHparams& h = hp_;
    FERRY_CHECK(!batch.seqs.empty() || int64_t(kv.size()) == h.n_layer);
    const std::vector<int32_t> pos = batch_positions(batch);

    Act x = ops.get_rows(token_embd, batch.tokens);
    ops.name(x, "inp_embd");
    for (int il = 0; il < h.n_layer; ++il) {
        const DenseLayer& l = layers[size_t(il)];
        Act cur = ops.rms_norm(x, &l.attn_norm, h.rms_eps);
        ops.name(cur, "attn_norm", il);
        AttentionParams ap = dense_attention_params(&l.attn, h, variant_.rope_mode);
        ap.rope.freq_factors = rope_freqs ? &*rope_freqs : nullptr;
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

Result<std::unique_ptr<Model>> load_dense_swiglu(const gguf::File& file, const DenseSwigluVariant& variant) {
    return DenseSwigluModel::load(file, variant);
}

}  // namespace ferry::model
