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
//     logits of quantized files match llama.cpp's.
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
};

// The KV cache types (llama.cpp's -ctk / -ctv): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL.
bool kv_cache_type_supported(GgmlType type);
// Empty if every backend can create `spec`; otherwise a message naming the offending type and head size.
std::string kv_layer_error(const KvLayerSpec& spec);

struct KvHandle {
    int32_t id = -1;
};

struct AttnParams {
    float kq_scale = 1.0f;  // logits = kq_scale * q.k
    int64_t n_kv = 0;       // cache cells [0, n_kv) hold this sequence; cell i is position i
    int64_t n_swa = 0;      // sliding window: a query at position p sees keys p - n_swa + 1 .. p; 0 = off
};

// Called with each named activation (llama.cpp's names: "attn_norm", "Qcur", "kqv_out", "ffn_out",
// "l_out", "result_norm", "result_output", ...), layer index or -1. The Ops object can `read` it.
using ActivationCallback = std::function<void(const Act&, std::string_view name, int layer)>;

// Bytes an implementation's ops actually read from memory that outlives the micro-batch: weights
// (for a mixture of experts, only the experts the router chose) and KV cache / recurrent state.
// Implementations add to it as they run; `ferry bench` resets it and divides by the tokens.
struct Traffic {
    uint64_t weight_bytes = 0;
    uint64_t kv_bytes = 0;
};

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

    // RMSNorm over ne[0] of every row: x / sqrt(mean(x^2) + eps), then times w {ne[0]} (F32) if given.
    virtual Act rms_norm(const Act& x, const Tensor* w, float eps) = 0;

    // x {head_dim, n_head, T}; pos[t] is token t's position (pos.size() == T).
    virtual Act rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) = 0;

    // Element-wise on equal shapes.
    virtual Act add(const Act& a, const Act& b) = 0;
    virtual Act mul(const Act& a, const Act& b) = 0;
    virtual Act scale(const Act& a, float s) = 0;
    virtual Act silu(const Act& a) = 0;
    virtual Act gelu(const Act& a) = 0;  // tanh approximation
    // Gated units, gate and up {n_ff, T}: act(gate) * up.
    virtual Act swiglu(const Act& gate, const Act& up) = 0;
    virtual Act geglu(const Act& gate, const Act& up) = 0;

    // Softmax over ne[0] of every row of scale * x.
    virtual Act softmax(const Act& x, float scale) = 0;

    // Rows [first, first + count) of x {ne0, n_rows} -> {ne0, count}.
    virtual Act rows(const Act& x, int64_t first, int64_t count) = 0;
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

    // Per row of x {n, rows}: indices of the k largest values, largest first (ties: lower index first).
    // -> host [rows][k].
    virtual std::vector<int32_t> top_k(const Act& x, int64_t k) = 0;

    // Names an activation for debugging / diffing; calls the callback if one is set.
    void name(const Act& a, std::string_view n, int layer = -1) {
        if (callback_) callback_(a, n, layer);
    }
    void set_callback(ActivationCallback cb) { callback_ = std::move(cb); }

    Traffic& traffic() { return traffic_; }

private:
    ActivationCallback callback_;
    Traffic traffic_;
};

}  // namespace ferry::backend
