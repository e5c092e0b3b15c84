// The router of moe_ffn (backend/ops.h), shared by every backend: from router logits to the chosen
// experts and their weights. Host code on f32 data; the backends differ only in how they compute the
// logits and the experts.
#pragma once

#include <cstdint>

#include "backend/ops.h"

namespace ferry::backend {

// logits [n_tok][p.n_expert] -> experts and weights [n_tok][p.n_expert_used], in moe_ffn's order
// (largest probability first, ties to the lower index). The probabilities are f32 (softmax: max
// subtracted, exp in f32, sum in double). ggml_softmax (the CPU backend): ggml's soft_max arithmetic
// instead (cpu/ggml_math.h): ggml's vector exp on whole 16-value vectors, each vector summed in float
// before it joins the double sum, and the probabilities multiplied by float(1 / sum) rather than
// divided; the reference keeps the plain formula.
void moe_route(const float* logits, int64_t n_tok, const MoeParams& p, int32_t* experts, float* weights,
               bool ggml_softmax = false);

// Bytes of expert e of a 3-D expert tensor (one {ne[0], ne[1]} matrix).
inline uint64_t expert_bytes(const Tensor& w) { return w.nb[1] * uint64_t(w.ne[1]); }

}  // namespace ferry::backend
