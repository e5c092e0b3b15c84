// KV cache and attention of the CPU backend.
//
// Attention follows llama.cpp's CPU numerics (ggml-cpu on x86 with AVX-512, the build the tests compare
// with), chosen per layer by KvLayerSpec::flash_attn (-fa) as llama.cpp chooses its kernels:
//
// * -fa off (llama.cpp's mul_mat + soft_max_ext + mul_mat): each score is the dot of the query row
//   rounded to K's type (F16) with a K row, summed as tinyBLAS' GEMM sums (16 fused lanes, then a lane
//   reduction); the softmax of scale * scores over the causal row uses ggml_v_expf on 16-cell steps
//   counted from cell 0 and a double sum, times float(1 / sum); the output is the dot of the
//   probabilities rounded to V's type with each V column, again as tinyBLAS sums (lane = cell % 16).
//   A micro-batch of one token (decode) is the exception, as in llama.cpp: llamafile's GEMM declines
//   n < 2, so ggml's mul_mat computes both products with ggml_vec_dot_f16 (four 16-lane accumulators
//   over 64-element steps; the output over the cache's cells, V stored transposed); ferry does the same
//   for F16 K and V. Otherwise row-independent: a token's result does not depend on the micro-batch
//   it comes in, as long as it is not alone in it.
// * -fa on, fewer than kTiledRows query rows in the micro-batch (decode, short prompts) or a block-type
//   cache: ggml's one-row flash-attention kernel: the query rounded to K's dot type, each score by
//   ggml_vec_dot_f16 (or the type's dot: ferry's matmul kernel for that weight type), then an online
//   softmax over the cells in order (expf, running sum S = fma(S, ms, vs)) with an F16 accumulator
//   for an F16 V (every multiply-add and rescale rounded to F16), an F32 one otherwise; output acc / S.
//   For F16 K and V one kernel call does it all for the query heads of a GQA group (up to
//   quant::kFlashRowHeads of them, fewer when that leaves threads idle), so each K / V row is converted
//   once for them; every head's result is that of a one-row call (quant/kernels.h: flash_attn_row_f16).
// * -fa on with kTiledRows or more query rows and an F16 / F32 cache: llama.cpp's tiled all-F32 kernel
//   in its float order (the query unrounded, 64-cell tiles, see quant/kernels.h: flash_attn_rows),
//   on blocks of up to 64 query rows of one GQA group, the rows in vector lanes, so a K / V block is
//   converted to F32 once for all of them.
//
// attention_seqs (several sequences of a continuous batch) makes one parallel region of all the
// sequences' work items ((token, head), or (token, heads of a GQA group) on the F16 one-row flash path),
// each computed as attention() computes it; a batch in which some sequence takes the tiled kernel goes
// sequence by sequence instead.
//
// Split-KV decode: llama.cpp's -fa on with one query row over a KV view of >= 512 cells (the cells in
// use padded to 256, at most the cache) splits the view among its n threads, ceil(view / n) cells each;
// every thread runs the one-row kernel over its cells for all heads and the partial results (max, sum,
// unnormalized accumulator) are merged head by head. The F16 path does the same with ferry's thread
// count: items of (cell range, GQA group) and merge_splits, so such a decode gives llama.cpp's bits for
// the same -t (tests/model/test_long_decode.cpp) and keeps every thread busy on a few KV heads. Each
// sequence of a continuous batch is split as its own one-token decode would be (llama.cpp splits only a
// one-sequence batch). Not reproduced: the split of an F32 cache (ferry makes one pass) and of a
// sliding-window layer, whose llama.cpp cache is a ring of another size (one pass as well).
//
// llama.cpp's -fa off rows span the cache padded to 256 cells, whose extra cells add exact zeros: ferry's
// 16-cell steps give the same sums as long as that padded length is a multiple of 16, as 256 is.
//
// BF16 and block-type caches are written with the format's scalar quantizer; their rows are read by the
// type's dot / dequantizer. A V cache other than F16 / F32 always takes the flash-attention computation
// (llama.cpp refuses -fa off with a quantized V; for BF16 V ferry's -fa off equals -fa on). Bit-exact
// with llama.cpp: F16 K and V on both -fa off and the one-row -fa on path; the other cases follow the
// same structure with ferry's own kernels for the block types. The tiled path reproduces llama.cpp's
// float order as described in quant/kernels.h (checked against the golden logits, not tensor dumps).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::cpu {
namespace {

// llama.cpp's tiled flash-attention kernel takes micro-batches of at least this many query rows
// (ggml_fa_tile_config::Q).
constexpr int64_t kTiledRows = 64;

// llama.cpp's KV view is the cells in use padded to kSplitPad (llama_kv_cache::get_n_kv); a one-row
// decode over a view of kSplitMinCells or more takes its split-KV path.
constexpr int64_t kSplitPad = 256, kSplitMinCells = 512;

// Keys a query at position qp sees: j <= qp, and qp - j < n_swa with a window; all within [0, n_kv).
std::pair<int64_t, int64_t> visible_range(int64_t qp, const AttnParams& p) {
    return {p.n_swa > 0 ? std::max<int64_t>(0, qp - p.n_swa + 1) : 0, std::min<int64_t>(p.n_kv, qp + 1)};
}

// Cells some query of the micro-batch sees: the union of the tokens' visible ranges (see attention()),
// what must come from memory at least once; query heads of a GQA group share their KV head's reads.
uint64_t visible_cells(std::span<const int32_t> pos, const AttnParams& p) {
    int64_t lo = p.n_kv, hi = 0;
    for (int32_t qp : pos) {
        const auto [begin, end] = visible_range(qp, p);
        if (begin >= end) continue;
        lo = std::min(lo, begin);
        hi = std::max(hi, end);
    }
    return hi > lo ? uint64_t(hi - lo) : 0;
}

// attention_ggml's per-thread buffers, kept across calls (a decode step makes one work item per
// head or per GQA group); every element is written before it is read.
struct AttnBuffers {
    std::vector<uint16_t> q16, p16, vcol, acc16;
    std::vector<float> score, prob, lanes, vrow;
};

// Sizes and cache formats of one attention call.
struct Geometry {
    int64_t dk, n_head, n_tok, dv, group;
    const quant::FormatTraits* fk;
    const quant::FormatTraits* fv;
    bool k16, k32, v16, v32;
    int64_t k_row_bytes, v_row_bytes;
};

Geometry geometry(int64_t dk, int64_t n_head, int64_t n_tok, const KvLayerSpec& s) {
    Geometry g{};
    g.dk = dk, g.n_head = n_head, g.n_tok = n_tok, g.dv = s.head_dim_v;
    g.group = g.n_head / s.n_head_kv;
    g.fk = quant::find_format(s.type_k);
    g.fv = quant::find_format(s.type_v);
    g.k16 = s.type_k == GgmlType::F16, g.k32 = s.type_k == GgmlType::F32;
    g.v16 = s.type_v == GgmlType::F16, g.v32 = s.type_v == GgmlType::F32;
    g.k_row_bytes = g.dk / g.fk->block_size * g.fk->type_size;
    g.v_row_bytes = g.dv / g.fv->block_size * g.fv->type_size;
    return g;
}

Geometry geometry(const Act& q, const KvLayerSpec& s) { return geometry(q.ne[0], q.ne[1], q.ne[2], s); }

// Whether a micro-batch of n_tok query rows over a layer takes attention_f32 (the tiled kernel).
bool tiled_path(const KvLayerSpec& s, int64_t n_tok) {
    const bool f16_or_f32 = (s.type_k == GgmlType::F16 || s.type_k == GgmlType::F32) && s.type_k == s.type_v;
    return s.flash_attn && n_tok >= kTiledRows && f16_or_f32 && s.head_dim_v % 16 == 0;
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
            kernels_->to_f16(n_tok * cell, x, c16.data() + pos0 * cell);
        } else {
            // The scalar quantizer: rows are whole blocks, so the run of cells quantizes in one call.
            const quant::FormatTraits& f = *quant::find_format(type);
            f.quantize_row(x, cq.data() + pos0 * (cell / f.block_size * f.type_size), n_tok * cell);
        }
    };
    store(ptr(k), s.type_k, s.head_dim_k, layer.k32, layer.k16, layer.kq);
    store(ptr(v), s.type_v, s.head_dim_v, layer.v32, layer.v16, layer.vq);
}

