// llama: Llama 2/3, SmolLM2, Mistral (dense): the pre-norm SwiGLU transformer of dense_swiglu.h.
//
// RoPE is the "normal" (interleaved-pair) kind: the HF checkpoint rotates halves (NeoX style), but
// llama.cpp's converter permutes the rows of attn_q / attn_k so that GGUF llama files use adjacent
// pairs. Llama 3 adds rope_freqs.weight {n_rot/2}, the per-frequency divisors of its scaling.
#include "model/arch.h"
#include "model/dense_swiglu.h"

namespace ferry::model {

Result<std::unique_ptr<Model>> load_llama(const gguf::File& file) {
    return load_dense_swiglu(
        file, {.arch = "llama", .rope_mode = backend::RopeMode::Normal, .qk_norm = false, .rope_freqs = true});
}

}  // namespace ferry::model
