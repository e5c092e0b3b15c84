// qwen3: dense Qwen3, the pre-norm SwiGLU transformer of dense_swiglu.h with q and k RMS-normalized per
// head (attn_q_norm, attn_k_norm {head_dim}) before NeoX RoPE (pairs (i, i + n_rot/2)) over the whole head.
#include "model/arch.h"
#include "model/dense_swiglu.h"

namespace ferry::model {

Result<std::unique_ptr<Model>> load_qwen3(const gguf::File& file) {
    return load_dense_swiglu(
        file, {.arch = "qwen3", .rope_mode = backend::RopeMode::Neox, .qk_norm = true, .rope_freqs = false});
}

}  // namespace ferry::model
