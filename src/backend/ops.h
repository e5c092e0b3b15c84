// The operations a model's forward pass is written against.
//
// A model file calls these in order, eagerly, like plain imperative code; each implementation decides
// what a call does: the reference backend computes it in scalar f32 (reference/), the CPU backend with
// SIMD kernels and threads, a CUDA backend on the device, and a recording executor only notes the op
// with its shapes (for the memory planner, graph capture, and backend-vs-backend diffs).
//
// Data model:
//   - Weights are `Tensor` views (core/tensor.h) of any type, living wherever the model placed them.
//   - Activations are `Act` handles: an f32, contiguous tensor owned by the Ops implementation. The
//     handle holds only a shape and an id; model code never touches activation memory directly, so the
//     same forward runs on host memory, device memory, or no memory at all (dry run).
//   - Activations live until `reset()`, which the runtime calls before each micro-batch.
//   - KV cache layers are `KvHandle`s: persistent per-layer storage created by `new_kv_layer`, alive as
//     long as the Ops object.
//   - Recurrent state layers (Gated DeltaNet) are `StateHandle`s from `new_state_layer`: a conv state and
//     an f32 SSM state per layer, alive as long as the Ops object; ssm_conv and gated_delta_net read
//     and update them in place; state_get / state_set copy them to and from the host (checkpoints).
//   - Host inputs (token ids, positions) are passed as spans; host outputs come back through `read`.
//
// Shapes are in ggml order: ne[0] is the innermost, contiguous dimension (see core/tensor.h). The
// common cases, with T = tokens in the micro-batch:
//   hidden state      {n_embd, T}
//   per-head view     {head_dim, n_head, T}          (a reshape of {head_dim * n_head, T})
//   weight matrix     {n_in, n_out}                  (n_out rows of n_in elements)
//   logits            {n_vocab, T}
//
// Numerics every implementation must follow (the reference backend defines them):
//   - matmul quantizes its activations to the weight format's paired activation type before the dot,
//     as ggml does (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants
//     and IQ4_XS; F16 and BF16 weights take activations rounded to F16 / BF16; F32 takes F32), so
//     logits of quantized files match llama.cpp's. The activation quantizers round as ggml-cpu's x86
//     ones do (quant::activation_quantizer: id = 127 / amax, half to even), not as the reference
//     weight quantizers (1 / d, half away from zero).
//   - reductions (norm sums, dot products of float rows) may be reordered; results are compared by
//     NMSE against the reference, never bit for bit.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "core/ggml_type.h"
#include "core/tensor.h"

