// Gated DeltaNet on the CPU: recurrent state layers, the causal conv, and the delta rule in chunked form.
//
// Per V head the recurrence (ops.h) is S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T, o_t = S_t^T q_t.
// Unrolled over a chunk of c <= 64 tokens that starts from state S0, with g_i = log a_i and
// gamma_i = g_0 + ... + g_i, the values each token writes, delta_i, satisfy
//   delta_i = b_i (v_i - e^{gamma_i} S0^T k_i) - sum_{j<i} b_i e^{gamma_i - gamma_j} (k_i . k_j) delta_j
// (the unit-lower-triangular system (I + A) Delta = U - W S0 of the WY form, solved by forward
// substitution), and then
//   o_i   = e^{gamma_i} S0^T q_i + sum_{j<=i} e^{gamma_i - gamma_j} (q_i . k_j) delta_j
//   S_end = e^{gamma_last} S0 + sum_i e^{gamma_last - gamma_i} k_i delta_i^T.
// S0 is streamed three times per chunk instead of twice per token, and every exponent is <= 0. A chunk of
// one token is exactly the recurrence. Results equal the reference (token by token) up to rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"

namespace ferry::backend::cpu {
namespace {

constexpr int64_t kChunk = 64;

float silu_f(float x) { return x / (1.0f + std::exp(-x)); }
float sigmoid_f(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float softplus_f(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

const float* weight_f32(const Tensor& w, int64_t n) {
    FERRY_CHECK(w.type == GgmlType::F32 && w.ne[0] == n && w.n_rows() == 1);
    return static_cast<const float*>(w.data);
}

struct HeadChunk {
    int64_t dk, dv, c;
    const float* q;  // [c][dk], already scaled by 1/sqrt(dk)
    const float* k;  // [c][dk]
    const float* v;  // [c][dv]
    const float* g;  // [c] log decay
    const float* b;  // [c] beta after the sigmoid
    float* S;        // [dk][dv], updated in place
    float* o;        // [c][dv]
    std::vector<float>* scratch;
    const quant::KernelTable* kt;  // SIMD dot / mad / scale
};

void delta_rule_chunk(const HeadChunk& h) {
    const int64_t dk = h.dk, dv = h.dv, c = h.c;
    const quant::KernelTable& kt = *h.kt;
    auto axpy = [&](float* y, float s, const float* x, int64_t n) { kt.mad_f32(n, y, x, s); };
    auto dot = [&](const float* a, const float* b, int64_t n) { return kt.dot_f32(n, a, b); };
    std::vector<float>& sc = *h.scratch;
    sc.assign(size_t(c * dv * 2 + c), 0.0f);
    float* delta = sc.data();     // [c][dv]
    float* s0q = delta + c * dv;  // [c][dv]
    float* gamma = s0q + c * dv;  // [c]
    float acc = 0.0f;
    for (int64_t i = 0; i < c; ++i) gamma[i] = acc += h.g[i];

    // delta_i starts as b_i (v_i - e^{gamma_i} S0^T k_i); s0q_i = S0^T q_i.
    for (int64_t m = 0; m < dk; ++m) {
        const float* srow = h.S + m * dv;
        for (int64_t i = 0; i < c; ++i) {
            axpy(delta + i * dv, h.k[i * dk + m], srow, dv);
            axpy(s0q + i * dv, h.q[i * dk + m], srow, dv);
        }
    }
    for (int64_t i = 0; i < c; ++i) {
        const float e = std::exp(gamma[i]);
        float* di = delta + i * dv;
        for (int64_t j = 0; j < dv; ++j) di[j] = h.b[i] * (h.v[i * dv + j] - e * di[j]);
        // Forward substitution against the earlier tokens of the chunk.
        for (int64_t j = 0; j < i; ++j) {
            const float a = h.b[i] * std::exp(gamma[i] - gamma[j]) * dot(h.k + i * dk, h.k + j * dk, dk);
            axpy(di, -a, delta + j * dv, dv);
        }
    }
    for (int64_t i = 0; i < c; ++i) {
        float* oi = h.o + i * dv;
        const float e = std::exp(gamma[i]);
        for (int64_t j = 0; j < dv; ++j) oi[j] = e * s0q[i * dv + j];
        for (int64_t j = 0; j <= i; ++j)
            axpy(oi, std::exp(gamma[i] - gamma[j]) * dot(h.q + i * dk, h.k + j * dk, dk), delta + j * dv, dv);
    }
    const float e_last = std::exp(gamma[c - 1]);
    for (int64_t m = 0; m < dk; ++m) {
        float* srow = h.S + m * dv;
        kt.scale_f32(dv, srow, e_last);
        for (int64_t i = 0; i < c; ++i)
            axpy(srow, std::exp(gamma[c - 1] - gamma[i]) * h.k[i * dk + m], delta + i * dv, dv);
    }
}

}  // namespace

Act CpuOps::cols(const Act& x, int64_t first, int64_t count) {
    const int64_t n = x.ne[0];
    FERRY_CHECK(first >= 0 && count >= 0 && first + count <= n);
    Act out = alloc({count, x.ne[1], x.ne[2], x.ne[3]});
    const float* xs = ptr(x);
    float* y = ptr(out);
    for (int64_t r = 0; r < x.n_rows(); ++r) std::memcpy(y + r * count, xs + r * n + first, size_t(count) * 4);
    return out;
}

Act CpuOps::l2_norm(const Act& x, float eps) {
    const int64_t n = x.ne[0];
    Act out = alloc(x.ne);
    const float* xs = ptr(x);
    float* y = ptr(out);
    pool_.parallel_for(x.n_rows(), std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t rb, int64_t re) {
        for (int64_t r = rb; r < re; ++r) {
            const float* xr = xs + r * n;
            double sum = 0;
            for (int64_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
            const float s = 1.0f / std::max(std::sqrt(float(sum)), eps);
            for (int64_t i = 0; i < n; ++i) y[r * n + i] = xr[i] * s;
        }
    });
    return out;
}

StateHandle CpuOps::new_state_layer(const StateLayerSpec& spec) { return states_.add(spec); }
void CpuOps::state_get(StateHandle s, std::span<float> out) { states_.get(s, out); }
void CpuOps::state_set(StateHandle s, std::span<const float> in) { states_.set(s, in); }

Act CpuOps::ssm_conv(const Act& x, const Tensor& w, StateHandle s) {
    StateStore::Layer& l = states_.at(s);
    const int64_t ch = l.spec.n_conv_channels, kw = l.spec.conv_kernel, n_tok = x.n_rows(), n_state = kw - 1;
    FERRY_CHECK(x.ne[0] == ch && w.type == GgmlType::F32 && w.ne[0] == kw && w.ne[1] == ch && w.n_rows() == ch);
    const auto* wd = static_cast<const float*>(w.data);
    const float* xs = ptr(x);
    Act out = alloc({ch, n_tok, 1, 1});
    float* y = ptr(out);
    // Window row r: state row r for r < n_state, else token r - n_state.
    auto row = [&](int64_t r) { return r < n_state ? l.conv.data() + r * ch : xs + (r - n_state) * ch; };
    pool_.parallel_for(ch, 256, [&](int64_t cb, int64_t ce) {
        for (int64_t t = 0; t < n_tok; ++t) {
            float* yt = y + t * ch;
            for (int64_t c = cb; c < ce; ++c) yt[c] = 0.0f;
            for (int64_t j = 0; j < kw; ++j) {
                const float* u = row(t + j);
                for (int64_t c = cb; c < ce; ++c) yt[c] += wd[c * kw + j] * u[c];
            }
            for (int64_t c = cb; c < ce; ++c) yt[c] = silu_f(yt[c]);
        }
        // The new state: the last n_state window rows (read before any is overwritten: rows move up).
        for (int64_t r = 0; r < n_state; ++r) {
            const float* src = row(n_tok + r);
            std::copy(src + cb, src + ce, l.conv.data() + r * ch + cb);
        }
    });
    return out;
}

Act CpuOps::gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                            const GdnParams& p) {
    StateStore::Layer& l = states_.at(p.state);
    const int64_t dk = l.spec.head_dim_k, dv = l.spec.head_dim_v, hv = l.spec.n_head_v;
    const int64_t hk = q.ne[1], n_tok = q.ne[2];
    FERRY_CHECK(q.ne[0] == dk && k.ne == q.ne && hk > 0 && hv % hk == 0);
    FERRY_CHECK(v.ne[0] == dv && v.ne[1] == hv && v.ne[2] == n_tok);
    FERRY_CHECK(alpha.ne[0] == hv && alpha.n_rows() == n_tok && beta.ne == alpha.ne);
    const float* a_log = weight_f32(*p.ssm_a, hv);
    const float* dt = weight_f32(*p.dt_bias, hv);
    const float *qs = ptr(q), *ks = ptr(k), *vs = ptr(v), *as = ptr(alpha), *bs = ptr(beta);
    Act out = alloc({dv, hv, n_tok, 1});
    float* y = ptr(out);
    const float q_scale = 1.0f / std::sqrt(float(dk));
    pool_.parallel_for(hv, 1, [&](int64_t hb, int64_t he) {
        std::vector<float> qc(size_t(kChunk * dk)), kc(size_t(kChunk * dk)), vc(size_t(kChunk * dv));
        std::vector<float> gc(static_cast<size_t>(kChunk)), bc(static_cast<size_t>(kChunk)), oc(size_t(kChunk * dv)),
            scratch;
        for (int64_t h = hb; h < he; ++h) {
            const int64_t kh = h % hk;
            for (int64_t t0 = 0; t0 < n_tok; t0 += kChunk) {
                const int64_t c = std::min(kChunk, n_tok - t0);
                for (int64_t i = 0; i < c; ++i) {
                    const int64_t t = t0 + i;
                    for (int64_t m = 0; m < dk; ++m) {
                        qc[size_t(i * dk + m)] = qs[(t * hk + kh) * dk + m] * q_scale;
                        kc[size_t(i * dk + m)] = ks[(t * hk + kh) * dk + m];
                    }
                    std::copy(vs + (t * hv + h) * dv, vs + (t * hv + h + 1) * dv, vc.data() + i * dv);
                    gc[size_t(i)] = a_log[h] * softplus_f(as[t * hv + h] + dt[h]);
                    bc[size_t(i)] = sigmoid_f(bs[t * hv + h]);
                }
                delta_rule_chunk({.dk = dk,
                                  .dv = dv,
                                  .c = c,
                                  .q = qc.data(),
                                  .k = kc.data(),
                                  .v = vc.data(),
                                  .g = gc.data(),
                                  .b = bc.data(),
                                  .S = l.ssm.data() + h * dk * dv,
                                  .o = oc.data(),
                                  .scratch = &scratch,
                                  .kt = kernels_});
                for (int64_t i = 0; i < c; ++i)
                    std::copy(oc.data() + i * dv, oc.data() + (i + 1) * dv, y + ((t0 + i) * hv + h) * dv);
            }
        }
    });
    return out;
}

}  // namespace ferry::backend::cpu
