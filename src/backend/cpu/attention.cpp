// KV cache and attention of the CPU backend.
//
// Attention is computed flash-attention style, one (token, head) per work item: the visible keys are
// visited in blocks of kKeyBlock; each block's scores go to a small buffer, the running maximum is
// raised if needed (rescaling the accumulated output and normalizer), and the block's values are added
// with weights exp(score - max). No n_ctx x n_ctx buffer exists; the output is acc / sum at the end.
// The reference's softmax differs only in summation order.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "core/fp16.h"

namespace ferry::backend::cpu {
namespace {

constexpr int64_t kKeyBlock = 64;

}  // namespace

KvHandle CpuOps::new_kv_layer(const KvLayerSpec& spec) {
    FERRY_CHECK(spec.type == GgmlType::F32 || spec.type == GgmlType::F16);
    FERRY_CHECK(spec.n_ctx > 0 && spec.n_head_kv > 0 && spec.head_dim_k > 0 && spec.head_dim_v > 0);
    KvLayer layer{spec, {}, {}, {}, {}};
    const size_t nk = size_t(spec.n_ctx * spec.n_head_kv * spec.head_dim_k);
    const size_t nv = size_t(spec.n_ctx * spec.n_head_kv * spec.head_dim_v);
    if (spec.type == GgmlType::F16) {
        layer.k16.assign(nk, 0);
        layer.v16.assign(nv, 0);
    } else {
        layer.k32.assign(nk, 0.0f);
        layer.v32.assign(nv, 0.0f);
    }
    kv_.push_back(std::move(layer));
    return KvHandle{int32_t(kv_.size() - 1)};
}

void CpuOps::kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const int64_t n_tok = k.ne[2];
    FERRY_CHECK(k.ne[0] == s.head_dim_k && k.ne[1] == s.n_head_kv && k.ne[3] == 1);
    FERRY_CHECK(v.ne[0] == s.head_dim_v && v.ne[1] == s.n_head_kv && v.ne[2] == n_tok && v.ne[3] == 1);
    FERRY_CHECK(pos0 >= 0 && pos0 + n_tok <= s.n_ctx);
    const int64_t k_cell = s.n_head_kv * s.head_dim_k, v_cell = s.n_head_kv * s.head_dim_v;
    const float* ks = ptr(k);
    const float* vs = ptr(v);
    if (s.type == GgmlType::F16) {
        for (int64_t i = 0; i < n_tok * k_cell; ++i) layer.k16[size_t(pos0 * k_cell + i)] = fp32_to_fp16(ks[i]);
        for (int64_t i = 0; i < n_tok * v_cell; ++i) layer.v16[size_t(pos0 * v_cell + i)] = fp32_to_fp16(vs[i]);
    } else {
        std::copy(ks, ks + n_tok * k_cell, layer.k32.begin() + pos0 * k_cell);
        std::copy(vs, vs + n_tok * v_cell, layer.v32.begin() + pos0 * v_cell);
    }
}

Act CpuOps::attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    const KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], dv = s.head_dim_v;
    FERRY_CHECK(dk == s.head_dim_k && q.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(n_head % s.n_head_kv == 0 && p.n_kv >= 0 && p.n_kv <= s.n_ctx);
    const int64_t group = n_head / s.n_head_kv;
    const bool f16 = s.type == GgmlType::F16;
    const quant::KernelTable& kt = *kernels_;

    Act out = alloc({dv, n_head, n_tok, 1});
    const float* qs = ptr(q);
    float* y = ptr(out);
    pool_.parallel_for(n_tok * n_head, 1, [&](int64_t b, int64_t e) {
        float score[kKeyBlock];
        for (int64_t item = b; item < e; ++item) {
            const int64_t t = item / n_head, h = item % n_head, hk = h / group;
            const int64_t qp = pos[size_t(t)];
            const float* qh = qs + item * dk;
            float* acc = y + item * dv;
            std::fill(acc, acc + dv, 0.0f);
            // Visible keys: j <= qp, and qp - j < n_swa with a window; all within [0, n_kv).
            const int64_t j_end = std::min<int64_t>(p.n_kv, qp + 1);
            const int64_t j_begin = p.n_swa > 0 ? std::max<int64_t>(0, qp - p.n_swa + 1) : 0;
            float mx = -INFINITY;
            double sum = 0;
            for (int64_t j0 = j_begin; j0 < j_end; j0 += kKeyBlock) {
                const int64_t nj = std::min(kKeyBlock, j_end - j0);
                float block_max = -INFINITY;
                for (int64_t jj = 0; jj < nj; ++jj) {
                    const int64_t off = ((j0 + jj) * s.n_head_kv + hk) * dk;
                    const float d = f16 ? kt.dot_f16_f32(dk, layer.k16.data() + off, qh)
                                        : kt.dot_f32(dk, layer.k32.data() + off, qh);
                    score[jj] = d * p.kq_scale;
                    block_max = std::max(block_max, score[jj]);
                }
                if (block_max > mx) {
                    if (mx != -INFINITY) {
                        const float c = std::exp(mx - block_max);
                        kt.scale_f32(dv, acc, c);
                        sum *= double(c);
                    }
                    mx = block_max;
                }
                for (int64_t jj = 0; jj < nj; ++jj) {
                    const float w = std::exp(score[jj] - mx);
                    sum += double(w);
                    const int64_t off = ((j0 + jj) * s.n_head_kv + hk) * dv;
                    if (f16) {
                        kt.mad_f16(dv, acc, layer.v16.data() + off, w);
                    } else {
                        kt.mad_f32(dv, acc, layer.v32.data() + off, w);
                    }
                }
            }
            if (sum > 0) kt.scale_f32(dv, acc, float(1.0 / sum));
        }
    });
    return out;
}

}  // namespace ferry::backend::cpu
