// moe_ffn: the reference backend against a naive double-precision computation of ops.h's definition,
// and the CPU backend against the reference (test-backend-ops style, NMSE), for the expert weight
// types the golden files and real MoE GGUFs use. Awkward routing throughout: one token, 7 and 64
// tokens, experts that receive no token, every token routed to the same expert, k = 1 and k = 8,
// softmax and sigmoid gating, with and without the (gated) shared expert.
//
// Guard bytes: every expert tensor is laid out with a gap of 0xFF bytes between experts (nb[2] larger
// than one expert), and after routing the experts no token chose are overwritten with 0xFF too. 0xFF
// scales decode to NaN in every format, so reading a byte outside the chosen experts shows up as a
// NaN in the output.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <tuple>

#include "backend/cpu/cpu_ops.h"
#include "backend/moe_routing.h"
#include "backend/recording/recording_ops.h"
#include "backend/reference/reference_ops.h"
#include "core/fp16.h"
#include "cpu_test_util.h"

namespace ferry::cpu_test {
namespace {

using backend::Act;
using backend::MoeGating;
using backend::cpu::CpuOps;
using backend::reference::ReferenceOps;

constexpr uint64_t kGapBytes = 64;

// A 3-D expert tensor {n_in, n_out, n_expert} with kGapBytes of 0xFF between experts.
struct Experts {
    std::vector<uint8_t> bytes;
    Tensor t;

    void poison(int64_t e) {
        std::fill_n(bytes.begin() + std::ptrdiff_t(uint64_t(e) * t.nb[2]), backend::expert_bytes(t), uint8_t(0xFF));
    }
};

// rows x n_in random floats quantized to `type` by the reference quantizer, made once per argument set:
// the slow quantizers (K-quants, IQ4_XS) would otherwise dominate the test's time.
const std::vector<uint8_t>& quantized_rows(GgmlType type, int64_t n_in, int64_t rows, uint32_t seed, float scale) {
    static std::map<std::tuple<GgmlType, int64_t, int64_t, uint32_t, float>, std::vector<uint8_t>> cache;
    std::vector<uint8_t>& q = cache[{type, n_in, rows, seed, scale}];
    if (q.empty()) {
        const quant::FormatTraits* f = quant::find_format(type);
        const int64_t row = n_in / f->block_size * f->type_size;
        const std::vector<float> src = random_floats(size_t(n_in * rows), seed, scale);
        q.resize(size_t(row * rows));
        for (int64_t r = 0; r < rows; ++r) f->quantize_row(src.data() + r * n_in, q.data() + r * row, n_in);
    }
    return q;
}

Experts make_experts(GgmlType type, int64_t n_in, int64_t n_out, int64_t n_expert, uint32_t seed, float scale) {
    const quant::FormatTraits* f = quant::find_format(type);
    const uint64_t row = uint64_t(n_in / f->block_size * f->type_size), size = row * uint64_t(n_out);
    const uint64_t stride = size + kGapBytes;
    const std::vector<uint8_t>& q = quantized_rows(type, n_in, n_out * n_expert, seed, scale);
    Experts x;
    x.bytes.assign(size_t(stride * uint64_t(n_expert)), uint8_t(0xFF));
    for (int64_t e = 0; e < n_expert; ++e)
        std::copy_n(q.begin() + std::ptrdiff_t(uint64_t(e) * size), size,
                    x.bytes.begin() + std::ptrdiff_t(uint64_t(e) * stride));
    x.t.name = "blk.0.ffn_test_exps.weight";
    x.t.type = type;
    x.t.n_dims = 3;
    x.t.ne = {n_in, n_out, n_expert, 1};
    x.t.nb = {uint64_t(f->type_size), row, stride, stride * uint64_t(n_expert)};
    x.t.data = x.bytes.data();
    return x;
}

// A 2-D weight {n_in, n_out} (the shared expert's matrices).
void make_matrix(Weight& w, GgmlType type, int64_t n_in, int64_t n_out, uint32_t seed) {
    w.bytes = quantized_rows(type, n_in, n_out, seed, 1.0f / 16);
    w.t.type = type;
    w.t.n_dims = 2;
    w.t.ne = {n_in, n_out, 1, 1};
    w.t.nb = contiguous_strides(type, w.t.ne);
    w.t.data = w.bytes.data();
}

Tensor f32_tensor(const std::vector<float>& v, int64_t n_in, int64_t n_out) {
    Tensor t;
    t.type = GgmlType::F32;
    t.n_dims = n_out == 1 ? 1 : 2;
    t.ne = {n_in, n_out, 1, 1};
    t.nb = contiguous_strides(GgmlType::F32, t.ne);
    t.data = v.data();
    return t;
}

struct MoeTypes {
    GgmlType gate, up, down;
};

struct MoeCase {
    int64_t n_tok = 1;
    int64_t n_expert = 8;
    int64_t k = 2;
    bool shared = false;       // shared expert
    bool shared_gate = false;  // with ffn_gate_inp_shexp
    MoeGating gating = MoeGating::Softmax;
    bool norm = true;
    float scale = 1.0f;
    bool all_to_one = false;  // every token's first choice is expert 5
    int n_threads = 3;
};

// Inputs of one case: x, router, experts, shared expert, as MoeWeights.
struct MoeSetup {
    int64_t n_embd = 256, n_ff = 0;
    std::vector<float> x, router, shexp_gate_inp;
    Tensor router_t, shexp_gate_inp_t;
    Experts gate, up, down;
    Weight gate_s, up_s, down_s;
    backend::MoeWeights w;
    backend::MoeParams p;

