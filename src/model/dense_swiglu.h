// The pre-norm transformer with a SwiGLU FFN that llama and qwen3 share; each architecture's file says
// which variant it is (RoPE kind, per-head q/k norms, Llama 3's rope_freqs).
//
//   x = token_embd[tokens]
//   per layer:  h = x + attn_output(attention(rms_norm(x) * attn_norm))
//               x = h + ffn_down(silu(ffn_gate(n)) * ffn_up(n)),  n = rms_norm(h) * ffn_norm
//   logits = output(rms_norm(x) * output_norm)                               (token_embd when tied)
#pragma once

#include <memory>

#include "backend/ops.h"
#include "core/result.h"
#include "gguf/reader.h"
#include "model/model.h"

namespace ferry::model {

struct DenseSwigluVariant {
    const char* arch = nullptr;  // GGUF general.architecture and the key prefix
    backend::RopeMode rope_mode = backend::RopeMode::Normal;
    bool qk_norm = false;     // attn_q_norm / attn_k_norm {head_dim} before RoPE (required when set)
    bool rope_freqs = false;  // optional rope_freqs.weight {n_rot / 2}: Llama 3's per-frequency divisors
};

Result<std::unique_ptr<Model>> load_dense_swiglu(const gguf::File& file, const DenseSwigluVariant& variant);

}  // namespace ferry::model