namespace ferry::backend {

// An f32 activation owned by an Ops implementation. Contiguous, ne[0] innermost.
struct Act {
    std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
    int32_t id = -1;  // the implementation's handle; -1 = none

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

// Same data, new shape (element count must match). Free: activations are contiguous.
inline Act reshape(const Act& a, std::array<int64_t, kMaxDims> ne) {
    Act r{ne, a.id};
    FERRY_CHECK(r.n_elements() == a.n_elements());
    return r;
}

// The shape of concat_rows(parts): {ne0, sum of the parts' rows}; checks that every part has ne0.
inline std::array<int64_t, kMaxDims> concat_rows_shape(std::span<const Act> parts) {
    FERRY_CHECK(!parts.empty());
    int64_t total = 0;
    for (const Act& p : parts) {
        FERRY_CHECK(p.ne[0] == parts[0].ne[0]);
        total += p.n_rows();
    }
    return {parts[0].ne[0], total, 1, 1};
}

enum class RopeMode {
    Normal,  // rotate adjacent pairs (x[2i], x[2i+1]); ggml mode 0, GGUF llama after the converter's permute
    Neox,    // rotate pairs (x[i], x[i + n_rot/2]); ggml mode 2 (GPT-NeoX, Qwen, Gemma)
};

struct RopeParams {
    RopeMode mode = RopeMode::Normal;
    int64_t n_rot = 0;           // rotated dims at the start of each head, even, <= head_dim; the rest pass through
    float freq_base = 10000.0f;  // theta_i = pos * freq_scale * freq_base^(-2i / n_rot)
    float freq_scale = 1.0f;     // linear position scaling (1 / rope.scaling.factor)
    const Tensor* freq_factors = nullptr;  // (optional) F32 {n_rot / 2}: theta_i is divided by it (Llama 3)
};

// Per-layer KV storage: K and V of n_head_kv heads for n_ctx positions, K in `type_k` and V in
// `type_v`, each one of kv_cache_type_supported(). A cache row (one head's values at one position)
// is stored as whole blocks of its type, so head_dim_k / head_dim_v must be multiples of the type's
// block size (kv_layer_error says why a spec is invalid).
struct KvLayerSpec {
    int64_t n_ctx = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim_k = 0;
    int64_t head_dim_v = 0;
    GgmlType type_k = GgmlType::F16;
    GgmlType type_v = GgmlType::F16;
    // llama.cpp's -fa: which of llama.cpp's attention computations a backend that emulates them (the CPU
    // backend) follows over this layer; the same attention either way (the reference ignores it).
    bool flash_attn = true;
};

// The KV cache types (llama.cpp's -ctk / -ctv): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL.
bool kv_cache_type_supported(GgmlType type);
// Empty if every backend can create `spec`; otherwise a message naming the offending type and head size.
std::string kv_layer_error(const KvLayerSpec& spec);

struct KvHandle {
    int32_t id = -1;
};

// Per-layer recurrent state of a Gated DeltaNet layer (one sequence), always f32:
//   conv state  {n_conv_channels, conv_kernel - 1}: the last conv_kernel - 1 inputs of the causal conv,
//               oldest first (zeros at the start of a sequence);
//   ssm state   {head_dim_v, head_dim_k, n_head_v}: per V head the matrix S[i][j] (i = key dim, j =
//               value dim) stored key-major, S[h][i * head_dim_v + j].
struct StateLayerSpec {
    int64_t n_conv_channels = 0;
    int64_t conv_kernel = 0;
    int64_t n_head_v = 0;
    int64_t head_dim_k = 0;
    int64_t head_dim_v = 0;