    MoeSetup(const MoeTypes& ty, const MoeCase& c) {
        auto block = [](GgmlType t) {
            const quant::FormatTraits* f = quant::find_format(t);
            return std::max(f->block_size, quant::find_format(f->vec_dot_type)->block_size);
        };
        const bool big_blocks = block(ty.gate) == 256 || block(ty.up) == 256 || block(ty.down) == 256;
        n_ff = big_blocks ? 256 : 96;
        const int64_t n_ff_s = big_blocks ? 256 : 160;
        x = random_floats(size_t(n_embd * c.n_tok), uint32_t(11 + c.n_tok));
        router = random_floats(size_t(n_embd * c.n_expert), 12, 0.15f);
        if (c.all_to_one) {
            for (int64_t t = 0; t < c.n_tok; ++t) x[size_t(t * n_embd)] = 8.0f;
            router[size_t(5 * n_embd)] = 6.0f;
        }
        shexp_gate_inp = random_floats(size_t(n_embd), 13, 0.1f);
        router_t = f32_tensor(router, n_embd, c.n_expert);
        shexp_gate_inp_t = f32_tensor(shexp_gate_inp, n_embd, 1);
        gate = make_experts(ty.gate, n_embd, n_ff, c.n_expert, 21, 1.0f / 16);
        up = make_experts(ty.up, n_embd, n_ff, c.n_expert, 22, 1.0f / 16);
        down = make_experts(ty.down, n_ff, n_embd, c.n_expert, 23, 0.5f / std::sqrt(float(n_ff)));
        w = {.gate_inp = &router_t, .gate_exps = &gate.t, .up_exps = &up.t, .down_exps = &down.t};
        if (c.shared) {
            make_matrix(gate_s, ty.gate, n_embd, n_ff_s, 31);
            make_matrix(up_s, ty.up, n_embd, n_ff_s, 32);
            make_matrix(down_s, ty.down, n_ff_s, n_embd, 33);
            w.gate_shexp = &gate_s.t;
            w.up_shexp = &up_s.t;
            w.down_shexp = &down_s.t;
            if (c.shared_gate) w.gate_inp_shexp = &shexp_gate_inp_t;
        }
        p = {.n_expert = c.n_expert,
             .n_expert_used = c.k,
             .gating = c.gating,
             .norm_topk = c.norm,
             .weights_scale = c.scale};
    }