// attention_ggml's work for one sequence (prepare_ggml).
struct CpuOps::GgmlAttn {
    const KvLayer* layer;
    Geometry g;
    std::span<const int32_t> pos;
    AttnParams p;
    const float* q;
    float* y;
    bool flash, one_row;
    std::vector<uint8_t> qbuf;  // the queries quantized / rounded for a block-type (or BF16) K
    PreparedAct qa;
    // F16 K and V with -fa on: an item is `heads` query heads of one GQA group (the group's heads in
    // chunks of that many, fewer in the last one); otherwise one head (items_per_token = n_head).
    bool grouped = false;
    int64_t heads = 1, chunks = 1, items_per_token = 0;
    // llama.cpp's split-KV decode (see the top of the file): with splits > 0 (one query row), a grouped
    // item covers the visible cells of range c = [c * split_cells, (c + 1) * split_cells) only, leaving
    // its heads' unnormalized accumulators in part_y ([c][head][dv]) and their max and sum in part_ms
    // ([c][head][2]); merge_splits combines the ranges into y.
    int64_t splits = 0, split_cells = 0;
    mutable std::vector<float> part_y = {}, part_ms = {};  // written by the items (const GgmlAttn)
};

bool CpuOps::attention_checks(const Act& q, int64_t n_tok, KvHandle kv, std::span<const int32_t> pos,
                              const AttnParams& p) {
    FERRY_CHECK(kv.id >= 0 && size_t(kv.id) < kv_.size());
    const KvLayerSpec& s = kv_[size_t(kv.id)].spec;
    FERRY_CHECK(q.ne[0] == s.head_dim_k && q.ne[3] == 1 && int64_t(pos.size()) == n_tok);
    FERRY_CHECK(q.ne[1] % s.n_head_kv == 0 && p.n_kv >= 0 && p.n_kv <= s.n_ctx);
    const Geometry g = geometry(q.ne[0], q.ne[1], n_tok, s);
    traffic().kv_bytes += visible_cells(pos, p) * uint64_t(s.n_head_kv) * uint64_t(g.k_row_bytes + g.v_row_bytes);
    return tiled_path(s, n_tok);
}