    int64_t conv_floats() const { return (conv_kernel - 1) * n_conv_channels; }
    int64_t ssm_floats() const { return n_head_v * head_dim_k * head_dim_v; }
    // state_get / state_set size: conv state, then ssm state.
    int64_t n_floats() const { return conv_floats() + ssm_floats(); }
    uint64_t bytes() const { return uint64_t(n_floats()) * sizeof(float); }
};

struct StateHandle {
    int32_t id = -1;
};

// The Gated DeltaNet recurrence over a micro-batch (SPEC §2), per token t and V head h, with K head
// kh = h % n_head_k (GGUF's tiled V-head order):
//   decay = exp(ssm_a[h] * softplus(alpha[h] + dt_bias[h])),  b = sigmoid(beta[h])
//   S <- decay * S;  d = b * (v - S^T k);  S <- S + k d^T;  o = S^T (q / sqrt(head_dim_k))
// q and k arrive L2-normalized (l2_norm). softplus(x) = log(1 + exp(x)), x for x > 20 (as ggml).
struct GdnParams {
    const Tensor* ssm_a = nullptr;    // F32 {n_head_v}: -exp(A_log), as the converter stores it
    const Tensor* dt_bias = nullptr;  // F32 {n_head_v}: ssm_dt.bias
    StateHandle state;
};

struct AttnParams {
    float kq_scale = 1.0f;  // logits = kq_scale * q.k
    int64_t n_kv = 0;       // cache cells [0, n_kv) hold this sequence; cell i is position i
    int64_t n_swa = 0;      // sliding window: a query at position p sees keys p - n_swa + 1 .. p; 0 = off
};

// A mixture-of-experts FFN layer (moe_ffn). Expert e of a 3-D tensor {n_in, n_out, n_expert} is the
// matrix at data + e * nb[2] (expert_matrix); nb[2] may exceed one expert's bytes (views of a fused
// tensor), and experts the router does not choose are never read.
struct MoeWeights {
    const Tensor* gate_inp = nullptr;   // ffn_gate_inp  {n_embd, n_expert}: the router (F32 in real files)
    const Tensor* gate_exps = nullptr;  // ffn_gate_exps {n_embd, n_ff, n_expert}
    const Tensor* up_exps = nullptr;    // ffn_up_exps   {n_embd, n_ff, n_expert}
    const Tensor* down_exps = nullptr;  // ffn_down_exps {n_ff, n_embd, n_expert}
    // (optional) The shared expert every token runs through: all three or none.
    const Tensor* gate_shexp = nullptr;  // ffn_gate_shexp {n_embd, n_ff_shexp}
    const Tensor* up_shexp = nullptr;    // ffn_up_shexp   {n_embd, n_ff_shexp}
    const Tensor* down_shexp = nullptr;  // ffn_down_shexp {n_ff_shexp, n_embd}
    // (optional, needs the shared expert) ffn_gate_inp_shexp {n_embd}: the shared expert's output is
    // scaled by sigmoid(dot(gate_inp_shexp, x)) per token (qwen35moe).
    const Tensor* gate_inp_shexp = nullptr;
};

enum class MoeGating {
    Softmax,  // probabilities = softmax over all n_expert router logits (qwen3moe, qwen35moe)
    Sigmoid,  // probabilities = sigmoid of each logit
};

// The gated unit of every expert (routed and shared): act(gate x) * up x.
enum class MoeActivation { Silu };

struct MoeParams {
    int64_t n_expert = 0;       // experts in the tensors (ne[2])
    int64_t n_expert_used = 0;  // k: experts chosen per token, 1 <= k <= n_expert
    MoeGating gating = MoeGating::Softmax;
    bool norm_topk = false;      // divide the k chosen probabilities by their sum (clamped to >= 2^-14)
    float weights_scale = 1.0f;  // then multiply them by this
    MoeActivation activation = MoeActivation::Silu;
};

// Expert e of a 3-D expert tensor as a 2-D matrix view {ne[0], ne[1]}.
inline Tensor expert_matrix(const Tensor& w, int64_t e) {
    FERRY_CHECK(e >= 0 && e < w.ne[2] && w.ne[3] == 1);
    Tensor m;
    m.name = w.name;
    m.type = w.type;
    m.n_dims = 2;
    m.ne = {w.ne[0], w.ne[1], 1, 1};
    m.nb = {w.nb[0], w.nb[1], w.nb[1] * uint64_t(w.ne[1]), w.nb[1] * uint64_t(w.ne[1])};
    m.data = static_cast<const uint8_t*>(w.data) + uint64_t(e) * w.nb[2];
    return m;
}

// Panics (FERRY_CHECK) unless x {n_embd, T} and the weights have the shapes MoeWeights states and p is
// consistent with them. Every implementation calls it first.
void check_moe_shapes(const Act& x, const MoeWeights& w, const MoeParams& p);

// Called with each named activation (llama.cpp's names: "attn_norm", "Qcur", "kqv_out", "ffn_out",
// "l_out", "result_norm", "result_output", ...), layer index or -1. The Ops object can `read` it.
using ActivationCallback = std::function<void(const Act&, std::string_view name, int layer)>;

// Bytes an implementation's ops actually read from memory that outlives the micro-batch: weights
// (for a mixture of experts, only the experts the router chose) and KV cache / recurrent state.
// Implementations add to it as they run; `ferry bench` resets it and divides by the tokens. The CPU
// backend counts, per call: matmul every row of its weight once, get_rows the rows it gathers,
// rms_norm its weight, attention the KV cells some query of the micro-batch sees (K and V, each KV
// head once however many query heads share it), moe_ffn the router, the shared expert and each chosen
// expert's gate, up and down matrices once per call (an expert several tokens chose is read once).
// expert_bytes is the part of weight_bytes that is routed experts' matrices.
struct Traffic {
    uint64_t weight_bytes = 0;
    uint64_t expert_bytes = 0;
    uint64_t kv_bytes = 0;
};

// One sequence of Ops::attention_seqs: its queries are the tokens [first, first + pos.size()) of the
// stacked q, at positions pos, over its own KV layer kv with its own params.
struct AttnSeq {
    KvHandle kv;
    int64_t first = 0;
    std::span<const int32_t> pos;
    AttnParams p;
};

// Checks (FERRY_CHECK) what Ops::attention_seqs requires of q and seqs.
void check_attn_seqs(const Act& q, std::span<const AttnSeq> seqs);

class Ops {
public:
    virtual ~Ops() = default;

