// The matmul driver of the CPU backend: activation quantization, then the tiled GEMM over threads.
//
// Work is split into (row chunk, column block) items. A row chunk is a run of weight rows small
// enough to stay in L2 while a column block (up to kColBlock activation columns) streams past it; in
// decode there is one column and the chunks only spread the rows over the threads, each weight byte
// read once. Items are handed out dynamically (ThreadPool), so a preempted thread takes fewer.
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/ggml_math.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::cpu {
namespace {

// The fallback for weight types without a fast kernel: the format's scalar vec_dot per output.
void scalar_gemm(const quant::FormatTraits& wf, const quant::GemmArgs& g) {
    for (int64_t c = 0; c < g.nc; ++c) {
        const auto* a = static_cast<const uint8_t*>(g.a) + c * g.a_stride;
        for (int64_t r = 0; r < g.nr; ++r) {
            g.y[c * g.ldy + r] = wf.vec_dot(g.n, static_cast<const uint8_t*>(g.w) + r * g.w_stride, a);
        }
    }
}

int64_t rows_per_item(int64_t n_out, int64_t n_cols, int n_threads, int64_t multiple = 0) {
    // Prefill: a panel of rows that stays in L2 while the columns stream past it.
    if (n_cols >= kFewCols) return kPrefillRows;
    // Decode (and a few columns: decode of several sequences): about 8 items per thread so a slow thread can be
    // covered (items of kPrefillRows would leave a thread idle on a small product: 192 rows are 3 items), in
    // multiples of 4 rows, of 8 with several columns (the repacked Q4_K tiles take 8 rows), or of `multiple`.
    const int64_t r = n_out / (int64_t(n_threads) * 8);
    const int64_t m = multiple > 0 ? multiple : n_cols > 1 ? 8 : 4;
    return std::clamp<int64_t>((r + m - 1) / m * m, m, 256);
}

}  // namespace

CpuOps::PreparedAct CpuOps::prepare_act(GgmlType w_type, const float* xs, int64_t n_rows, int64_t n_in,
                                        std::vector<uint8_t>& buf) {
    const quant::FormatTraits* wf = quant::find_format(w_type);
    FERRY_CHECK(wf != nullptr);
    const quant::FormatTraits* af = quant::find_format(wf->vec_dot_type);
    FERRY_CHECK(af != nullptr && n_in % af->block_size == 0);
    const quant::KernelTable& k = *kernels_;
    const size_t a_stride = size_t(n_in / af->block_size * af->type_size);
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n_in, 1));
    if (w_type == GgmlType::F16 || w_type == GgmlType::BF16) {
        buf.resize(a_stride * size_t(n_rows));
        float* xr = reinterpret_cast<float*>(buf.data());
        pool_.parallel_for(n_rows, grain, [&](int64_t b, int64_t e) {
            if (w_type == GgmlType::F16) {
                k.round_f16((e - b) * n_in, xs + b * n_in, xr + b * n_in);
            } else {
                for (int64_t i = b * n_in; i < e * n_in; ++i) xr[i] = bf16_to_fp32(fp32_to_bf16(xs[i]));
            }
        });
        return {buf.data(), a_stride};
    }
    if (af->type == GgmlType::F32) return {xs, a_stride};
    buf.resize(a_stride * size_t(n_rows));
    uint8_t* qa = buf.data();
    quant::QuantizeFn q = k.quantize_for(af->type);
    if (q == nullptr) q = quant::activation_quantizer(af->type);
    pool_.parallel_for(n_rows, grain, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) q(xs + t * n_in, qa + size_t(t) * a_stride, n_in);
    });
    return {qa, a_stride};
}

void CpuOps::gemm_tile(const Tensor& w, const quant::GemmArgs& g) const {
    // llama.cpp repacks Q4_K weights with a multiple of 8 rows; their GEMM has its own float order.
    if (w.type == GgmlType::Q4_K && w.ne[1] % 8 == 0 && kernels_->gemm_q4k_8x8 != nullptr) {
        kernels_->gemm_q4k_8x8(g);
        return;
    }
    gemm_tile(w.type, g);
}

void CpuOps::gemm_tile(GgmlType type, const quant::GemmArgs& g) const {
    const quant::GemmFn fast = kernels_->gemm_for(type);
    if (fast) {
        fast(g);
    } else {
        scalar_gemm(*quant::find_format(type), g);
    }
}

int64_t CpuOps::gemm_rows_per_item(int64_t n_rows_total, int64_t n_cols) const {
    return rows_per_item(n_rows_total, n_cols, pool_.size());
}

void CpuOps::matmul_into(const Tensor& w, const float* xs, int64_t n_tok, float* y, std::vector<uint8_t>& scratch) {
    const Tensor* ws[1] = {&w};
    float* ys[1] = {y};
    matmul_many_into(ws, xs, n_tok, ys, scratch);
}

