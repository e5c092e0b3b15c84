// The CPU backend: the reference backend's semantics (reference/reference_ops.h) computed with SIMD
// kernels chosen at run time (quant/kernels.h) on a thread pool (core/thread_pool.h).
//
//   - matmul: each activation row is quantized once to the weight's paired type with the SIMD
//     quantizers (bit-identical to the scalar ones), then a tiled GEMM runs over (row chunk, column
//     block) work items spread over the pool. Decode (one column) streams every weight byte once;
//     prefill multiplies each unpacked weight block with a tile of columns. Types without a fast
//     kernel fall back to the format's scalar vec_dot through the same driver, still threaded.
//   - attention: flash-attention style, one (token, head) per work item (F16 one-row flash: the
//     heads of a GQA group per item, each K / V row converted once for them): online softmax over
//     the visible keys, no n_ctx x n_ctx score buffer; GQA; causal and sliding-window masks; F16
//     cells are kept as halves (half the memory traffic of the reference's widened floats).
//   - gated_delta_net: one V head per work item (heads are independent), the recurrence token by token
//     in llama.cpp's float order (gdn.cpp), whatever the micro-batch size.
//   - every other op follows the reference formula, threaded over rows where the size pays for it; the
//     element-wise ones through the table of elementwise.h of the kernel table's instruction set.
//
// Results equal the reference up to float summation order (compared by NMSE in tests/backend), and a
// token's results do not depend on which other tokens share its micro-batch. Where the two differ in
// order, the CPU backend follows ggml's (matmul accumulation per weight type, SiLU and soft_max with
// ggml's vector exp, norms, the delta rule; see ggml_math.h), so that its logits match llama.cpp's
// golden ones: quantized matmuls re-quantize their inputs, and a one-ulp difference can flip a rounding.
#pragma once

#include <utility>
#include <vector>

#include "backend/cpu/act_arena.h"
#include "backend/cpu/elementwise.h"
#include "backend/ops.h"
#include "backend/state_store.h"
#include "core/thread_pool.h"
#include "quant/kernels.h"

namespace ferry::backend::cpu {

// The GEMM work split (matmul.cpp, moe.cpp): items of up to kColBlock activation columns times a run of
// weight rows (kPrefillRows with kFewCols or more columns; with fewer, as in decode, sized so each thread gets about 8
// items).
// kColBlock is a multiple of 4: the repacked-Q4_K kernel's float order depends on a column's place in
// the last group of 4 (KernelTable::gemm_q4k_8x8).
inline constexpr int64_t kColBlock = 64;
inline constexpr int64_t kPrefillRows = 64;
inline constexpr int64_t kFewCols = 8;                // fewer columns take decode's row split (in multiples of 8 rows)
inline constexpr int64_t kMinParallelMacs = 1 << 16;  // smaller products run on the calling thread

class CpuOps final : public Ops {
public:
    // n_threads <= 0: one per physical core. kernels: nullptr = the best table this CPU supports
    // (tests pass a specific one, e.g. the scalar table).
    explicit CpuOps(int n_threads = 0, const quant::KernelTable* kernels = nullptr);

    void reset() override;
    Act input(std::span<const float> data, std::array<int64_t, kMaxDims> ne) override;
    void read(const Act& a, std::span<float> out) override;
    Act get_rows(const Tensor& table, std::span<const int32_t> ids) override;
    Act matmul(const Tensor& w, const Act& x) override;
    std::vector<Act> matmul_many(std::span<const Tensor* const> ws, const Act& x) override;
    Act rms_norm(const Act& x, const Tensor* w, float eps) override;
    Act rope(const Act& x, std::span<const int32_t> pos, const RopeParams& p) override;
    Act add(const Act& a, const Act& b) override;
    Act mul(const Act& a, const Act& b) override;
    Act scale(const Act& a, float s) override;
    Act silu(const Act& a) override;
    Act sigmoid(const Act& a) override;
    Act gelu(const Act& a) override;
    Act swiglu(const Act& gate, const Act& up) override;
    Act geglu(const Act& gate, const Act& up) override;
    Act softmax(const Act& x, float scale) override;
    Act rows(const Act& x, int64_t first, int64_t count) override;
    Act cols(const Act& x, int64_t first, int64_t count) override;
    Act l2_norm(const Act& x, float eps) override;
    StateHandle new_state_layer(const StateLayerSpec& spec) override;
    void state_get(StateHandle s, std::span<float> out) override;
    void state_set(StateHandle s, std::span<const float> in) override;
    Act ssm_conv(const Act& x, const Tensor& w, StateHandle s) override;
    Act gated_delta_net(const Act& q, const Act& k, const Act& v, const Act& alpha, const Act& beta,
                        const GdnParams& p) override;
    Act concat_rows(std::span<const Act> parts) override;
    KvHandle new_kv_layer(const KvLayerSpec& spec) override;
    void kv_write(KvHandle kv, const Act& k, const Act& v, int64_t pos0) override;
    Act attention(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p) override;
    Act attention_seqs(const Act& q, std::span<const AttnSeq> seqs) override;
    std::vector<int32_t> top_k(const Act& x, int64_t k) override;
    Act moe_ffn(const Act& x, const MoeWeights& w, const MoeParams& p) override;

