#include "backend/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cpu/ggml_math.h"

namespace ferry::backend {
namespace {

// ggml's floor on the sum of the chosen weights before renormalizing (llama.cpp build_moe_ffn).
constexpr float kMinWeightSum = 6.103515625e-5f;

void check_matrix(const Tensor* t, int64_t n_in, int64_t n_out, int64_t n_expert) {
    FERRY_CHECK(t != nullptr);
    FERRY_CHECK(t->ne[0] == n_in && t->ne[1] == n_out && t->ne[2] == n_expert && t->ne[3] == 1);
}

}  // namespace

void check_moe_shapes(const Act& x, const MoeWeights& w, const MoeParams& p) {
    const int64_t n_embd = x.ne[0];
    FERRY_CHECK(x.ne[2] == 1 && x.ne[3] == 1);
    FERRY_CHECK(p.n_expert >= 1 && p.n_expert_used >= 1 && p.n_expert_used <= p.n_expert);
    FERRY_CHECK(w.gate_exps != nullptr);
    const int64_t n_ff = w.gate_exps->ne[1];
    check_matrix(w.gate_inp, n_embd, p.n_expert, 1);
    check_matrix(w.gate_exps, n_embd, n_ff, p.n_expert);
    check_matrix(w.up_exps, n_embd, n_ff, p.n_expert);
    check_matrix(w.down_exps, n_ff, n_embd, p.n_expert);
    const bool shared = w.gate_shexp != nullptr;
    FERRY_CHECK((w.up_shexp != nullptr) == shared && (w.down_shexp != nullptr) == shared);
    FERRY_CHECK(w.gate_inp_shexp == nullptr || shared);
    if (shared) {
        const int64_t n_ff_s = w.gate_shexp->ne[1];
        check_matrix(w.gate_shexp, n_embd, n_ff_s, 1);
        check_matrix(w.up_shexp, n_embd, n_ff_s, 1);
        check_matrix(w.down_shexp, n_ff_s, n_embd, 1);
    }
    if (w.gate_inp_shexp) check_matrix(w.gate_inp_shexp, n_embd, 1, 1);
}

void moe_route(const float* logits, int64_t n_tok, const MoeParams& p, int32_t* experts, float* weights,
               bool ggml_softmax) {
    const int64_t n = p.n_expert, k = p.n_expert_used;
    std::vector<float> prob(static_cast<size_t>(n)), key(static_cast<size_t>(n));
    std::vector<int32_t> idx(static_cast<size_t>(n));
    for (int64_t t = 0; t < n_tok; ++t) {
        const float* l = logits + t * n;
        if (p.gating == MoeGating::Softmax) {
            const float mx = *std::max_element(l, l + n);
            double sum = 0;
            if (ggml_softmax) {
                const int64_t nv = cpu::ggml_vec_part(n);
                for (int64_t i = 0; i < nv; i += 16) {
                    for (int64_t j = 0; j < 16; ++j) prob[size_t(i + j)] = cpu::ggml_expf(l[i + j] - mx);
                    sum += double(cpu::ggml_reduce16(prob.data() + i));
                }
                for (int64_t i = nv; i < n; ++i) {
                    prob[size_t(i)] = std::exp(l[i] - mx);
                    sum += prob[size_t(i)];
                }
                const float inv = float(1.0 / sum);
                for (float& v : prob) v *= inv;
            } else {
                for (int64_t i = 0; i < n; ++i) {
                    prob[size_t(i)] = std::exp(l[i] - mx);
                    sum += prob[size_t(i)];
                }
                for (float& v : prob) v = float(v / sum);
            }
        } else {
            for (int64_t i = 0; i < n; ++i) prob[size_t(i)] = 1.0f / (1.0f + std::exp(-l[i]));
        }
        // NaN (a broken input) sorts last instead of breaking the comparator's ordering.
        for (int64_t i = 0; i < n; ++i) key[size_t(i)] = std::isnan(prob[size_t(i)]) ? -INFINITY : prob[size_t(i)];
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
            return key[size_t(a)] > key[size_t(b)] || (key[size_t(a)] == key[size_t(b)] && a < b);
        });
        int32_t* e = experts + t * k;
        float* w = weights + t * k;
        double wsum = 0.0;  // as ggml's sum_rows: in double, rounded once
        for (int64_t j = 0; j < k; ++j) {
            e[j] = idx[size_t(j)];
            w[j] = prob[size_t(e[j])];
            wsum += w[j];
        }
        float sum = float(wsum);
        if (p.norm_topk) {
            sum = std::max(sum, kMinWeightSum);
            for (int64_t j = 0; j < k; ++j) w[j] /= sum;
        }
        for (int64_t j = 0; j < k; ++j) w[j] *= p.weights_scale;
    }
}

}  // namespace ferry::backend
