// Reading a model's hyperparameters and weights out of a GGUF file, with errors that name the key or
// tensor that is wrong.
//
// Keys are written `<arch>.<suffix>` in GGUF (`llama.block_count`); HparamReader takes the suffix.
// Tensors are checked against the shape the hyperparameters imply, in ggml order ({n_in, n_out} for a
// matrix), and against the types ferry can compute with.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/reader.h"

namespace ferry::model {

class HparamReader {
public:
    HparamReader(const gguf::File& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

    const std::string& arch() const { return arch_; }
    std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

    Result<uint32_t> u32(std::string_view suffix) const;
    Result<uint32_t> u32_or(std::string_view suffix, uint32_t fallback) const;
    Result<float> f32(std::string_view suffix) const;
    Result<float> f32_or(std::string_view suffix, float fallback) const;
    Result<std::string> str_or(std::string_view suffix, std::string fallback) const;

private:
    const gguf::File& file_;
    std::string arch_;
};

// Error for a key whose value contradicts another ("llama.attention.head_count_kv = 3 does not divide ...").
Error bad_key(const std::string& key, const std::string& why);

enum class WeightKind {
    Matrix,  // a matmul / get_rows operand: any type with a block format and a dot product
    Norm,    // a vector multiplied element-wise: F32
};

class TensorTable {
public:
    explicit TensorTable(const gguf::File& file) : file_(file) {}

    // The tensor `name` with exactly this shape (ggml order; trailing dims 1).
    Result<Tensor> get(const std::string& name, std::initializer_list<int64_t> ne, WeightKind kind) const;
    // nullopt if absent; an error if present with the wrong shape or type.
    Result<std::optional<Tensor>> get_optional(const std::string& name, std::initializer_list<int64_t> ne,
                                               WeightKind kind) const;

private:
    const gguf::File& file_;
};

// "blk.<il>.<suffix>"
std::string layer_name(int il, std::string_view suffix);

// Hyperparameters shared by the decoder-only transformers (llama, qwen3, qwen3moe, gemma3).
struct DenseHparams {
    int64_t n_vocab = 0;              // rows of token_embd
    int64_t n_embd = 0;               // embedding_length
    int64_t n_layer = 0;              // block_count
    int64_t n_ctx_train = 0;          // context_length
    int64_t n_head = 0;               // attention.head_count
    int64_t n_head_kv = 0;            // attention.head_count_kv (default n_head)
    int64_t head_dim = 0;             // attention.key_length (default n_embd / n_head)
    int64_t head_dim_v = 0;           // attention.value_length (default head_dim)
    int64_t n_ff = 0;                 // feed_forward_length
    float rms_eps = 0.0f;             // attention.layer_norm_rms_epsilon
    float rope_freq_base = 10000.0f;  // rope.freq_base
    float rope_freq_scale = 1.0f;     // 1 / rope.scaling.factor for rope.scaling.type "linear"
    int64_t n_rot = 0;                // rope.dimension_count (default head_dim)
};

// Reads DenseHparams and checks them against each other and against token_embd.weight. Without
// require_ffn, feed_forward_length is optional (n_ff 0 when absent: a model whose FFN is a MoE).
Result<DenseHparams> load_dense_hparams(const HparamReader& r, const gguf::File& file, bool require_ffn = true);

// Hyperparameters of a mixture-of-experts FFN (qwen3moe, qwen35moe).
struct MoeHparams {
    int64_t n_expert = 0;       // expert_count
    int64_t n_expert_used = 0;  // expert_used_count, 1 <= n_expert_used <= n_expert
    int64_t n_ff_exp = 0;       // expert_feed_forward_length: rows of each routed expert's gate / up
    int64_t n_ff_shexp = 0;     // expert_shared_feed_forward_length: the shared expert's (0 = none)
};

// Reads MoeHparams; the shared expert's length is read only when `shared_expert` (then required).
Result<MoeHparams> load_moe_hparams(const HparamReader& r, bool shared_expert);

// The tensors of one layer's MoE FFN (shapes as backend::MoeWeights states them).
struct MoeTensors {
    Tensor gate_inp;                       // ffn_gate_inp  {n_embd, n_expert}
    Tensor gate_exps;                      // ffn_gate_exps {n_embd, n_ff_exp, n_expert}
    Tensor up_exps;                        // ffn_up_exps   {n_embd, n_ff_exp, n_expert}
    Tensor down_exps;                      // ffn_down_exps {n_ff_exp, n_embd, n_expert}
    std::optional<Tensor> gate_shexp;      // ffn_gate_shexp {n_embd, n_ff_shexp}
    std::optional<Tensor> up_shexp;        // ffn_up_shexp   {n_embd, n_ff_shexp}
    std::optional<Tensor> down_shexp;      // ffn_down_shexp {n_ff_shexp, n_embd}
    std::optional<Tensor> gate_inp_shexp;  // ffn_gate_inp_shexp {n_embd} (optional even with a shared expert)

    // Pointers into this object: valid while it lives where it is.
    backend::MoeWeights weights() const;
};

// Layer il's MoE tensors; the shared expert's three matrices are required when h.n_ff_shexp > 0.
Result<MoeTensors> load_moe_tensors(const TensorTable& t, int il, int64_t n_embd, const MoeHparams& h);

// The input embedding and the output head every dense architecture has: token_embd {n_embd, n_vocab},
// output_norm {n_embd}, and output {n_embd, n_vocab}, which is token_embd when the file ties them.
struct EmbeddingAndHead {
    Tensor token_embd;
    Tensor output_norm;
    Tensor output;
};
Result<EmbeddingAndHead> load_embedding_and_head(const TensorTable& t, const DenseHparams& h);

}  // namespace ferry::model