    // Drops every activation (not the KV layers). Called before each micro-batch.
    virtual void reset() = 0;

    // Host f32 data {ne} -> activation.
    virtual Act input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) = 0;
    // Activation -> host f32 (out.size() == a.n_elements()).
    virtual void read(const Act& a, std::span<float> out) = 0;

    // Rows `ids` of table {n_embd, n_rows} (any type), as f32 -> {n_embd, ids.size()}.
    // PRECONDITION: every id in [0, n_rows).
    virtual Act get_rows(const Tensor& table, std::span<const int32_t> ids) = 0;

    // w {n_in, n_out} (any weight type) x {n_in, T} -> {n_out, T}: out[t][o] = dot(w row o, x row t),
    // with x quantized to w's paired activation type first.
    virtual Act matmul(const Tensor& w, const Act& x) = 0;
    // matmul(*ws[k], x) for each k (weights with the same n_in), each result exactly as matmul gives
    // it; a backend may prepare x once and run the products together (one parallel region in decode).
    virtual std::vector<Act> matmul_many(std::span<const Tensor* const> ws, const Act& x) {
        std::vector<Act> out;
        for (const Tensor* w : ws) out.push_back(matmul(*w, x));
        return out;
    }

    // RMSNorm over ne[0] of every row: x / sqrt(mean(x^2) + eps), then times w {ne[0]} (F32) if given.
    virtual Act rms_norm(const Act& x, const Tensor* w, float eps) = 0;

    // x {head_dim, n_head, T}; pos[t] is token t's position (pos.size() == T).
    virtual Act rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) = 0;

    // Element-wise on equal shapes.
    virtual Act add(const Act& a, const Act& b) = 0;
    virtual Act mul(const Act& a, const Act& b) = 0;
    virtual Act scale(const Act& a, float s) = 0;
    virtual Act silu(const Act& a) = 0;
    virtual Act sigmoid(const Act& a) = 0;
    virtual Act gelu(const Act& a) = 0;  // tanh approximation
    // Gated units, gate and up {n_ff, T}: act(gate) * up.
    virtual Act swiglu(const Act& gate, const Act& up) = 0;
    virtual Act geglu(const Act& gate, const Act& up) = 0;

    // Softmax over ne[0] of every row of scale * x.
    virtual Act softmax(const Act& x, float scale) = 0;

    // Rows [first, first + count) of x {ne0, n_rows} -> {ne0, count}.
    virtual Act rows(const Act& x, int64_t first, int64_t count) = 0;
    // Elements [first, first + count) of every row of x {ne0, ne1, ne2, ne3} -> {count, ne1, ne2, ne3}.
    virtual Act cols(const Act& x, int64_t first, int64_t count) = 0;

    // Every row of x scaled to unit L2 norm: x / max(sqrt(sum x^2), eps) (ggml_l2_norm).
    virtual Act l2_norm(const Act& x, float eps) = 0;