    std::array<int64_t, kMaxDims> x_ne() const { return {n_embd, int64_t(x.size()) / n_embd, 1, 1}; }

    // Tokens per expert, from the reference router.
    std::vector<int64_t> expert_counts() const {
        ReferenceOps ref;
        const Act l = ref.matmul(router_t, ref.input(x, x_ne()));
        const int64_t n_tok = x_ne()[1];
        std::vector<int32_t> e(size_t(n_tok * p.n_expert_used));
        std::vector<float> wt(e.size());
        backend::moe_route(ref.data(l).data(), n_tok, p, e.data(), wt.data());
        std::vector<int64_t> count(size_t(p.n_expert), 0);
        for (int32_t i : e) ++count[size_t(i)];
        return count;
    }

    uint64_t expected_weight_bytes(const std::vector<int64_t>& count) const {
        uint64_t b = router_t.n_bytes();
        for (int64_t n : count)
            if (n > 0) b += backend::expert_bytes(gate.t) + backend::expert_bytes(up.t) + backend::expert_bytes(down.t);
        if (w.gate_shexp) b += gate_s.t.n_bytes() + up_s.t.n_bytes() + down_s.t.n_bytes();
        if (w.gate_inp_shexp) b += shexp_gate_inp_t.n_bytes();
        return b;
    }
    uint64_t expected_expert_bytes(const std::vector<int64_t>& count) const {
        uint64_t b = 0;
        for (int64_t n : count)
            if (n > 0) b += backend::expert_bytes(gate.t) + backend::expert_bytes(up.t) + backend::expert_bytes(down.t);
        return b;
    }
};

std::vector<float> run_moe(backend::Ops& ops, const MoeSetup& s) {
    const Act y = ops.moe_ffn(ops.input(s.x, s.x_ne()), s.w, s.p);
    EXPECT_EQ(y.ne, s.x_ne());
    std::vector<float> out(size_t(y.n_elements()));
    ops.read(y, out);
    return out;
}

bool all_finite(const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

class CpuMoe : public ::testing::TestWithParam<std::tuple<MoeTypes, MoeCase>> {};

TEST_P(CpuMoe, MatchesReferenceAndReadsOnlyChosenExperts) {
    const auto [ty, c] = GetParam();
    MoeSetup s(ty, c);
    const std::vector<int64_t> count = s.expert_counts();
    if (c.all_to_one) {
        ASSERT_EQ(count[5], c.n_tok) << "every token must choose expert 5";
    }
    if (c.n_tok == 1) {
        ASSERT_LT(std::count(count.begin(), count.end(), 0), c.n_expert);
        ASSERT_GT(std::count(count.begin(), count.end(), 0), 0) << "some expert must receive no token";
    }

    ReferenceOps ref;
    CpuOps cpu(c.n_threads);
    const std::vector<float> yr = run_moe(ref, s);
    const std::vector<float> yc = run_moe(cpu, s);
    ASSERT_TRUE(all_finite(yr));
    ASSERT_TRUE(all_finite(yc));
    const double e = nmse(yc, yr);
    // Both quantize identically; float summation order differs, and the CPU backend's SiLU uses ggml's
    // vector exp (one ulp from the reference's std::exp), which can move a rounding of the down
    // projection's quantized input.
    EXPECT_LE(e, 1e-6) << "gate " << type_name(ty.gate) << " up " << type_name(ty.up) << " down " << type_name(ty.down);
    EXPECT_EQ(ref.traffic().weight_bytes, s.expected_weight_bytes(count));
    EXPECT_EQ(cpu.traffic().weight_bytes, s.expected_weight_bytes(count));
    EXPECT_EQ(ref.traffic().expert_bytes, s.expected_expert_bytes(count));
    EXPECT_EQ(cpu.traffic().expert_bytes, s.expected_expert_bytes(count));

    // Unchosen experts poisoned: the CPU result is unchanged, bit for bit.
    for (int64_t ex = 0; ex < c.n_expert; ++ex) {
        if (count[size_t(ex)] == 0) {
            s.gate.poison(ex);
            s.up.poison(ex);
            s.down.poison(ex);
        }
    }
    CpuOps cpu2(c.n_threads);
    EXPECT_EQ(run_moe(cpu2, s), yc);
}

std::string moe_name(const ::testing::TestParamInfo<std::tuple<MoeTypes, MoeCase>>& info) {
    const auto& [ty, c] = info.param;
    std::string n = std::string(type_name(ty.gate));
    if (ty.up != ty.gate || ty.down != ty.gate)
        n += "_" + std::string(type_name(ty.up)) + "_" + std::string(type_name(ty.down));
    n += "_T" + std::to_string(c.n_tok) + "_E" + std::to_string(c.n_expert) + "_k" + std::to_string(c.k);
    if (c.shared) n += c.shared_gate ? "_gatedshexp" : "_shexp";
    if (c.gating == MoeGating::Sigmoid) n += "_sigmoid";
    if (!c.norm) n += "_nonorm";
    if (c.scale != 1.0f) n += "_scaled";
    if (c.all_to_one) n += "_alltoone";
    return n + "_t" + std::to_string(c.n_threads);
}

// The expert types of the golden files and of real MoE GGUFs (Q4_K_M puts down in Q6_K or Q5_0 /
// Q8_0; MXFP4_MOE; Q4_0 / IQ4_NL / IQ4_XS / Q5_K mixes), plus mixed gate / up / down types.
const MoeTypes kTypes[] = {
    {GgmlType::F16, GgmlType::F16, GgmlType::F16},       {GgmlType::BF16, GgmlType::BF16, GgmlType::BF16},
    {GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0},    {GgmlType::Q4_0, GgmlType::Q4_0, GgmlType::Q4_0},
    {GgmlType::Q5_0, GgmlType::Q5_0, GgmlType::Q5_0},    {GgmlType::Q4_1, GgmlType::Q4_1, GgmlType::Q4_1},
    {GgmlType::MXFP4, GgmlType::MXFP4, GgmlType::MXFP4}, {GgmlType::IQ4_NL, GgmlType::IQ4_NL, GgmlType::IQ4_NL},
    {GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K},    {GgmlType::Q5_K, GgmlType::Q5_K, GgmlType::Q5_K},
    {GgmlType::Q6_K, GgmlType::Q6_K, GgmlType::Q6_K},    {GgmlType::IQ4_XS, GgmlType::IQ4_XS, GgmlType::IQ4_XS},
    {GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q5_0},    {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16},
    {GgmlType::F32, GgmlType::F32, GgmlType::F32},
};

INSTANTIATE_TEST_SUITE_P(
    Types, CpuMoe,
    ::testing::Combine(::testing::ValuesIn(kTypes),
                       ::testing::Values(MoeCase{.n_tok = 1, .shared = true, .shared_gate = true},
                                         MoeCase{
                                             .n_tok = 7, .gating = MoeGating::Sigmoid, .norm = false, .n_threads = 2},
                                         MoeCase{.n_tok = 64, .shared = true})),
    moe_name);

INSTANTIATE_TEST_SUITE_P(
    Routing, CpuMoe,
    ::testing::Combine(
        ::testing::Values(MoeTypes{GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0},
                          MoeTypes{GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K}),
        ::testing::Values(
            MoeCase{.n_tok = 1, .k = 1, .n_threads = 1}, MoeCase{.n_tok = 7, .k = 1, .all_to_one = true},
            MoeCase{.n_tok = 64, .k = 2, .all_to_one = true, .n_threads = 2},
            MoeCase{.n_tok = 1, .n_expert = 16, .k = 8, .shared = true},
            MoeCase{
                .n_tok = 64, .n_expert = 16, .k = 8, .shared = true, .shared_gate = true, .gating = MoeGating::Sigmoid},
            MoeCase{.n_tok = 7, .n_expert = 16, .k = 8, .norm = false, .scale = 2.5f})),
    moe_name);

// Many experts, few tokens each (most of them none): the grouping and the work items.
INSTANTIATE_TEST_SUITE_P(ManyExperts, CpuMoe,
                         ::testing::Combine(::testing::Values(MoeTypes{GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0}),
                                            ::testing::Values(MoeCase{.n_tok = 64, .n_expert = 128, .k = 8},
                                                              MoeCase{.n_tok = 1, .n_expert = 128, .k = 8})),
                         moe_name);

// A token's output must not depend on the micro-batch it is in (bit for bit), as for matmul. Not for
// Q4_K experts with a multiple of 8 rows: like llama.cpp's repacked Q4_K, the last (count % 4) tokens
// of an expert take the GEMV order (KernelTable::gemm_q4k_8x8).
TEST(CpuMoeBatch, DecodeEqualsBatched) {
    for (const MoeTypes& ty : {MoeTypes{GgmlType::F16, GgmlType::F16, GgmlType::F16},
                               MoeTypes{GgmlType::Q5_K, GgmlType::Q5_K, GgmlType::Q6_K},
                               MoeTypes{GgmlType::MXFP4, GgmlType::MXFP4, GgmlType::MXFP4}}) {
        const MoeSetup s(ty, {.n_tok = 23, .shared = true, .shared_gate = true});
        CpuOps cpu(3);
        const std::vector<float> all = run_moe(cpu, s);
        for (int64_t t = 0; t < 23; ++t) {
            const std::span<const float> xt = std::span(s.x).subspan(size_t(t * s.n_embd), size_t(s.n_embd));
            const Act y = cpu.moe_ffn(cpu.input(xt, {s.n_embd, 1, 1, 1}), s.w, s.p);
            for (int64_t i = 0; i < s.n_embd; ++i)
                ASSERT_EQ(cpu.data(y)[size_t(i)], all[size_t(t * s.n_embd + i)])
                    << type_name(ty.gate) << " token " << t;
        }
    }
}

// ops.h's definition computed independently in double from dequantized weights and the activations
// as the weight types see them (quantized to the paired type and back).
std::vector<float> as_seen(GgmlType weight_type, std::vector<float> x) {
    if (weight_type == GgmlType::F16)
        for (float& v : x) v = fp16_to_fp32(fp32_to_fp16(v));
    const quant::FormatTraits* af = quant::find_format(quant::find_format(weight_type)->vec_dot_type);
    if (af->block_size == 1) return x;
    std::vector<uint8_t> q(x.size() / size_t(af->block_size) * size_t(af->type_size));
    af->quantize_row(x.data(), q.data(), int64_t(x.size()));
    af->dequantize_row(q.data(), x.data(), int64_t(x.size()));
    return x;
}

std::vector<double> naive_matvec(const Tensor& w, const std::vector<float>& x) {
    const quant::FormatTraits* f = quant::find_format(w.type);
    const std::vector<float> a = as_seen(w.type, x);
    std::vector<double> y(size_t(w.ne[1]));
    std::vector<float> row(size_t(w.ne[0]));
    for (int64_t o = 0; o < w.ne[1]; ++o) {
        f->dequantize_row(static_cast<const uint8_t*>(w.data) + uint64_t(o) * w.nb[1], row.data(), w.ne[0]);
        for (int64_t i = 0; i < w.ne[0]; ++i) y[size_t(o)] += double(row[size_t(i)]) * double(a[size_t(i)]);
    }
    return y;
}

std::vector<double> naive_glu(const Tensor& gate, const Tensor& up, const Tensor& down, const std::vector<float>& x) {
    const std::vector<double> g = naive_matvec(gate, x), u = naive_matvec(up, x);
    std::vector<float> h(g.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = float(g[i] / (1.0 + std::exp(-g[i])) * u[i]);
    return naive_matvec(down, h);
}

TEST(ReferenceMoe, MatchesNaiveDouble) {
    for (const MoeTypes& ty : {MoeTypes{GgmlType::F16, GgmlType::F16, GgmlType::F16},
                               MoeTypes{GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0},
                               MoeTypes{GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K},
                               MoeTypes{GgmlType::MXFP4, GgmlType::MXFP4, GgmlType::MXFP4}}) {
        for (const MoeCase& c :
             {MoeCase{.n_tok = 7, .shared = true, .shared_gate = true},
              MoeCase{
                  .n_tok = 3, .n_expert = 16, .k = 8, .gating = MoeGating::Sigmoid, .norm = false, .scale = 2.5f}}) {
            const MoeSetup s(ty, c);
            ReferenceOps ref;
            const std::vector<float> got = run_moe(ref, s);
            std::vector<float> want(got.size());
            for (int64_t t = 0; t < c.n_tok; ++t) {
                const std::vector<float> xt(s.x.begin() + t * s.n_embd, s.x.begin() + (t + 1) * s.n_embd);
                const std::vector<double> logit = naive_matvec(s.router_t, xt);
                std::vector<double> prob(logit.size());
                const double mx = *std::max_element(logit.begin(), logit.end());
                double sum = 0;
                for (size_t e = 0; e < prob.size(); ++e) {
                    prob[e] =
                        c.gating == MoeGating::Softmax ? std::exp(logit[e] - mx) : 1.0 / (1.0 + std::exp(-logit[e]));
                    sum += prob[e];
                }
                if (c.gating == MoeGating::Softmax)
                    for (double& v : prob) v /= sum;
                std::vector<int> order(prob.size());
                std::iota(order.begin(), order.end(), 0);
                std::stable_sort(order.begin(), order.end(),
                                 [&](int a, int b) { return prob[size_t(a)] > prob[size_t(b)]; });
                double wsum = 0;
                for (int64_t j = 0; j < c.k; ++j) wsum += prob[size_t(order[size_t(j)])];
                std::vector<double> acc(size_t(s.n_embd));
                for (int64_t j = 0; j < c.k; ++j) {
                    const int e = order[size_t(j)];
                    const double wj = prob[size_t(e)] / (c.norm ? wsum : 1.0) * c.scale;
                    const std::vector<double> d =
                        naive_glu(backend::expert_matrix(s.gate.t, e), backend::expert_matrix(s.up.t, e),
                                  backend::expert_matrix(s.down.t, e), xt);
                    for (size_t i = 0; i < acc.size(); ++i) acc[i] += wj * d[i];
                }
                if (c.shared) {
                    const std::vector<double> d = naive_glu(s.gate_s.t, s.up_s.t, s.down_s.t, xt);
                    double g = 1;
                    if (c.shared_gate) g = 1.0 / (1.0 + std::exp(-naive_matvec(s.shexp_gate_inp_t, xt)[0]));
                    for (size_t i = 0; i < acc.size(); ++i) acc[i] += g * d[i];
                }
                for (int64_t i = 0; i < s.n_embd; ++i) want[size_t(t * s.n_embd + i)] = float(acc[size_t(i)]);
            }
            EXPECT_LE(nmse(got, want), 1e-7) << type_name(ty.gate) << " k " << c.k;
        }
    }
}

TEST(RecordingMoe, RecordsShapeAndScratch) {
    const MoeSetup s({GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0}, {.n_tok = 7, .shared = true});
    backend::recording::RecordingOps rec;
    const Act y = rec.moe_ffn(rec.input(s.x, s.x_ne()), s.w, s.p);
    EXPECT_EQ(y.ne, s.x_ne());
    const backend::recording::OpRecord& r = rec.ops().back();
    EXPECT_EQ(r.op, "moe_ffn");
    EXPECT_EQ(r.weight_type, GgmlType::Q8_0);
    EXPECT_GE(r.scratch_bytes, uint64_t(7 * 2 * (2 * s.n_ff + s.n_embd)) * sizeof(float));
    EXPECT_EQ(rec.activation_bytes(), r.scratch_bytes + r.out_bytes + rec.ops().front().out_bytes);
}

}  // namespace
}  // namespace ferry::cpu_test
