#include "model/loader.h"

#include <cmath>
#include <limits>

#include "quant/formats.h"

namespace ferry::model {
namespace {

std::string shape_str(const std::array<int64_t, kMaxDims>& ne, int n_dims) {
    std::string s = "{";
    for (int i = 0; i < n_dims; ++i) s += (i ? ", " : "") + std::to_string(ne[size_t(i)]);
    return s + "}";
}

Error key_error(const std::string& key, const std::string& why) { return make_error("gguf key '" + key + "': " + why); }

}  // namespace

Error bad_key(const std::string& key, const std::string& why) { return key_error(key, why); }

Result<uint32_t> HparamReader::u32(std::string_view suffix) const {
    const std::string k = key(suffix);
    const gguf::Value* v = file_.find(k);
    if (v == nullptr) return key_error(k, "missing (required)");
    if (v->is_array()) return key_error(k, "is an array; per-layer values are not supported");
    const std::optional<uint64_t> x = v->get_uint();
    if (!x) return key_error(k, "expected an unsigned integer, found " + std::string(gguf::value_type_name(v->type())));
    if (*x > std::numeric_limits<uint32_t>::max()) return key_error(k, "value " + std::to_string(*x) + " is too large");
    return uint32_t(*x);
}

Result<uint32_t> HparamReader::u32_or(std::string_view suffix, uint32_t fallback) const {
    if (file_.find(key(suffix)) == nullptr) return fallback;
    return u32(suffix);
}

Result<float> HparamReader::f32(std::string_view suffix) const {
    const std::string k = key(suffix);
    const gguf::Value* v = file_.find(k);
    if (v == nullptr) return key_error(k, "missing (required)");
    const std::optional<double> x = v->get_float();
    if (!x || v->is_array())
        return key_error(k, "expected a number, found " + std::string(gguf::value_type_name(v->type())));
    if (!std::isfinite(*x)) return key_error(k, "is not finite");
    return float(*x);
}

Result<float> HparamReader::f32_or(std::string_view suffix, float fallback) const {
    if (file_.find(key(suffix)) == nullptr) return fallback;
    return f32(suffix);
}

Result<std::string> HparamReader::str_or(std::string_view suffix, std::string fallback) const {
    const std::string k = key(suffix);
    const gguf::Value* v = file_.find(k);
    if (v == nullptr) return fallback;
    const std::string* s = v->get_string();
    if (s == nullptr) return key_error(k, "expected a string, found " + std::string(gguf::value_type_name(v->type())));
    return *s;
}

Result<std::optional<Tensor>> TensorTable::get_optional(const std::string& name, std::initializer_list<int64_t> ne,
                                                        WeightKind kind) const {
    const gguf::TensorInfo* info = file_.find_tensor(name);
    if (info == nullptr) return std::optional<Tensor>{};
    std::array<int64_t, kMaxDims> want{1, 1, 1, 1};
    int n = 0;
    for (int64_t d : ne) want[size_t(n++)] = d;
    if (info->ne != want)
        return make_error("tensor '" + name + "': shape " + shape_str(info->ne, info->n_dims) + ", expected " +
                          shape_str(want, n));
    const std::string type(type_name(info->type));
    if (kind == WeightKind::Norm && info->type != GgmlType::F32)
        return make_error("tensor '" + name + "': type " + type + ", expected F32");
    if (kind == WeightKind::Matrix) {
        const quant::FormatTraits* f = quant::find_format(info->type);
        if (f == nullptr || f->vec_dot == nullptr)
            return make_error("tensor '" + name + "': type " + type + " is not supported for matrices");
    }
    return std::optional<Tensor>{file_.tensor(*info)};
}

Result<Tensor> TensorTable::get(const std::string& name, std::initializer_list<int64_t> ne, WeightKind kind) const {
    FERRY_ASSIGN(std::optional<Tensor> t, get_optional(name, ne, kind));
    if (!t) return make_error("tensor '" + name + "': missing (required)");
    return std::move(*t);
}

std::string layer_name(int il, std::string_view suffix) {
    return "blk." + std::to_string(il) + "." + std::string(suffix);
}

Result<DenseHparams> load_dense_hparams(const HparamReader& r, const gguf::File& file, bool require_ffn) {
    DenseHparams h;
    FERRY_ASSIGN(h.n_embd, r.u32("embedding_length"));
    FERRY_ASSIGN(h.n_layer, r.u32("block_count"));
    FERRY_ASSIGN(h.n_ctx_train, r.u32("context_length"));
    FERRY_ASSIGN(h.n_head, r.u32("attention.head_count"));
    FERRY_ASSIGN(h.n_head_kv, r.u32_or("attention.head_count_kv", uint32_t(h.n_head)));
    if (require_ffn) {
        FERRY_ASSIGN(h.n_ff, r.u32("feed_forward_length"));
    } else {
        FERRY_ASSIGN(h.n_ff, r.u32_or("feed_forward_length", 0));
    }
    FERRY_ASSIGN(h.rms_eps, r.f32("attention.layer_norm_rms_epsilon"));
    FERRY_ASSIGN(h.rope_freq_base, r.f32_or("rope.freq_base", 10000.0f));

    if (h.n_embd == 0) return bad_key(r.key("embedding_length"), "must be positive");
    if (h.n_layer == 0) return bad_key(r.key("block_count"), "must be positive");
    if (h.n_head == 0) return bad_key(r.key("attention.head_count"), "must be positive");
    if (h.n_head_kv == 0 || h.n_head % h.n_head_kv != 0)
        return bad_key(
            r.key("attention.head_count_kv"),
            "= " + std::to_string(h.n_head_kv) + " must divide attention.head_count = " + std::to_string(h.n_head));
    const uint32_t default_head_dim = h.n_embd % h.n_head == 0 ? uint32_t(h.n_embd / h.n_head) : 0;
    FERRY_ASSIGN(h.head_dim, r.u32_or("attention.key_length", default_head_dim));
    if (h.head_dim == 0)
        return bad_key(r.key("attention.key_length"), "missing, and head_count does not divide embedding_length");
    FERRY_ASSIGN(h.head_dim_v, r.u32_or("attention.value_length", uint32_t(h.head_dim)));
    if (h.head_dim_v == 0) return bad_key(r.key("attention.value_length"), "must be positive");
    FERRY_ASSIGN(h.n_rot, r.u32_or("rope.dimension_count", uint32_t(h.head_dim)));
    if (h.n_rot == 0 || h.n_rot % 2 != 0 || h.n_rot > h.head_dim)
        return bad_key(r.key("rope.dimension_count"), "= " + std::to_string(h.n_rot) +
                                                          " must be even and at most the head dimension " +
                                                          std::to_string(h.head_dim));
    if (!(h.rms_eps > 0.0f)) return bad_key(r.key("attention.layer_norm_rms_epsilon"), "must be positive");
    if (!(h.rope_freq_base > 0.0f)) return bad_key(r.key("rope.freq_base"), "must be positive");

    FERRY_ASSIGN(const std::string scaling, r.str_or("rope.scaling.type", "none"));
    FERRY_ASSIGN(const float factor, r.f32_or("rope.scaling.factor", 0.0f));
    if (scaling == "linear") {
        if (!(factor > 0.0f)) return bad_key(r.key("rope.scaling.factor"), "must be positive for linear scaling");
        h.rope_freq_scale = 1.0f / factor;
    } else if (scaling != "none") {
        return bad_key(r.key("rope.scaling.type"), "'" + scaling + "' is not supported (none, linear)");
    }

    const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
    if (embd == nullptr) return make_error("tensor 'token_embd.weight': missing (required)");
    h.n_vocab = embd->ne[1];
    FERRY_ASSIGN(const uint32_t vocab_key, r.u32_or("vocab_size", uint32_t(h.n_vocab)));
    if (vocab_key != h.n_vocab)
        return bad_key(r.key("vocab_size"), "= " + std::to_string(vocab_key) + " but token_embd.weight has " +
                                                std::to_string(h.n_vocab) + " rows");
    return h;
}

Result<MoeHparams> load_moe_hparams(const HparamReader& r, bool shared_expert) {
    MoeHparams h;
    FERRY_ASSIGN(h.n_expert, r.u32("expert_count"));
    FERRY_ASSIGN(h.n_expert_used, r.u32("expert_used_count"));
    FERRY_ASSIGN(h.n_ff_exp, r.u32("expert_feed_forward_length"));
    if (h.n_expert == 0) return bad_key(r.key("expert_count"), "must be positive");
    if (h.n_expert_used == 0 || h.n_expert_used > h.n_expert)
        return bad_key(r.key("expert_used_count"),
                       "= " + std::to_string(h.n_expert_used) +
                           " must be between 1 and expert_count = " + std::to_string(h.n_expert));
    if (h.n_ff_exp == 0) return bad_key(r.key("expert_feed_forward_length"), "must be positive");
    if (shared_expert) {
        FERRY_ASSIGN(h.n_ff_shexp, r.u32("expert_shared_feed_forward_length"));
        if (h.n_ff_shexp == 0) return bad_key(r.key("expert_shared_feed_forward_length"), "must be positive");
    }
    return h;
}

backend::MoeWeights MoeTensors::weights() const {
    auto opt = [](const std::optional<Tensor>& t) { return t ? &*t : nullptr; };
    return {.gate_inp = &gate_inp,
            .gate_exps = &gate_exps,
            .up_exps = &up_exps,
            .down_exps = &down_exps,
            .gate_shexp = opt(gate_shexp),
            .up_shexp = opt(up_shexp),
            .down_shexp = opt(down_shexp),
            .gate_inp_shexp = opt(gate_inp_shexp)};
}

Result<MoeTensors> load_moe_tensors(const TensorTable& t, int il, int64_t n_embd, const MoeHparams& h) {
    MoeTensors m;
    const int64_t n_ff = h.n_ff_exp, n_e = h.n_expert;
    FERRY_ASSIGN(m.gate_inp, t.get(layer_name(il, "ffn_gate_inp.weight"), {n_embd, n_e}, WeightKind::Matrix));
    FERRY_ASSIGN(m.gate_exps, t.get(layer_name(il, "ffn_gate_exps.weight"), {n_embd, n_ff, n_e}, WeightKind::Matrix));
    FERRY_ASSIGN(m.up_exps, t.get(layer_name(il, "ffn_up_exps.weight"), {n_embd, n_ff, n_e}, WeightKind::Matrix));
    FERRY_ASSIGN(m.down_exps, t.get(layer_name(il, "ffn_down_exps.weight"), {n_ff, n_embd, n_e}, WeightKind::Matrix));
    if (h.n_ff_shexp > 0) {
        const int64_t n_s = h.n_ff_shexp;
        FERRY_ASSIGN(m.gate_shexp, t.get(layer_name(il, "ffn_gate_shexp.weight"), {n_embd, n_s}, WeightKind::Matrix));
        FERRY_ASSIGN(m.up_shexp, t.get(layer_name(il, "ffn_up_shexp.weight"), {n_embd, n_s}, WeightKind::Matrix));
        FERRY_ASSIGN(m.down_shexp, t.get(layer_name(il, "ffn_down_shexp.weight"), {n_s, n_embd}, WeightKind::Matrix));
        FERRY_ASSIGN(m.gate_inp_shexp,
                     t.get_optional(layer_name(il, "ffn_gate_inp_shexp.weight"), {n_embd}, WeightKind::Matrix));
    }
    return m;
}

Result<EmbeddingAndHead> load_embedding_and_head(const TensorTable& t, const DenseHparams& h) {
    EmbeddingAndHead e;
    FERRY_ASSIGN(e.token_embd, t.get("token_embd.weight", {h.n_embd, h.n_vocab}, WeightKind::Matrix));
    FERRY_ASSIGN(e.output_norm, t.get("output_norm.weight", {h.n_embd}, WeightKind::Norm));
    FERRY_ASSIGN(std::optional<Tensor> output,
                 t.get_optional("output.weight", {h.n_embd, h.n_vocab}, WeightKind::Matrix));
    e.output = output ? std::move(*output) : e.token_embd;
    return e;
}

}  // namespace ferry::model
