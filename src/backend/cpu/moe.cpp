// moe_ffn on the CPU backend: only the experts the router chose are computed, with the tokens grouped
// by expert as in ggml's mul_mat_id.
//
//   1. router logits (an F32 product over all tokens) and the routing (backend/moe_routing.h);
//   2. the (token, chosen expert) pairs ordered by expert, tokens in order within an expert: pair rows
//      [offset[e], offset[e] + count[e]) belong to expert e;
//   3. x prepared once per token for the gate / up weight types (quantized to the paired type), then
//      gathered into pair order so that each expert's tokens are consecutive activation columns;
//   4. gate and up over work items (expert, column block, row block) covering every chosen expert, so
//      threads are balanced over experts and rows alike; an item finishes act(gate) * up in place;
//   5. those rows prepared for the down type, and down over the same kind of items;
//   6. per token, the weighted sum of its k down rows in routing order, then the shared expert.
// In decode (one token) every chosen expert has one column and the row blocks spread the k experts'
// rows over the threads: each chosen expert's bytes are streamed once, no other expert is touched.
// A token's result does not depend on the other tokens in the micro-batch (the gemm tiles compute a
// column the same way wherever it falls).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/ggml_math.h"
#include "backend/moe_routing.h"
#include "quant/formats.h"

namespace ferry::backend::cpu {
namespace {

// One tile of work: weight rows [r0, r0 + rows) of expert e against its pair columns [c0, c0 + nc).
struct Item {
    int32_t e;
    int32_t c0;
    int32_t nc;
    int32_t r0;
};

// Items for every expert with tokens: expert-major, then column block, then row block.
void plan_items(const std::vector<int32_t>& count, int64_t n_rows, int64_t rows, std::vector<Item>& items) {
    items.clear();
    for (size_t e = 0; e < count.size(); ++e) {
        for (int64_t c0 = 0; c0 < count[e]; c0 += kColBlock) {
            const int64_t nc = std::min<int64_t>(kColBlock, count[e] - c0);
            for (int64_t r0 = 0; r0 < n_rows; r0 += rows)
                items.push_back({int32_t(e), int32_t(c0), int32_t(nc), int32_t(r0)});
        }
    }
}

}  // namespace

Act CpuOps::moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) {
    check_moe_shapes(x, w, p);
    const int64_t n_embd = x.ne[0], n_tok = x.ne[1], k = p.n_expert_used, n_pairs = n_tok * k;
    const int64_t n_ff = w.gate_exps->ne[1];
    const Tensor& gate = *w.gate_exps;
    const Tensor& up = *w.up_exps;
    const Tensor& down = *w.down_exps;
    Act out = alloc({n_embd, n_tok, 1, 1});
    const float* xs = ptr(x);
    float* y = ptr(out);
    MoeScratch& s = moe_;

    // 1. Routing.
    s.logits.resize(size_t(n_tok * p.n_expert));
    matmul_into(*w.gate_inp, xs, n_tok, s.logits.data(), s.misc);
    s.experts.resize(size_t(n_pairs));
    s.weights.resize(size_t(n_pairs));
    moe_route(s.logits.data(), n_tok, p, s.experts.data(), s.weights.data(), /*ggml_softmax=*/true);

    // 2. Pairs grouped by expert: slot[t * k + j] is the pair row of token t's j-th expert, token[row] its token.
    s.count.assign(size_t(p.n_expert), 0);
    for (int32_t e : s.experts) ++s.count[size_t(e)];
    s.offset.assign(size_t(p.n_expert), 0);
    for (int64_t e = 1; e < p.n_expert; ++e) s.offset[size_t(e)] = s.offset[size_t(e - 1)] + s.count[size_t(e - 1)];
    s.slot.resize(size_t(n_pairs));
    s.token.resize(size_t(n_pairs));
    {
        std::vector<int32_t> fill(s.offset);
        for (int64_t i = 0; i < n_pairs; ++i) {
            const int32_t row = fill[size_t(s.experts[size_t(i)])]++;
            s.slot[size_t(i)] = row;
            s.token[size_t(row)] = int32_t(i / k);
        }
    }

    // 3. Gate / up inputs in pair order.
    auto gather = [&](const PreparedAct& a, std::vector<uint8_t>& dst) {
        dst.resize(a.stride * size_t(n_pairs));
        const int64_t grain = std::max<int64_t>(1, 65536 / int64_t(a.stride));
        pool_.parallel_for(n_pairs, grain, [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r)
                std::memcpy(dst.data() + size_t(r) * a.stride,
                            static_cast<const uint8_t*>(a.data) + size_t(s.token[size_t(r)]) * a.stride, a.stride);
        });
        return PreparedAct{dst.data(), a.stride};
    };
    const PreparedAct xg = gather(prepare_act(gate.type, xs, n_tok, n_embd, s.x_gate), s.gathered_gate);
    const PreparedAct xu =
        up.type == gate.type ? xg : gather(prepare_act(up.type, xs, n_tok, n_embd, s.x_up), s.gathered_up);

    int64_t n_active = 0;
    for (int32_t c : s.count) n_active += c > 0;
    std::vector<Item> items;
    auto run_items = [&](int64_t macs, auto&& fn) {
        const int64_t n = int64_t(items.size());
        pool_.parallel_for(n, macs < kMinParallelMacs ? n : 1, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) fn(items[size_t(i)]);
        });
    };

    // 4. act(gate x) * up x for every pair, left in s.gate.
    s.gate.resize(size_t(n_pairs * n_ff));
    s.up.resize(size_t(n_pairs * n_ff));
    const int64_t gate_rows = gemm_rows_per_item(n_active * n_ff, n_tok);
    plan_items(s.count, n_ff, gate_rows, items);
    run_items(n_pairs * n_ff * n_embd, [&](const Item& it) {
        const int64_t r0 = it.r0, nr = std::min<int64_t>(n_ff - r0, gate_rows);
        const int64_t col = s.offset[size_t(it.e)] + it.c0;
        float* g = s.gate.data() + col * n_ff + r0;
        float* u = s.up.data() + col * n_ff + r0;
        auto tile = [&](const Tensor& wt, const PreparedAct& a, float* yt) {
            gemm_tile(wt,
                      {.n = n_embd,
                       .w = static_cast<const uint8_t*>(wt.data) + uint64_t(it.e) * wt.nb[2] + uint64_t(r0) * wt.nb[1],
                       .w_stride = size_t(wt.nb[1]),
                       .nr = nr,
                       .a = static_cast<const uint8_t*>(a.data) + size_t(col) * a.stride,
                       .a_stride = a.stride,
                       .nc = it.nc,
                       .y = yt,
                       .ldy = n_ff});
        };
        tile(gate, xg, g);
        tile(up, xu, u);
        const int64_t n_vec = std::clamp<int64_t>(ggml_vec_part(n_ff) - r0, 0, nr);
        for (int64_t c = 0; c < it.nc; ++c) ew_->swiglu(nr, g + c * n_ff, u + c * n_ff, g + c * n_ff, n_vec);
    });

    // 5. down of every pair into s.down.
    const PreparedAct h = prepare_act(down.type, s.gate.data(), n_pairs, n_ff, s.act_down);
    s.down.resize(size_t(n_pairs * n_embd));
    const int64_t down_rows = gemm_rows_per_item(n_active * n_embd, n_tok);
    plan_items(s.count, n_embd, down_rows, items);
    run_items(n_pairs * n_ff * n_embd, [&](const Item& it) {
        const int64_t col = s.offset[size_t(it.e)] + it.c0;
        gemm_tile(down, {.n = n_ff,
                         .w = static_cast<const uint8_t*>(down.data) + uint64_t(it.e) * down.nb[2] +
                              uint64_t(it.r0) * down.nb[1],
                         .w_stride = size_t(down.nb[1]),
                         .nr = std::min<int64_t>(n_embd - it.r0, down_rows),
                         .a = static_cast<const uint8_t*>(h.data) + size_t(col) * h.stride,
                         .a_stride = h.stride,
                         .nc = it.nc,
                         .y = s.down.data() + col * n_embd + it.r0,
                         .ldy = n_embd});
    });

    // 6. Weighted sum per token in routing order, then the shared expert.
    const int64_t tok_grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n_embd * k, 1));
    pool_.parallel_for(n_tok, tok_grain, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
            float* yt = y + t * n_embd;
            std::fill(yt, yt + n_embd, 0.0f);
            for (int64_t j = 0; j < k; ++j) {
                const float wj = s.weights[size_t(t * k + j)];
                const float* d = s.down.data() + int64_t(s.slot[size_t(t * k + j)]) * n_embd;
                for (int64_t i = 0; i < n_embd; ++i) yt[i] += wj * d[i];
            }
        }
    });
    if (w.gate_shexp != nullptr) {
        const int64_t n_ff_s = w.gate_shexp->ne[1];
        s.shared.resize(size_t(n_tok * (2 * n_ff_s + n_embd + 1)));
        float* gs = s.shared.data();
        float* us = gs + n_tok * n_ff_s;
        float* ds = us + n_tok * n_ff_s;
        float* sg = ds + n_tok * n_embd;
        const Tensor* gate_up[2] = {w.gate_shexp, w.up_shexp};
        float* gate_up_out[2] = {gs, us};
        matmul_many_into(gate_up, xs, n_tok, gate_up_out, s.misc);
        for (int64_t t = 0; t < n_tok; ++t)
            ew_->swiglu(n_ff_s, gs + t * n_ff_s, us + t * n_ff_s, gs + t * n_ff_s, ggml_vec_part(n_ff_s));
        matmul_into(*w.down_shexp, gs, n_tok, ds, s.misc);
        if (w.gate_inp_shexp != nullptr) matmul_into(*w.gate_inp_shexp, xs, n_tok, sg, s.misc);
        for (int64_t t = 0; t < n_tok; ++t) {
            const float g = w.gate_inp_shexp != nullptr ? 1.0f / (1.0f + std::exp(-sg[t])) : 1.0f;
            for (int64_t i = 0; i < n_embd; ++i) y[t * n_embd + i] += ds[t * n_embd + i] * g;
        }
    }

    Traffic& tr = traffic();
    const uint64_t chosen = uint64_t(n_active) * (expert_bytes(gate) + expert_bytes(up) + expert_bytes(down));
    tr.expert_bytes += chosen;
    tr.weight_bytes += w.gate_inp->n_bytes() + chosen;
    if (w.gate_shexp != nullptr)
        tr.weight_bytes += w.gate_shexp->n_bytes() + w.up_shexp->n_bytes() + w.down_shexp->n_bytes();
    if (w.gate_inp_shexp != nullptr) tr.weight_bytes += w.gate_inp_shexp->n_bytes();
    return out;
}

}  // namespace ferry::backend::cpu
