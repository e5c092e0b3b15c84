// The reference backend: every op in plain scalar f32 on host memory, written to be obviously
// correct, never optimized and never built with -ffast-math. It is the oracle the CPU and CUDA
// backends are tested against, and it alone is checked directly against llama.cpp's logits.
//
// Numerics (what a faster backend reproduces up to reordering of sums):
//   - matmul: each activation row is quantized with the scalar quantizer of the weight's paired
//     activation type (quant/formats.h), then each output is the format's scalar vec_dot with the
//     weight row. F16 / BF16 weights: activations rounded to F16 / BF16, dot accumulated in double.
//   - rms_norm: sum of squares in double; scale = 1 / sqrtf(mean + eps) in float; then times the weight.
//   - rope: theta for pair i is pos * freq_scale * base^(-2i/n_rot) computed as in ggml (a running
//     product of powf(base, -2/n_rot)), cos/sin in float.
//   - attention: f32 softmax over the visible keys (max subtracted, sum in double), K and V read from the
//     cache as stored (F16 cells round K and V to F16 when written, as llama.cpp's F16 cache does).
//   - gated_delta_net: the recurrence token by token (the definition in ops.h), dot products in double,
//     the state kept in f32 between tokens.
//   - moe_ffn: router logits by matmul, routing by backend/moe_routing.h, then each (token, chosen
//     expert) pair through matmul's numerics one at a time; the weighted expert outputs summed in
//     the order chosen, the shared expert added last.
//   - gelu: tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in f32.
#pragma once

#include <deque>
#include <vector>

#include "backend/ops.h"
#include "backend/state_store.h"

namespace ferry::backend::reference {

class ReferenceOps final : public Ops {
public:
    void reset() override;
    Act input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) override;
    void read(const Act& a, std::span<float> out) override;
    Act get_rows(const Tensor& table, std::span<const int32_t> ids) override;
    Act matmul(const Tensor& w, const Act& x) override;
    Act rms_norm(const Act& x, const Tensor* w, float eps) override;
    Act rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) override;
    Act add(const Act& a, const Act& b) override;
    Act mul(const Act& a, const Act& b) override;
    Act scale(const Act& a, float s) override;
    Act silu(const Act& a) override;
    Act sigmoid(const Act& a) override;
    Act gelu(const Act& a) override;
    Act swiglu(const Act& gate, const Act& up) override;
    Act geglu(const Act& gate, const Act& up) override;
    Act softmax(const Act& x, float scale) override;
    Act rows(const Act& x, int64_t first, int64_t count) override;
    Act cols(const Act& x, int64_t first, int64_t count) override;
    Act l2_norm(const Act& x, float eps) override;
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

    // Host access for tests and callbacks: the f32 data of a live activation.
    std::span<const float> data(const Act& a) const;

private:
    struct KvLayer {
        KvLayerSpec spec;
        // [n_ctx][n_head_kv] rows of head_dim values, each row whole blocks of type_k / type_v.
        std::vector<uint8_t> k;
        std::vector<uint8_t> v;
    };

    Act alloc(std::array<int64_t, kMaxDims> ne);
    std::vector<float>& buf(const Act& a);
    const std::vector<float>& buf(const Act& a) const;
    Act unary(const Act& a, float (*f)(float));
    Act binary(const Act& a, const Act& b, float (*f)(float, float));

    std::deque<std::vector<float>> acts_;  // a deque: alloc never moves live buffers
    std::vector<KvLayer> kv_;
    StateStore states_;
};

}  // namespace ferry::backend::reference
