// KV cache and attention of the CPU backend.
//
// Attention is computed flash-attention style, one (token, head) per work item: the visible keys are
// visited in blocks of kKeyBlock; each block's scores go to a small buffer, the running maximum is
// raised if needed (rescaling the accumulated output and normalizer), and the block's values are added
// with weights exp(score - max). No n_ctx x n_ctx buffer exists; the output is acc / sum at the end.
// The reference's softmax differs only in summation order.
//
// KV cells in F32 / F16 are read in place by the SIMD dot / mad kernels; cells in a block type (BF16,
// Q8_0, Q4_0, ...) are written with the format's scalar quantizer and, per key block, dequantized into a
// per-thread scratch buffer, so they read exactly the values the reference dequantizes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::cpu {
namespace {

constexpr int64_t kKeyBlock = 64;

// Cells some query of the micro-batch sees: the union of the tokens' visible ranges (see attention()),
// what must come from memory at least once; query heads of a GQA group share their KV head's reads.
uint64_t visible_cells(std::span<const int32_t> pos, const AttnParams& p) {
    int64_t lo = p.n_kv, hi = 0;
    for (int32_t qp : pos) {
        const int64_t end = std::min<int64_t>(p.n_kv, int64_t(qp) + 1);
        const int64_t begin = p.n_swa > 0 ? std::max<int64_t>(0, qp - p.n_swa + 1) : 0;
        if (begin >= end) continue;
        lo = std::min(lo, begin);
        hi = std::max(hi, end);
    }
    return hi > lo ? uint64_t(hi - lo) : 0;
}

}  // namespace

KvHandle CpuOps::new_kv_layer(const KvLayerSpec& spec) {
    FERRY_CHECK(kv_layer_error(spec).empty());
    KvLayer layer{spec, {}, {}, {}, {}, {}, {}};
    auto make = [&](GgmlType type, int64_t head_dim, std::vector<float>& c32, std::vector<uint16_t>& c16,
                    std::vector<uint8_t>& cq) {
        const size_t n = size_t(spec.n_ctx * spec.n_head_kv * head_dim);
        if (type == GgmlType::F32) {
            c32.assign(n, 0.0f);
        } else if (type == GgmlType::F16) {
            c16.assign(n, 0);
        } else {
            const quant::FormatTraits& f = *quant::find_format(type);
            cq.assign(n / size_t(f.block_size) * size_t(f.type_size), 0);
        }
    };
    make(spec.type_k, spec.head_dim_k, layer.k32, layer.k16, layer.kq);
    make(spec.type_v, spec.head_dim_v, layer.v32, layer.v16, layer.vq);
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
    auto store = [&](const float* x, GgmlType type, int64_t head_dim, std::vector<float>& c32,
                     std::vector<uint16_t>& c16, std::vector<uint8_t>& cq) {
        const int64_t cell = s.n_head_kv * head_dim;
        if (type == GgmlType::F32) {
            std::copy(x, x + n_tok * cell, c32.begin() + pos0 * cell);
        } else if (type == GgmlType::F16) {
            for (int64_t i = 0; i < n_tok * cell; ++i) c16[size_t(pos0 * cell + i)] = fp32_to_fp16(x[i]);
        } else {
            // The scalar quantizer: rows are whole blocks, so the run of cells quantizes in one call.
            const quant::FormatTraits& f = *quant::find_format(type);
            f.quantize_row(x, cq.data() + pos0 * (cell / f.block_size * f.type_size), n_tok * cell);
        }
    };
    store(ptr(k), s.type_k, s.head_dim_k, layer.k32, layer.k16, layer.kq);
    store(ptr(v), s.type_v, s.head_dim_v, layer.v32, layer.v16, layer.vq);
}

Act CpuOps::attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    const KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], dv = s.head_dim_v;
    FERRY_CHECK(dk == s.head_dim_k && q.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(n_head % s.n_head_kv == 0 && p.n_kv >= 0 && p.n_kv <= s.n_ctx);
    const int64_t group = n_head / s.n_head_kv;
    const quant::KernelTable& kt = *kernels_;
    // F32 and F16 rows are read in place; other types are dequantized a key block at a time.
    const quant::FormatTraits* fk = quant::find_format(s.type_k);
    const quant::FormatTraits* fv = quant::find_format(s.type_v);
    const bool k16 = s.type_k == GgmlType::F16, k32 = s.type_k == GgmlType::F32;
    const bool v16 = s.type_v == GgmlType::F16, v32 = s.type_v == GgmlType::F32;
    const int64_t k_row_bytes = dk / fk->block_size * fk->type_size;
    const int64_t v_row_bytes = dv / fv->block_size * fv->type_size;

    traffic().kv_bytes += visible_cells(pos, p) * uint64_t(s.n_head_kv) * uint64_t(k_row_bytes + v_row_bytes);

    Act out = alloc({dv, n_head, n_tok, 1});
    const float* qs = ptr(q);
    float* y = ptr(out);
    pool_.parallel_for(n_tok * n_head, 1, [&](int64_t b, int64_t e) {
        float score[kKeyBlock];
        std::vector<float> kbuf(k16 || k32 ? 0 : size_t(kKeyBlock * dk));
        std::vector<float> vbuf(v16 || v32 ? 0 : size_t(kKeyBlock * dv));
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
                if (!kbuf.empty()) {
                    for (int64_t jj = 0; jj < nj; ++jj) {
                        const int64_t row = (j0 + jj) * s.n_head_kv + hk;
                        fk->dequantize_row(layer.kq.data() + row * k_row_bytes, kbuf.data() + jj * dk, dk);
                    }
                }
                for (int64_t jj = 0; jj < nj; ++jj) {
                    const int64_t off = ((j0 + jj) * s.n_head_kv + hk) * dk;
                    const float d = k16   ? kt.dot_f16_f32(dk, layer.k16.data() + off, qh)
                                    : k32 ? kt.dot_f32(dk, layer.k32.data() + off, qh)
                                          : kt.dot_f32(dk, kbuf.data() + jj * dk, qh);
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
                if (!vbuf.empty()) {
                    for (int64_t jj = 0; jj < nj; ++jj) {
                        const int64_t row = (j0 + jj) * s.n_head_kv + hk;
                        fv->dequantize_row(layer.vq.data() + row * v_row_bytes, vbuf.data() + jj * dv, dv);
                    }
                }
                for (int64_t jj = 0; jj < nj; ++jj) {
                    const float w = std::exp(score[jj] - mx);
                    sum += double(w);
                    const int64_t off = ((j0 + jj) * s.n_head_kv + hk) * dv;
                    if (v16) {
                        kt.mad_f16(dv, acc, layer.v16.data() + off, w);
                    } else if (v32) {
                        kt.mad_f32(dv, acc, layer.v32.data() + off, w);
                    } else {
                        kt.mad_f32(dv, acc, vbuf.data() + jj * dv, w);
                    }
                }
            }
            if (sum > 0) kt.scale_f32(dv, acc, float(1.0 / sum));
        }
    });
    return out;
}

}  // namespace ferry::backend::cpu