    // Host access for tests and callbacks: the f32 data of a live activation.
    std::span<const float> data(const Act& a) const;

    int n_threads() const { return pool_.size(); }
    const quant::KernelTable& kernels() const { return *kernels_; }
    const EwKernels& elementwise() const { return *ew_; }

private:
    struct KvLayer {
        KvLayerSpec spec;
        // Cells [n_ctx][n_head_kv][head_dim]: F32 in k32 / v32, F16 (raw halves) in k16 / v16, any other
        // type as rows of whole blocks in kq / vq (the side's other vectors stay empty).
        std::vector<float> k32, v32;
        std::vector<uint16_t> k16, v16;
        std::vector<uint8_t> kq, vq;
    };

    // Activation rows ready for a weight type's gemm: quantized to its paired type (in buf), rounded
    // to F16 / BF16 (in buf), or x itself for F32; row r at data + r * stride.
    struct PreparedAct {
        const void* data;
        size_t stride;
    };
    PreparedAct prepare_act(GgmlType w_type, const float* x, int64_t n_rows, int64_t n_in, std::vector<uint8_t>& buf);
    // One tile through the fast kernel of w_type, or the scalar vec_dot fallback.
    // One GEMM tile of weight w (2-D, or one expert of a 3-D tensor: w.ne[1] rows each).
    void gemm_tile(const Tensor& w, const quant::GemmArgs& g) const;
    // One tile of rows of `type` with ggml's vec_dot order (KV cache rows: never repacked).
    void gemm_tile(GgmlType type, const quant::GemmArgs& g) const;
    // Weight rows per work item for a product with n_cols activation columns.
    int64_t gemm_rows_per_item(int64_t n_rows_total, int64_t n_cols) const;
    // y [n_tok][n_out] = w x [n_tok][n_in] (matmul without the activation handles).
    void matmul_into(const Tensor& w, const float* x, int64_t n_tok, float* y, std::vector<uint8_t>& scratch);
    // ys[k] = ws[k] x (up to 8 weights with the same n_in): the activations prepared once and all the
    // products' work items in one parallel region; each output as matmul_into computes it.
    void matmul_many_into(std::span<const Tensor* const> ws, const float* x, int64_t n_tok, std::span<float* const> ys,
                          std::vector<uint8_t>& scratch);
    // Adds w's bytes to traffic().weight_bytes.
    void count_weight(const Tensor& w);

    // attention's computations (attention.cpp): llama.cpp's tiled flash-attention mathematics in F32,
    // and its -fa off / one-row flash-attention arithmetic.
    Act attention_f32(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p);
    Act attention_ggml(const Act& q, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p);
    // attention_ggml's work for one call's (or sequence's) queries q, n_tok x items_per_token items
    // (GgmlAttn), outputs at y; batch_tok: the tokens of the whole parallel region (all sequences).
    struct GgmlAttn;
    GgmlAttn prepare_ggml(const float* q, int64_t n_tok, int64_t n_head, KvHandle kv, std::span<const int32_t> pos,
                          const AttnParams& p, float* y, int64_t batch_tok);
    void ggml_item(const GgmlAttn& a, int64_t item) const;
    void group_item(const GgmlAttn& a, int64_t item) const;
    void merge_splits(const GgmlAttn& a);
    static void merge_head(const GgmlAttn& a, int64_t h);
    // attention's checks and traffic count; true when the call takes attention_f32.
    bool attention_checks(const Act& q, int64_t n_tok, KvHandle kv, std::span<const int32_t> pos, const AttnParams& p);

    Act alloc(std::array<int64_t, kMaxDims> ne);
    float* ptr(const Act& a);
    const float* ptr(const Act& a) const;
    // Runs fn(begin, end) over n elements in chunks big enough to be worth a thread.
    template <class F>
    void parallel_elements(int64_t n, F&& fn);
    template <class F>
    Act unary(const Act& a, F f);
    template <class F>
    Act binary(const Act& a, const Act& b, F f);
    // y = fn(a, b) by an element-wise kernel (EwKernels::add / mul), threaded over chunks.
    Act ew_binary(const Act& a, const Act& b, void (*fn)(int64_t, const float*, const float*, float*));

    ThreadPool pool_;
    const quant::KernelTable* kernels_;
    const EwKernels* ew_;                           // element-wise kernels of kernels_'s instruction set
    ActArena arena_;                                // the activations' memory, reused across reset()
    std::vector<std::pair<float*, int64_t>> live_;  // per live Act id: its data and element count
    std::vector<uint8_t> act_scratch_;              // activations quantized for matmul
    // moe_ffn's buffers, kept across calls (moe.cpp).
    struct MoeScratch {
        std::vector<float> logits, weights, gate, up, down, shared;
        std::vector<int32_t> experts, count, offset, slot, token;
        std::vector<uint8_t> x_gate, x_up, gathered_gate, gathered_up, act_down, misc;
    };
    MoeScratch moe_;
    std::vector<KvLayer> kv_;
    StateStore states_;
};

}  // namespace ferry::backend::cpu
