#include "backend/recording/recording_ops.h"

#include <algorithm>

#include "backend/moe_routing.h"

namespace ferry::backend::recording {

Act RecordingOps::record(std::string op, const Tensor* w, std::initializer_list<Act> in,
                         std::array<int64_t, kMaxDims> out) {
    OpRecord r;
    r.op = std::move(op);
    if (w != nullptr) {
        r.weight = w->name;
        r.weight_type = w->type;
    }
    for (const Act& a : in) r.in.push_back(a.ne);
    r.out = out;
    Act a{out, next_id_++};
    r.out_id = a.id;
    r.out_bytes = uint64_t(a.n_elements()) * sizeof(float);
    ops_.push_back(std::move(r));
    return a;
}

Act RecordingOps::input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) {
    Act a = record("input", nullptr, {}, ne);
    FERRY_CHECK(int64_t(data.size()) == a.n_elements());
    return a;
}

void RecordingOps::read(const Act& a, std::span<float> out) {
    FERRY_CHECK(int64_t(out.size()) == a.n_elements());
    std::fill(out.begin(), out.end(), 0.0f);
}

Act RecordingOps::get_rows(const Tensor& table, std::span<const int32_t> ids) {
    return record("get_rows", &table, {}, {table.ne[0], int64_t(ids.size()), 1, 1});
}

Act RecordingOps::matmul(const Tensor& w, const Act& x) {
    FERRY_CHECK(x.ne[0] == w.ne[0]);
    return record("matmul", &w, {x}, {w.ne[1], x.n_rows(), 1, 1});
}

Act RecordingOps::rms_norm(const Act& x, const Tensor* w, float) { return record("rms_norm", w, {x}, x.ne); }

Act RecordingOps::rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) {
    FERRY_CHECK(int64_t(pos.size()) == x.ne[2] && p.n_rot <= x.ne[0]);
    return record("rope", nullptr, {x}, x.ne);
}

Act RecordingOps::rows(const Act& x, int64_t first, int64_t count) {
    FERRY_CHECK(first >= 0 && first + count <= x.n_rows());
    return record("rows", nullptr, {x}, {x.ne[0], count, 1, 1});
}

Act RecordingOps::cols(const Act& x, int64_t first, int64_t count) {
    FERRY_CHECK(first >= 0 && count >= 0 && first + count <= x.ne[0]);
    return record("cols", nullptr, {x}, {count, x.ne[1], x.ne[2], x.ne[3]});
}

StateHandle RecordingOps::new_state_layer(const StateLayerSpec& spec) {
    states_.push_back(spec);
    state_bytes_ += spec.bytes();
    return StateHandle{int32_t(states_.size() - 1)};
}

void RecordingOps::state_get(StateHandle s, std::span<float> out) {
    FERRY_CHECK(s.id >= 0 && size_t(s.id) < states_.size());
    FERRY_CHECK(int64_t(out.size()) == states_[size_t(s.id)].n_floats());
    std::fill(out.begin(), out.end(), 0.0f);
}

void RecordingOps::state_set(StateHandle s, std::span<const float> in) {
    FERRY_CHECK(s.id >= 0 && size_t(s.id) < states_.size());
    FERRY_CHECK(int64_t(in.size()) == states_[size_t(s.id)].n_floats());
}

Act RecordingOps::ssm_conv(const Act& x, const Tensor& w, StateHandle s) {
    FERRY_CHECK(s.id >= 0 && size_t(s.id) < states_.size());
    FERRY_CHECK(x.ne[0] == states_[size_t(s.id)].n_conv_channels && w.ne[1] == x.ne[0]);
    return record("ssm_conv", &w, {x}, {x.ne[0], x.n_rows(), 1, 1});
}

Act RecordingOps::gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                                  const GdnParams& p) {
    FERRY_CHECK(p.state.id >= 0 && size_t(p.state.id) < states_.size());
    FERRY_CHECK(k.ne == q.ne && v.ne[2] == q.ne[2] && alpha.ne == beta.ne);
    return record("gated_delta_net", nullptr, {q, k, v, alpha, beta}, v.ne);
}

Act RecordingOps::concat_rows(std::span<const Act> parts) {
    return record("concat_rows", nullptr, {parts[0]}, concat_rows_shape(parts));
}

KvHandle RecordingOps::new_kv_layer(const KvLayerSpec& spec) {
    kv_.push_back(spec);
    auto bytes = [&](GgmlType type, int64_t head_dim) {
        const TypeInfo& t = type_info(type);
        return uint64_t(spec.n_ctx * spec.n_head_kv * head_dim) / t.block_size * t.type_size;
    };
    kv_bytes_ += bytes(spec.type_k, spec.head_dim_k) + bytes(spec.type_v, spec.head_dim_v);
    return KvHandle{int32_t(kv_.size() - 1)};
}

void RecordingOps::kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    FERRY_CHECK(pos0 >= 0 && pos0 + k.ne[2] <= kv_[size_t(kv.id)].n_ctx);
    record("kv_write", nullptr, {k, v}, {0, 0, 0, 0});
}

Act RecordingOps::attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    const KvLayerSpec& s = kv_[size_t(kv.id)];
    FERRY_CHECK(int64_t(pos.size()) == q.ne[2] && p.n_kv <= s.n_ctx && q.ne[1] % s.n_head_kv == 0);
    return record("attention", nullptr, {q}, {s.head_dim_v, q.ne[1], q.ne[2], 1});
}

std::vector<int32_t> RecordingOps::top_k(const Act& x, int64_t k) {
    record("top_k", nullptr, {x}, {k, x.n_rows(), 1, 1});
    return std::vector<int32_t>(static_cast<size_t>(k * x.n_rows()), 0);
}

Act RecordingOps::moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) {
    check_moe_shapes(x, w, p);
    const Act out = record("moe_ffn", w.gate_exps, {x}, x.ne);
    // What a backend holds at most while it runs: router logits and routing, and per (token, chosen
    // expert) the gate, up and down rows (f32) plus the quantized input rows (bounded by f32 size);
    // the shared expert's gate, up and down rows per token.
    const uint64_t n_tok = uint64_t(x.ne[1]), k = uint64_t(p.n_expert_used);
    const uint64_t n_embd = uint64_t(x.ne[0]), n_ff = uint64_t(w.gate_exps->ne[1]);
    const uint64_t n_ff_s = w.gate_shexp ? uint64_t(w.gate_shexp->ne[1]) : 0;
    uint64_t floats = n_tok * uint64_t(p.n_expert) + 2 * n_tok * k;  // logits, experts, weights
    floats += n_tok * n_embd;                                        // x quantized for gate / up
    floats += n_tok * k * (n_embd + 3 * n_ff + n_embd);              // gathered x, gate, up, act, down
    floats += n_tok * (3 * n_ff_s + 2 * n_embd);                     // shared expert
    ops_.back().scratch_bytes = floats * sizeof(float);
    return out;
}

uint64_t RecordingOps::activation_bytes() const {
    uint64_t sum = 0;
    for (const OpRecord& r : ops_) sum += r.out_bytes + r.scratch_bytes;
    return sum;
}

}  // namespace ferry::backend::recording