Act CpuOps::attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    if (attention_checks(q, q.ne[2], kv, pos, p)) return attention_f32(q, kv, pos, p);
    return attention_ggml(q, kv, pos, p);
}

Act CpuOps::attention_seqs(const Act& q, std::span<const AttnSeq> seqs) {
    check_attn_seqs(q, seqs);
    // The tiled kernel's work items span a sequence's rows: such batches go sequence by sequence.
    for (const AttnSeq& sq : seqs) {
        FERRY_CHECK(sq.kv.id >= 0 && size_t(sq.kv.id) < kv_.size());
        if (tiled_path(kv_[size_t(sq.kv.id)].spec, int64_t(sq.pos.size()))) return Ops::attention_seqs(q, seqs);
    }
    const int64_t dk = q.ne[0], n_head = q.ne[1], dv = kv_[size_t(seqs[0].kv.id)].spec.head_dim_v;
    for (const AttnSeq& sq : seqs) {
        FERRY_CHECK(kv_[size_t(sq.kv.id)].spec.head_dim_v == dv);
        attention_checks(q, int64_t(sq.pos.size()), sq.kv, sq.pos, sq.p);
    }
    Act out = alloc({dv, n_head, q.ne[2], 1});
    const float* qs = ptr(q);
    float* y = ptr(out);
    // One parallel region over every sequence's work items; item i of the region is item i - start[j]
    // of sequence j, computed as attention() computes it.
    std::vector<GgmlAttn> jobs;
    std::vector<int64_t> start(1, 0);
    jobs.reserve(seqs.size());
    for (const AttnSeq& sq : seqs) {
        const int64_t n_tok = int64_t(sq.pos.size());
        jobs.push_back(prepare_ggml(qs + sq.first * n_head * dk, n_tok, n_head, sq.kv, sq.pos, sq.p,
                                    y + sq.first * n_head * dv, q.ne[2]));
        start.push_back(start.back() + n_tok * jobs.back().items_per_token);
    }
    pool_.parallel_for(start.back(), 1, [&](int64_t b, int64_t e) {
        size_t j = size_t(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
        for (int64_t item = b; item < e; ++item) {
            while (item >= start[j + 1]) ++j;
            ggml_item(jobs[j], item - start[j]);
        }
    });
    for (const GgmlAttn& job : jobs)
        if (job.splits > 0) merge_splits(job);
    return out;
}

Act CpuOps::attention_f32(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    const KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    const Geometry g = geometry(q, s);
    const quant::KernelTable& kt = *kernels_;
    // A work item: up to kFlashRows query rows, heads h0 .. h0 + n_h - 1 of one GQA group (KV head hk)
    // for a run of tokens, so each K / V block converted to F32 serves all of them. Items of later
    // tokens (more visible cells) go first.
    const int64_t heads = std::min(g.group, quant::kFlashRows), head_chunks = (g.group + heads - 1) / heads;
    const int64_t run = quant::kFlashRows / heads, runs = (g.n_tok + run - 1) / run;
    const int64_t per_run = s.n_head_kv * head_chunks;
    const bool f16 = g.k16;
    const size_t scratch_floats = size_t(quant::flash_attn_scratch_floats(g.dk, g.dv));

    Act out = alloc({g.dv, g.n_head, g.n_tok, 1});
    const float* qs = ptr(q);
    float* y = ptr(out);
    pool_.parallel_for(runs * per_run, 1, [&](int64_t b, int64_t e) {
        thread_local std::vector<float> scratch;
        if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
        int32_t lo[quant::kFlashRows], hi[quant::kFlashRows];
        for (int64_t item = b; item < e; ++item) {
            const int64_t t0 = (runs - 1 - item / per_run) * run, hk = item % per_run / head_chunks;
            const int64_t h0 = hk * g.group + item % head_chunks * heads;
            const int64_t n_t = std::min(run, g.n_tok - t0), n_h = std::min(heads, (hk + 1) * g.group - h0);
            for (int64_t r = 0; r < n_t * n_h; ++r) {
                const auto [begin, end] = visible_range(pos[size_t(t0 + r / n_h)], p);
                lo[r] = int32_t(begin);
                hi[r] = int32_t(end);
            }
            const quant::FlashAttnArgs a{
                .dk = g.dk,
                .dv = g.dv,
                .n_rows = n_t * n_h,
                .heads = n_h,
                .q = qs + (t0 * g.n_head + h0) * g.dk,
                .ldq = g.n_head * g.dk,
                .y = y + (t0 * g.n_head + h0) * g.dv,
                .ldy = g.n_head * g.dv,
                .lo = lo,
                .hi = hi,
                .k = f16 ? static_cast<const void*>(layer.k16.data() + hk * g.dk) : layer.k32.data() + hk * g.dk,
                .ldk = s.n_head_kv * g.dk,
                .k_f16 = f16,
                .v = f16 ? static_cast<const void*>(layer.v16.data() + hk * g.dv) : layer.v32.data() + hk * g.dv,
                .ldv = s.n_head_kv * g.dv,
                .v_f16 = f16,
                .scale = p.kq_scale,
                .scratch = scratch.data(),
            };
            kt.flash_attn_rows(a);
        }
    });
    return out;
}

CpuOps::GgmlAttn CpuOps::prepare_ggml(const float* q, int64_t n_tok, int64_t n_head, KvHandle kv,
                                      std::span<const int32_t> pos, const AttnParams& p, float* y, int64_t batch_tok) {
    const KvLayer& layer = kv_[size_t(kv.id)];
    const KvLayerSpec& s = layer.spec;
    GgmlAttn a{&layer, geometry(s.head_dim_k, n_head, n_tok, s), pos, p, q, y, false, false, {}, {nullptr, 0}};
    a.items_per_token = n_head;
    // -fa off needs a V that mul_mat reads as F16 / F32 (see the top of the file).
    a.flash = s.flash_attn || !(a.g.v16 || a.g.v32);
    // -fa off with one query row (decode): llamafile's GEMM declines n < 2, so ggml's mul_mat computes
    // the scores and the output with ggml_vec_dot_f16 (see the top of the file); F16 K and V.
    a.one_row = !a.flash && n_tok == 1 && a.g.k16 && a.g.v16;
    // The F16 one-row flash kernel takes a GQA group's heads together: as many per item as keep every
    // thread busy (batch_tok x KV heads x chunks items), at most kFlashRowHeads.
    a.grouped = a.flash && a.g.k16 && a.g.v16;
    if (a.grouped) {
        const int64_t group = a.g.group;
        a.heads = std::min(group, quant::kFlashRowHeads);
        auto chunks = [&](int64_t heads) { return (group + heads - 1) / heads; };
        while (a.heads > 1 && batch_tok * s.n_head_kv * chunks(a.heads) < n_threads()) --a.heads;
        a.chunks = chunks(a.heads);
        a.items_per_token = s.n_head_kv * a.chunks;
        // llama.cpp's view: the cells in use padded to kSplitPad, at most the cache (a sliding-window
        // layer's llama.cpp cache is a ring of another size: not reproduced, one pass).
        const int64_t view = std::min(s.n_ctx, std::max(kSplitPad, (p.n_kv + kSplitPad - 1) / kSplitPad * kSplitPad));
        if (n_tok == 1 && p.n_swa == 0 && view >= kSplitMinCells && n_threads() > 1) {
            a.heads = std::min(group, quant::kFlashRowHeads);
            a.chunks = chunks(a.heads);
            a.splits = n_threads();
            a.split_cells = (view + a.splits - 1) / a.splits;
            a.items_per_token = s.n_head_kv * a.chunks * a.splits;
            a.part_y.resize(size_t(a.splits * n_head * a.g.dv));
            a.part_ms.resize(size_t(a.splits * n_head * 2));
        }
    }
    // Queries for a block-type (or BF16) K: rounded / quantized to its dot type as matmul does.
    if (!a.g.k16 && !a.g.k32) a.qa = prepare_act(s.type_k, q, n_tok * n_head, a.g.dk, a.qbuf);
    return a;
}

// A GgmlAttn::grouped item: the heads of one chunk of a GQA group for one token, in one call of ggml's
// one-row kernel (scores and online softmax fused, quant/kernels.h).
void CpuOps::group_item(const GgmlAttn& a, int64_t item) const {
    const KvLayer& layer = *a.layer;
    const KvLayerSpec& s = layer.spec;
    const int64_t dk = a.g.dk, dv = a.g.dv, n_head = a.g.n_head, group = a.g.group;
    const int64_t t = item / a.items_per_token, per_split = s.n_head_kv * a.chunks;
    const int64_t c = item % a.items_per_token / per_split, hc = item % per_split, hk = hc / a.chunks;
    const int64_t h0 = hk * group + hc % a.chunks * a.heads, n_h = std::min(a.heads, (hk + 1) * group - h0);
    float* y = a.splits > 0 ? a.part_y.data() + (c * n_head + h0) * dv : a.y + (t * n_head + h0) * dv;
    float* ms = a.splits > 0 ? a.part_ms.data() + (c * n_head + h0) * 2 : nullptr;
    auto [j_begin, j_end] = visible_range(a.pos[size_t(t)], a.p);
    if (a.splits > 0) {
        j_begin = std::max(j_begin, c * a.split_cells);
        j_end = std::min(j_end, (c + 1) * a.split_cells);
    }
    if (j_begin >= j_end) {
        std::fill(y, y + n_h * dv, 0.0f);
        if (ms != nullptr)
            for (int64_t h = 0; h < n_h; ++h) ms[2 * h] = -INFINITY, ms[2 * h + 1] = 0.0f;
        return;
    }
    thread_local std::vector<uint16_t> q16;
    q16.resize(size_t(n_h * dk));
    kernels_->to_f16(n_h * dk, a.q + (t * n_head + h0) * dk, q16.data());  // the heads' rows are adjacent
    kernels_->flash_attn_row_f16({.dk = dk,
                                  .dv = dv,
                                  .q = q16.data(),
                                  .k = layer.k16.data() + hk * dk,
                                  .ldk = s.n_head_kv * dk,
                                  .v = layer.v16.data() + hk * dv,
                                  .ldv = s.n_head_kv * dv,
                                  .j0 = j_begin,
                                  .j1 = j_end,
                                  .scale = a.p.kq_scale,
                                  .y = y,
                                  .heads = n_h,
                                  .ldq = dk,
                                  .ldy = dv,
                                  .ms = ms});
}

// The split ranges' partials merged head by head as llama.cpp does: ranges in order, a range with a zero
// sum skipped, M = fmaxf(M, m_c), acc = acc * expf(M_old - M) + acc_c * expf(m_c - M) (the second
// product inside the FMA, as GCC contracts ggml's expression) and likewise the sum, then acc / S. Heads
// are spread over the threads once there is enough of them (many threads: many ranges per head).
void CpuOps::merge_splits(const GgmlAttn& a) {
    const int64_t n_head = a.g.n_head, dv = a.g.dv;
    pool_.parallel_for(n_head, std::max<int64_t>(1, 2048 / (a.splits * dv)), [&](int64_t h0, int64_t h1) {
        for (int64_t h = h0; h < h1; ++h) merge_head(a, h);
    });
}

void CpuOps::merge_head(const GgmlAttn& a, int64_t h) {
    const int64_t n_head = a.g.n_head, dv = a.g.dv;
    float* y = a.y + h * dv;
    std::fill(y, y + dv, 0.0f);
    float m = -INFINITY, sum = 0.0f;
    for (int64_t c = 0; c < a.splits; ++c) {
        const float* ms = a.part_ms.data() + (c * n_head + h) * 2;
        const float* acc = a.part_y.data() + (c * n_head + h) * dv;
        if (ms[1] == 0.0f) continue;
        const float m_new = std::fmax(m, ms[0]);
        const float s_old = std::exp(m - m_new), s_new = std::exp(ms[0] - m_new);
        for (int64_t d = 0; d < dv; ++d) y[d] = std::fma(y[d], s_old, acc[d] * s_new);
        sum = std::fma(sum, s_old, ms[1] * s_new);
        m = m_new;
    }
    if (sum != 0.0f) {
        const float inv = 1.0f / sum;
        for (int64_t d = 0; d < dv; ++d) y[d] *= inv;
    }
}

Act CpuOps::attention_ggml(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) {
    Act out = alloc({kv_[size_t(kv.id)].spec.head_dim_v, q.ne[1], q.ne[2], 1});
    const GgmlAttn a = prepare_ggml(ptr(q), q.ne[2], q.ne[1], kv, pos, p, ptr(out), q.ne[2]);
    pool_.parallel_for(q.ne[2] * a.items_per_token, 1, [&](int64_t b, int64_t e) {
        for (int64_t item = b; item < e; ++item) ggml_item(a, item);
    });
    if (a.splits > 0) merge_splits(a);
    return out;
}

// One item of attention_ggml: a GgmlAttn::grouped item, item = (token * n_head_kv + KV head) * chunks +
// chunk, or a (token, head) item, item = token * n_head + head.
void CpuOps::ggml_item(const GgmlAttn& a, int64_t item) const {
    if (a.grouped) {
        group_item(a, item);
        return;
    }
    const KvLayer& layer = *a.layer;
    const KvLayerSpec& s = layer.spec;
    const auto [dk, n_head, n_tok, dv, group, fk, fv, k16, k32, v16, v32, k_row_bytes, v_row_bytes] = a.g;
    const quant::KernelTable& kt = *kernels_;
    const AttnParams& p = a.p;
    const std::span<const int32_t> pos = a.pos;
    const bool flash = a.flash, one_row = a.one_row;
    const PreparedAct& qa = a.qa;
    const float* qs = a.q;
    float* y = a.y;
    // Per-thread buffers kept across calls (a decode step makes one work item per head or group).
    thread_local AttnBuffers buf;
    auto& [q16, p16, vcol, acc16, score, prob, lanes, vrow] = buf;  // p16, vcol: -fa off, one row
    q16.resize(k16 ? size_t(dk) : 0);
    score.resize(size_t(p.n_kv) + 32);
    prob.resize(size_t(p.n_kv) + 32);
    lanes.resize(flash || v16 ? 0 : size_t(16 * dv));
    acc16.resize(flash && v16 ? size_t(dv) : 0);
    vrow.resize(v16 || v32 ? 0 : size_t(dv));
    const int64_t t = item / n_head, h = item % n_head, hk = h / group;
    const int64_t qp = pos[size_t(t)];
    const float* qh = qs + item * dk;
    float* acc = y + item * dv;
    std::fill(acc, acc + dv, 0.0f);
    const auto [j_begin, j_end] = visible_range(qp, p);
    if (j_begin >= j_end) return;
    const int64_t n_vis = j_end - j_begin;
    auto k_cell = [&](int64_t j) { return (j * s.n_head_kv + hk) * dk; };
    auto v_cell = [&](int64_t j) { return (j * s.n_head_kv + hk) * dv; };

    if (k16) kt.to_f16(dk, qh, q16.data());
    // Raw scores q.k of the visible cells, score[j - j_begin].
    if (k16) {
        if (flash || one_row || dk % 16 != 0) {
            for (int64_t j = j_begin; j < j_end; ++j)
                score[size_t(j - j_begin)] = kt.dot_f16_ggml(dk, layer.k16.data() + k_cell(j), q16.data());
        } else {
            kt.dot_f16_lanes16_rows(dk, layer.k16.data() + k_cell(j_begin), s.n_head_kv * dk, n_vis, q16.data(),
                                    score.data());
        }
    } else if (k32) {
        for (int64_t j = j_begin; j < j_end; ++j) {
            const float* kr = layer.k32.data() + k_cell(j);
            score[size_t(j - j_begin)] =
                flash || dk % 16 != 0 ? kt.dot_f32(dk, kr, qh) : kt.dot_f32_lanes16(dk, kr, qh);
        }
    } else {
        const quant::GemmArgs g{.n = dk,
                                .w = layer.kq.data() + (j_begin * s.n_head_kv + hk) * k_row_bytes,
                                .w_stride = size_t(s.n_head_kv * k_row_bytes),
                                .nr = n_vis,
                                .a = static_cast<const uint8_t*>(qa.data) + size_t(item) * qa.stride,
                                .a_stride = qa.stride,
                                .nc = 1,
                                .y = score.data(),
                                .ldy = n_vis};
        gemm_tile(s.type_k, g);
    }

    if (flash) {
        // ggml's one-row kernel: online softmax over the cells in order.
        float m = -INFINITY, sum = 0.0f;
        if (v16) std::fill(acc16.begin(), acc16.end(), uint16_t(0));
        for (int64_t j = j_begin; j < j_end; ++j) {
            const float sc = score[size_t(j - j_begin)] * p.kq_scale;
            float ms = 1.0f, vs = 1.0f;
            if (sc > m) {
                ms = std::exp(m - sc);
                m = sc;
                if (v16) {
                    kt.scale_f16(dv, acc16.data(), ms);
                } else {
                    kt.scale_f32(dv, acc, ms);
                }
            } else {
                vs = std::exp(sc - m);
            }
            if (v16) {
                kt.fmad_f16_acc16(dv, acc16.data(), layer.v16.data() + v_cell(j), vs);
            } else if (v32) {
                kt.fmad_f32(dv, acc, layer.v32.data() + v_cell(j), vs);
            } else {
                fv->dequantize_row(layer.vq.data() + (j * s.n_head_kv + hk) * v_row_bytes, vrow.data(), dv);
                kt.fmad_f32(dv, acc, vrow.data(), vs);
            }
            sum = std::fma(sum, ms, vs);
        }
        if (v16)
            for (int64_t d = 0; d < dv; ++d) acc[d] = fp16_to_fp32(acc16[size_t(d)]);
        kt.scale_f32(dv, acc, sum == 0.0f ? 0.0f : 1.0f / sum);
        return;
    }

    // -fa off: softmax over the row from the 16-aligned cell c0 (masked cells -inf), then the
    // probability-weighted V columns in 16 lanes by cell index.
    const int64_t c0 = j_begin / 16 * 16, c1 = (j_end + 15) / 16 * 16, n_row = c1 - c0;
    float* row = score.data();
    std::copy_backward(row, row + n_vis, row + (j_begin - c0) + n_vis);
    std::fill(row, row + (j_begin - c0), -INFINITY);
    std::fill(row + (j_end - c0), row + n_row, -INFINITY);
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_row; ++i) {
        if (i >= j_begin - c0 && i < j_end - c0) row[i] *= p.kq_scale;
        mx = std::max(mx, row[i]);
    }
    const double total = kt.soft_max_ggml(n_row, prob.data(), row, mx);
    const float inv = float(1.0 / total);
    if (one_row) {
        // Output d = ggml_vec_dot_f16 over cells [0, n64) of V[., d] and the F16 probabilities,
        // zeros outside the visible cells: llama.cpp's row spans the cache padded to 256 cells,
        // whose extra 64-cell steps add exact zeros.
        const int64_t n64 = (j_end + 63) / 64 * 64;
        p16.assign(size_t(n64), 0);
        vcol.assign(size_t(n64), 0);
        for (int64_t j = j_begin; j < j_end; ++j) p16[size_t(j)] = fp32_to_fp16(prob[size_t(j - c0)] * inv);
        for (int64_t d = 0; d < dv; ++d) {
            for (int64_t j = j_begin; j < j_end; ++j) vcol[size_t(j)] = layer.v16[size_t(v_cell(j) + d)];
            acc[d] = kt.dot_f16_ggml(n64, vcol.data(), p16.data());
        }
        return;
    }
    float* pv = prob.data() + (j_begin - c0);
    kt.scale_f32(n_vis, pv, inv);
    if (v16) {
        kt.round_f16(n_vis, pv, pv);
        kt.pv_f16_lanes16(dv, layer.v16.data() + hk * dv, s.n_head_kv * dv, pv, j_begin, j_end, acc);
        return;
    }
    std::fill(lanes.begin(), lanes.end(), 0.0f);
    for (int64_t j = j_begin; j < j_end; ++j)
        kt.fmad_f32(dv, lanes.data() + (j % 16) * dv, layer.v32.data() + v_cell(j), pv[j - j_begin]);
    kt.reduce_lanes16(dv, lanes.data(), acc);
}

}  // namespace ferry::backend::cpu