void CpuOps::matmul_many_into(std::span<const Tensor* const> ws, const float* xs, int64_t n_tok,
                              std::span<float* const> ys, std::vector<uint8_t>& scratch) {
    FERRY_CHECK(!ws.empty() && ws.size() == ys.size());
    const quant::FormatTraits* wf0 = quant::find_format(ws[0]->type);
    FERRY_CHECK(wf0 != nullptr);
    const int64_t n_in = ws[0]->ne[0];
    for (const Tensor* w : ws) {
        const quant::FormatTraits* wf = quant::find_format(w->type);
        FERRY_CHECK(wf != nullptr && wf->vec_dot != nullptr);
        FERRY_CHECK(w->ne[0] == n_in && w->ne[2] == 1 && w->ne[3] == 1 && n_in % wf->block_size == 0);
    }
    // F32 weights with a row count that is not a multiple of 4 or rows not a multiple of 16 long (a
    // shared expert's gate, {n_embd, 1}): ggml's llamafile GEMM declines these and ggml computes each
    // output with ggml_vec_dot_f32, whose float order differs from the tiles'; so does this.
    auto by_dot = [&](const Tensor& w) { return w.type == GgmlType::F32 && (w.ne[1] % 4 != 0 || n_in % 16 != 0); };
    // Weights whose activations take another form than the first's run on their own.
    auto alone = [&](const Tensor& w) {
        return by_dot(w) || (w.type != ws[0]->type && quant::find_format(w.type)->vec_dot_type != wf0->vec_dot_type);
    };
    if (ws.size() > 1 && std::any_of(ws.begin(), ws.end(), [&](const Tensor* w) { return alone(*w); })) {
        for (size_t i = 0; i < ws.size(); ++i) matmul_many_into(ws.subspan(i, 1), xs, n_tok, ys.subspan(i, 1), scratch);
        return;
    }
    if (by_dot(*ws[0])) {
        const Tensor& w = *ws[0];
        const auto* wb = static_cast<const uint8_t*>(w.data);
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < w.ne[1]; ++r)
                ys[0][t * w.ne[1] + r] =
                    ggml_dot_f32(n_in, reinterpret_cast<const float*>(wb + uint64_t(r) * w.nb[1]), xs + t * n_in);
        return;
    }

    // 1. Activations in the paired format, one row per token, once for all the weights.
    const PreparedAct act = prepare_act(ws[0]->type, xs, n_tok, n_in, scratch);

    // 2. The products, over (weight, row chunk, column block) items in one parallel region: item i
    //    belongs to the weight k with first[k] <= i < first[k + 1].
    const int64_t n_col_items = (n_tok + kColBlock - 1) / kColBlock;
    constexpr size_t kMaxWeights = 8;
    FERRY_CHECK(ws.size() <= kMaxWeights);
    int64_t rows[kMaxWeights], n_row_items[kMaxWeights], first[kMaxWeights + 1] = {0};
    int64_t macs = 0;
    // A step of several sequences: the one-sum kernel where the weight type has one (strips of 16 rows).
    quant::GemmFn one_sum[kMaxWeights] = {};
    if (batched_step() && n_tok >= 2) {
        for (size_t k = 0; k < ws.size(); ++k) one_sum[k] = kernels_->gemm_one_sum_for(ws[k]->type);
    }
    for (size_t k = 0; k < ws.size(); ++k) {
        const int64_t n_out = ws[k]->ne[1];
        rows[k] = rows_per_item(n_out, n_tok, pool_.size(), one_sum[k] != nullptr ? quant::kOneSumRows : 0);
        n_row_items[k] = (n_out + rows[k] - 1) / rows[k];
        first[k + 1] = first[k] + n_row_items[k] * n_col_items;
        macs += n_in * n_out * n_tok;
    }
    const int64_t n_items = first[ws.size()];
    // Products too small to pay for waking the pool run on this thread (one item covers everything).
    const bool tiny = macs < kMinParallelMacs;
    pool_.parallel_for(n_items, tiny ? n_items : 1, [&](int64_t b, int64_t e) {
        size_t k = 0;
        for (int64_t item = b; item < e; ++item) {
            while (item >= first[k + 1]) ++k;
            const Tensor& w = *ws[k];
            const int64_t n_out = w.ne[1], i = item - first[k];
            const int64_t r0 = (i % n_row_items[k]) * rows[k], c0 = (i / n_row_items[k]) * kColBlock;
            const quant::GemmArgs g{.n = n_in,
                                    .w = static_cast<const uint8_t*>(w.data) + uint64_t(r0) * w.nb[1],
                                    .w_stride = size_t(w.nb[1]),
                                    .nr = std::min(rows[k], n_out - r0),
                                    .a = static_cast<const uint8_t*>(act.data) + size_t(c0) * act.stride,
                                    .a_stride = act.stride,
                                    .nc = std::min(kColBlock, n_tok - c0),
                                    .y = ys[k] + c0 * n_out + r0,
                                    .ldy = n_out};
            if (one_sum[k] != nullptr) {
                one_sum[k](g);
            } else {
                gemm_tile(w, g);
            }
        }
    });
}

void CpuOps::count_weight(const Tensor& w) {
    // Every weight row is read (column blocks after the first re-read it from cache, not memory).
    const quant::FormatTraits* wf = quant::find_format(w.type);
    FERRY_CHECK(wf != nullptr);
    traffic().weight_bytes += uint64_t(w.ne[1]) * uint64_t(w.ne[0] / wf->block_size * wf->type_size);
}

Act CpuOps::matmul(const Tensor& w, const Act& x) {
    FERRY_CHECK(x.ne[0] == w.ne[0]);
    Act out = alloc({w.ne[1], x.n_rows(), 1, 1});
    count_weight(w);
    matmul_into(w, ptr(x), x.n_rows(), ptr(out), act_scratch_);
    return out;
}

std::vector<Act> CpuOps::matmul_many(std::span<const Tensor* const> ws, const Act& x) {
    std::vector<Act> out;
    std::vector<float*> ys;
    for (const Tensor* w : ws) {
        FERRY_CHECK(x.ne[0] == w->ne[0]);
        out.push_back(alloc({w->ne[1], x.n_rows(), 1, 1}));
        ys.push_back(ptr(out.back()));
        count_weight(*w);
    }
    for (size_t i = 0; i < ws.size(); i += 8) {
        const size_t n = std::min<size_t>(8, ws.size() - i);
        matmul_many_into(ws.subspan(i, n), ptr(x), x.n_rows(), std::span<float* const>(ys).subspan(i, n), act_scratch_);
    }
    return out;
}

}  // namespace ferry::backend::cpu
