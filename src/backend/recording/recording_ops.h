// The recording (dry-run) executor: computes nothing, notes every op with its shapes.
//
// A forward pass run through it yields the op list of one micro-batch: what the memory planner sizes
// compute buffers from, what a CUDA graph would capture, and the list two backends are diffed along.
// Activations have no memory; `read` yields zeros and `top_k` index 0s, so a forward whose control
// flow depended on data would not be recordable (none of ours does: MoE routing stays on the device).
#pragma once

#include <string>
#include <vector>

#include "backend/ops.h"

namespace ferry::backend::recording {

struct OpRecord {
    std::string op;                                 // "matmul", "rms_norm", "attention", ...
    std::string weight;                             // weight tensor name, if any
    GgmlType weight_type = GgmlType::F32;           // its type, if any
    std::vector<std::array<int64_t, kMaxDims>> in;  // activation inputs
    std::array<int64_t, kMaxDims> out{0, 0, 0, 0};  // output (zeros for ops without one)
    int32_t out_id = -1;
    uint64_t out_bytes = 0;      // f32 bytes of the output activation
    uint64_t scratch_bytes = 0;  // temporaries the op needs while it runs (moe_ffn), beside the output
};

class RecordingOps final : public Ops {
public:
    void reset() override { ops_.clear(); }
    Act input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) override;
    void read(const Act& a, std::span<float> out) override;
    Act get_rows(const Tensor& table, std::span<const int32_t> ids) override;
    Act matmul(const Tensor& w, const Act& x) override;
    Act rms_norm(const Act& x, const Tensor* w, float eps) override;
    Act rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) override;
    Act add(const Act& a, const Act& b) override { return record("add", nullptr, {a, b}, a.ne); }
    Act mul(const Act& a, const Act& b) override { return record("mul", nullptr, {a, b}, a.ne); }
    Act scale(const Act& a, float) override { return record("scale", nullptr, {a}, a.ne); }
    Act silu(const Act& a) override { return record("silu", nullptr, {a}, a.ne); }
    Act gelu(const Act& a) override { return record("gelu", nullptr, {a}, a.ne); }
    Act sigmoid(const Act& a) override { return record("sigmoid", nullptr, {a}, a.ne); }
    Act swiglu(const Act& g, const Act& u) override { return record("swiglu", nullptr, {g, u}, g.ne); }
    Act geglu(const Act& g, const Act& u) override { return record("geglu", nullptr, {g, u}, g.ne); }
    Act softmax(const Act& x, float) override { return record("softmax", nullptr, {x}, x.ne); }
    Act rows(const Act& x, int64_t first, int64_t count) override;
    Act cols(const Act& x, int64_t first, int64_t count) override;
    Act l2_norm(const Act& x, float) override { return record("l2_norm", nullptr, {x}, x.ne); }
    StateHandle new_state_layer(const StateLayerSpec& spec) override;
    void state_get(StateHandle s, std::span<float> out) override;
    void state_set(StateHandle s, std::span<const float> in) override;
    Act ssm_conv(const Act& x, const Tensor& w, StateHandle s) override;
    Act gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                        const GdnParams& p) override;
    Act concat_rows(std::span<const Act> parts) override;
    KvHandle new_kv_layer(const KvLayerSpec& spec) override;
    void kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) override;
    Act attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) override;
    std::vector<int32_t> top_k(const Act& x, int64_t k) override;
    Act moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) override;

    const std::vector<OpRecord>& ops() const { return ops_; }
    // Sum of the output and scratch bytes of all recorded ops (an upper bound on the compute buffer).
    uint64_t activation_bytes() const;
    uint64_t kv_bytes() const { return kv_bytes_; }
    uint64_t state_bytes() const { return state_bytes_; }

private:
    Act record(std::string op, const Tensor* w, std::initializer_list<Act> in, std::array<int64_t, kMaxDims> out);

    std::vector<OpRecord> ops_;
    std::vector<KvLayerSpec> kv_;
    uint64_t kv_bytes_ = 0;
    std::vector<StateLayerSpec> states_;
    uint64_t state_bytes_ = 0;
    int32_t next_id_ = 0;
};

}  // namespace ferry::backend::recording
