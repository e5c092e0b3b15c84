// Gated DeltaNet on the CPU: recurrent state layers, the causal conv, and the delta rule.
//
// Per V head the recurrence (ops.h) is S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T, o_t = S_t^T q_t,
// computed token by token for every micro-batch size in the float order of llama.cpp's fused
// GATED_DELTA_NET CPU op (delta_rule_run below), which llama.cpp uses for prefill and decode alike: a
// micro-batch's results equal the same tokens decoded one at a time, bit for bit, and match the golden
// logits' arithmetic. The conv, the L2 norm and the gates follow ggml's ops the same way (ggml_math.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/ggml_math.h"

namespace ferry::backend::cpu {
namespace {

float sigmoid_f(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// ggml softplus: logf(1 + expf(x)) (not log1pf), the input itself above 20.
float softplus_f(float x) { return x > 20.0f ? x : std::log(1.0f + std::exp(x)); }

const float* weight_f32(const Tensor& w, int64_t n) {
    FERRY_CHECK(w.type == GgmlType::F32 && w.ne[0] == n && w.n_rows() == 1);
    return static_cast<const float*>(w.data);
}

// out[j] = ggml_vec_dot_f32 over i of (S[i][j], x[i]), for every j < dv. acc: 64 * dv floats.
void column_dots(const float* S, const float* x, int64_t dk, int64_t dv, float* acc, float* out,
                 const quant::KernelTable& kt) {
    const int64_t np = dk - dk % 64;
    std::fill(acc, acc + 64 * dv, 0.0f);
    for (int64_t i = 0; i < np; ++i) kt.mad_f32(dv, acc + (i % 64) * dv, S + i * dv, x[i]);
    // Lane l of accumulator a is acc[16 a + l]: a0 + a2, a1 + a3, then the two, then the 16 lanes as
    // _mm512_reduce_add_ps (halves, quarters, pairs).
    for (int64_t l = 0; l < 16; ++l) {
        float* r = acc + l * dv;
        const float* r1 = acc + (16 + l) * dv;
        const float* r2 = acc + (32 + l) * dv;
        const float* r3 = acc + (48 + l) * dv;
        for (int64_t j = 0; j < dv; ++j) r[j] = (r[j] + r2[j]) + (r1[j] + r3[j]);
    }
    for (int64_t step = 8; step >= 4; step /= 2)
        for (int64_t l = 0; l < step; ++l) {
            float* r = acc + l * dv;
            const float* h = acc + (l + step) * dv;
            for (int64_t j = 0; j < dv; ++j) r[j] = h[j] + r[j];
        }
    for (int64_t j = 0; j < dv; ++j) out[j] = (acc[j] + acc[2 * dv + j]) + (acc[dv + j] + acc[3 * dv + j]);
    for (int64_t i = np; i < dk; ++i) kt.mad_f32(dv, out, S + i * dv, x[i]);
}

}  // namespace

// One V head over a run of tokens, in the float order of ggml's fused GATED_DELTA_NET CPU op (llama.cpp
// builds prefill and decode alike with it), per token t:
//   S *= expf(g_t)                                   (element-wise)
//   delta_j = (v_j - dot_i(S[i][j], k_i)) * b_t      (every j)
//   S[i][j] = fma(k_i, delta_j, S[i][j])
//   o_j     = dot_i(S[i][j], q_i) * (1 / sqrt(dk))
// where dot is ggml_vec_dot_f32 (ggml_math.h: four 16-float accumulators over 64-element steps, then its
// tree). ggml keeps S transposed and dots its rows; here S is [dk][dv] and every column's dot runs at once:
// the 64 accumulators are rows of dv floats (acc[i % 64] += S[i] * x_i, one fused multiply-add per
// element, as each of ggml's lanes does) combined in ggml's order.
void gdn_loop(const GdnRun& h, const quant::KernelTable& kt) {
    const int64_t dk = h.dk, dv = h.dv;
    std::vector<float> sc(static_cast<size_t>(66 * dv));
    float* acc = sc.data();
    float* delta = acc + 64 * dv;
    float* dots = delta + dv;
    for (int64_t t = 0; t < h.n; ++t) {
        const float* q = h.q + t * h.qk_stride;
        const float* k = h.k + t * h.qk_stride;
        const float* v = h.v + t * h.v_stride;
        float* o = h.o + t * h.o_stride;
        kt.scale_f32(dk * dv, h.S, h.decay[t]);
        column_dots(h.S, k, dk, dv, acc, dots, kt);
        for (int64_t j = 0; j < dv; ++j) delta[j] = (v[j] - dots[j]) * h.b[t];
        for (int64_t i = 0; i < dk; ++i) kt.mad_f32(dv, h.S + i * dv, delta, k[i]);
        column_dots(h.S, q, dk, dv, acc, dots, kt);
        for (int64_t j = 0; j < dv; ++j) o[j] = dots[j] * h.scale;
    }
}

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
            // ggml's l2_norm: each square rounded to float, summed in double; 1 / max(sqrtf(sum), eps).
            double sum = 0;
            for (int64_t i = 0; i < n; ++i) sum += double(xr[i] * xr[i]);
            const float s = 1.0f / std::max(std::sqrt(float(sum)), eps);
            ew_->scale(n, xr, s, y + r * n);
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
    // The taps transposed ([kw][ch]) for contiguous vector loads.
    std::vector<float> wt(static_cast<size_t>(kw * ch));
    for (int64_t c = 0; c < ch; ++c)
        for (int64_t j = 0; j < kw; ++j) wt[size_t(j * ch + c)] = wd[c * kw + j];
    const int64_t vp = ggml_vec_part(ch);
    pool_.parallel_for(ch, 256, [&](int64_t cb, int64_t ce) {
        std::vector<const float*> u(static_cast<size_t>(kw));
        for (int64_t t = 0; t < n_tok; ++t) {
            // ggml's ssm_conv: one fused multiply-add per tap, taps in order; then its SiLU over the row.
            for (int64_t j = 0; j < kw; ++j) u[size_t(j)] = row(t + j) + cb;
            ew_->conv_silu(ce - cb, kw, u.data(), wt.data() + cb, ch, y + t * ch + cb, std::max<int64_t>(0, vp - cb));
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
    // The element-wise table's fused recurrence computes delta_rule_run's float order with a vector
    // KernelTable (every mad fused: dv % 8 == 0); anything else takes delta_rule_run.
    const bool fused = ew_->gdn != nullptr && dv % 8 == 0 && kernels_->isa != quant::Isa::Scalar;
    const float scale = 1.0f / std::sqrt(float(dk));
    pool_.parallel_for(hv, 1, [&](int64_t hb, int64_t he) {
        std::vector<float> gc(static_cast<size_t>(n_tok)), bc(static_cast<size_t>(n_tok));
        std::vector<float> work(static_cast<size_t>(gdn_work_floats(dk)));
        for (int64_t h = hb; h < he; ++h) {
            const int64_t kh = h % hk;
            for (int64_t t = 0; t < n_tok; ++t) {
                // ggml: softplus(alpha + dt_bias) * ssm_a, and the sigmoid of beta; the decay is expf of that.
                gc[size_t(t)] = std::exp(softplus_f(as[t * hv + h] + dt[h]) * a_log[h]);
                bc[size_t(t)] = sigmoid_f(bs[t * hv + h]);
            }
            const GdnRun run{.dk = dk,
                             .dv = dv,
                             .n = n_tok,
                             .q = qs + kh * dk,
                             .k = ks + kh * dk,
                             .qk_stride = hk * dk,
                             .v = vs + h * dv,
                             .v_stride = hv * dv,
                             .decay = gc.data(),
                             .b = bc.data(),
                             .scale = scale,
                             .S = l.ssm.data() + h * dk * dv,
                             .o = y + h * dv,
                             .o_stride = hv * dv,
                             .work = work.data()};
            if (fused) {
                ew_->gdn(run);
            } else {
                gdn_loop(run, *kernels_);
            }
        }
    });
    return out;
}

}  // namespace ferry::backend::cpu