    virtual StateHandle new_state_layer(const StateLayerSpec& spec) = 0;
    // Host copies of a state layer, spec.n_floats() values: conv state then ssm state.
    virtual void state_get(StateHandle s, std::span<float> out) = 0;
    virtual void state_set(StateHandle s, std::span<const float> in) = 0;
    // Causal depthwise conv with a rolling state, then SiLU: x {n_conv_channels, T}, w {conv_kernel,
    // n_conv_channels} (F32) -> {n_conv_channels, T} with, for window u = [state rows; x rows],
    //   y[t][c] = silu(sum_j w[c][j] * u[t + j][c]),  j = 0 .. conv_kernel - 1;
    // afterwards the state holds the last conv_kernel - 1 rows of u.
    virtual Act ssm_conv(const Act& x, const Tensor& w, StateHandle s) = 0;
    // q, k {head_dim_k, n_head_k, T}, v {head_dim_v, n_head_v, T}, alpha and beta {n_head_v, T}
    // -> o {head_dim_v, n_head_v, T}; updates the ssm state of p.state. n_head_v is a multiple of n_head_k.
    virtual Act gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                                const GdnParams& p) = 0;
    // Parts {ne0, n_i} (rows flattened: n_i = part.n_rows()), all with the same ne0, stacked in order
    // -> {ne0, sum n_i}. The inverse of `rows`; joins the per-sequence pieces of a multi-sequence batch.
    virtual Act concat_rows(std::span<const Act> parts) = 0;

    virtual KvHandle new_kv_layer(const KvLayerSpec& spec) = 0;
    // k {head_dim_k, n_head_kv, T}, v {head_dim_v, n_head_kv, T} -> cells [pos0, pos0 + T).
    virtual void kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) = 0;
    // q {head_dim_k, n_head, T} at positions pos -> {head_dim_v, n_head, T}: causal attention over
    // cells [0, n_kv) (key j visible to a query at p iff j <= p and, with a window, p - j < n_swa).
    // GQA: query head h reads KV head h / (n_head / n_head_kv); n_head must be a multiple of n_head_kv.
    virtual Act attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) = 0;
    // Several sequences' attention in one call (continuous batching): q {head_dim_k, n_head, T} holds
    // the sequences' queries stacked in order (seqs[i].first increasing, covering [0, T)) -> {head_dim_v,
    // n_head, T}, each sequence's rows bit-identical to attention(its rows of q, kv, pos, p). The
    // default makes one attention call per sequence (rows, attention, concat_rows); a backend may
    // spread all the sequences' work over one parallel region instead.
    virtual Act attention_seqs(const Act& q, std::span<const AttnSeq> seqs);

    // Mixture-of-experts FFN, x {n_embd, T} -> {n_embd, T}. Per token x_t:
    //   logits = gate_inp x_t (n_expert, f32); p = softmax(logits) or sigmoid(logits) (p.gating)
    //   chosen = the k = n_expert_used largest p, largest first (ties: lower expert index first)
    //   w_j = p[chosen_j], divided by max(sum_j w_j, 2^-14) if norm_topk, then times weights_scale
    //   out_t = sum_j (in order j = 0..k-1) w_j * down_e(act(gate_e x_t) * up_e x_t),  e = chosen_j
    //   shared expert: out_t += g_t * down_s(act(gate_s x_t) * up_s x_t), g_t = sigmoid(gate_inp_shexp . x_t)
    //                  (g_t = 1 without gate_inp_shexp)
    // Every product follows matmul's numerics (the input quantized to the weight's paired type; the
    // down projections' input is each (token, expert) row of act(gate) * up). Only chosen experts are
    // computed and read; traffic().weight_bytes grows by the bytes read (router, chosen experts,
    // shared expert), traffic().expert_bytes by the chosen experts' part of them.
    virtual Act moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) = 0;

    // Per row of x {n, rows}: indices of the k largest values, largest first (ties: lower index first).
    // -> host [rows][k].
    virtual std::vector<int32_t> top_k(const Act& x, int64_t k) = 0;

    // Names an activation for debugging / diffing; calls the callback if one is set.
    void name(const Act& a, std::string_view n, int layer = -1) {
        if (callback_) callback_(a, n, layer);
    }
    void set_callback(ActivationCallback cb) { callback_ = std::move(cb); }

    Traffic& traffic() { return traffic_; }

    // Set while a forward pass runs several sequences (runtime::Session::step): a backend may then give its
    // products a faster float order of its own (the CPU backend: quant's one-sum order for Q4_1 and Q8_0),
    // so a sequence's logits may differ in their last bits from what it gets alone, as with llama.cpp's
    // batched paths. Off otherwise: every column as alone.
    void set_batched_step(bool on) { batched_step_ = on; }
    bool batched_step() const { return batched_step_; }

private:
    bool batched_step_ = false;
    ActivationCallback callback_;
    Traffic traffic_;
};

}  // namespace ferry::backend
