// The CPU backend against the reference backend, ggml test-backend-ops style: the same op on the same
// seeded inputs through both, compared by NMSE with per-op tolerances. Awkward shapes throughout:
// batch 1, 7, 32 and 512; row counts that are not multiples of any tile or chunk; 1 and 3 threads;
// query heads != KV heads; windows; F16 and F32 caches.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/reference_ops.h"
#include "core/fp16.h"
#include "cpu_test_util.h"
#include "quant/kernels.h"

namespace ferry::cpu_test {
namespace {

using backend::Act;
using backend::cpu::CpuOps;
using backend::reference::ReferenceOps;

// Per-type matmul tolerance. Both backends quantize activations identically (bit-exact quantizers),
// so the only differences are float summation order: tiny for every type.
double matmul_tolerance(GgmlType) { return 1e-9; }

struct MatmulCase {
    int64_t n_in_blocks;  // n_in = blocks * block size
    int64_t n_out;
    int64_t n_tok;
    int n_threads;
};

class CpuMatmul : public ::testing::TestWithParam<std::tuple<GgmlType, MatmulCase>> {};

TEST_P(CpuMatmul, MatchesReference) {
    const auto [type, c] = GetParam();
    const quant::FormatTraits* f = quant::find_format(type);
    int64_t n_in = c.n_in_blocks * f->block_size;
    if (f->block_size == 1) n_in = c.n_in_blocks * 32 + 5;  // float rows: a SIMD tail
    const Weight w = make_weight(type, n_in, c.n_out, uint32_t(n_in + c.n_out));
    const std::vector<float> x = random_floats(size_t(n_in * c.n_tok), uint32_t(c.n_tok * 13 + 1));

    ReferenceOps ref;
    CpuOps cpu(c.n_threads);
    const Act yr = ref.matmul(w.t, ref.input(x, {n_in, c.n_tok, 1, 1}));
    const Act yc = cpu.matmul(w.t, cpu.input(x, {n_in, c.n_tok, 1, 1}));
    ASSERT_EQ(yr.ne, yc.ne);
    const double e = nmse(cpu.data(yc), ref.data(yr));
    EXPECT_LE(e, matmul_tolerance(type)) << type_name(type) << " n_in " << n_in << " n_out " << c.n_out << " T "
                                         << c.n_tok << " threads " << c.n_threads;
}

std::string matmul_name(const ::testing::TestParamInfo<std::tuple<GgmlType, MatmulCase>>& info) {
    const auto& [type, c] = info.param;
    return std::string(type_name(type)) + "_in" + std::to_string(c.n_in_blocks) + "b_out" + std::to_string(c.n_out) +
           "_T" + std::to_string(c.n_tok) + "_t" + std::to_string(c.n_threads);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CpuMatmul,
                         ::testing::Combine(::testing::ValuesIn(weight_types()),
                                            ::testing::Values(MatmulCase{3, 37, 1, 1}, MatmulCase{3, 37, 7, 3},
                                                              MatmulCase{2, 70, 32, 2}, MatmulCase{1, 19, 512, 3},
                                                              MatmulCase{4, 301, 1, 3})),
                         matmul_name);

// The scalar kernel table through the same driver (the fallback every type can take).
TEST(CpuOps, ScalarTableMatchesReference) {
    for (GgmlType type : {GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16}) {
        const int64_t n_in = 512, n_out = 33, n_tok = 5;
        const Weight w = make_weight(type, n_in, n_out, 5);
        const std::vector<float> x = random_floats(size_t(n_in * n_tok), 6);
        ReferenceOps ref;
        CpuOps cpu(2, quant::kernels_for(quant::Isa::Scalar));
        const Act yr = ref.matmul(w.t, ref.input(x, {n_in, n_tok, 1, 1}));
        const Act yc = cpu.matmul(w.t, cpu.input(x, {n_in, n_tok, 1, 1}));
        EXPECT_LE(nmse(cpu.data(yc), ref.data(yr)), 1e-12) << type_name(type);
    }
}

TEST(CpuOps, DecodeEqualsBatchedColumns) {
    // A token's logits must not depend on the micro-batch it is in (bit for bit). (Q4_K with 45 rows is
    // not llama.cpp's repacked Q4_K, whose last nc % 4 columns take another order: KernelTable::gemm_q4k_8x8.)
    for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16,
                          GgmlType::F32}) {
        // 75 tokens: two column blocks of the GEMM split, register tiles of 8 and a remainder.
        const int64_t n_in = 512, n_out = 45, n_tok = 75;
        const Weight w = make_weight(type, n_in, n_out, 9);
        const std::vector<float> x = random_floats(size_t(n_in * n_tok), 10);
        CpuOps cpu(3);
        const Act all = cpu.matmul(w.t, cpu.input(x, {n_in, n_tok, 1, 1}));
        const std::vector<float> batched(cpu.data(all).begin(), cpu.data(all).end());
        for (int64_t t = 0; t < n_tok; ++t) {
            const Act one =
                cpu.matmul(w.t, cpu.input(std::span(x).subspan(size_t(t * n_in), size_t(n_in)), {n_in, 1, 1, 1}));
            for (int64_t o = 0; o < n_out; ++o)
                ASSERT_EQ(cpu.data(one)[size_t(o)], batched[size_t(t * n_out + o)])
                    << type_name(type) << " token " << t;
        }
    }
}

// matmul_many: each result bit for bit what matmul gives, whether the weights share one parallel region
// (same activation type: Q4_1 + Q8_1-paired types, different row counts) or not (F16 next to Q8_0, an
// F32 {n_in, 1} gate computed with ggml_vec_dot_f32), in decode and prefill, and below the size at which
// the pool is woken.
TEST(CpuOps, MatmulManyEqualsMatmul) {
    const std::vector<std::vector<GgmlType>> groups = {{GgmlType::Q4_1, GgmlType::Q4_1, GgmlType::Q4_1},
                                                       {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K},
                                                       {GgmlType::F16, GgmlType::Q8_0, GgmlType::F32, GgmlType::Q6_K}};
    for (const auto& types : groups) {
        for (const int64_t n_in : {int64_t(256), int64_t(2048)}) {
            for (const int64_t n_tok : {int64_t(1), int64_t(4), int64_t(67)}) {
                std::vector<Weight> ws;
                std::vector<const Tensor*> ptrs;
                for (size_t k = 0; k < types.size(); ++k) {
                    // Row counts not multiples of any tile; an F32 weight with one row (ggml_vec_dot_f32).
                    const int64_t n_out = types[k] == GgmlType::F32 ? 1 : 40 + 24 * int64_t(k) + 3 * int64_t(k % 2);
                    ws.push_back(make_weight(types[k], n_in, n_out, uint32_t(31 + k)));
                }
                for (const Weight& w : ws) ptrs.push_back(&w.t);
                const std::vector<float> x = random_floats(size_t(n_in * n_tok), uint32_t(n_tok + n_in));
                CpuOps cpu(3);
                const Act xa = cpu.input(x, {n_in, n_tok, 1, 1});
                const std::vector<Act> many = cpu.matmul_many(ptrs, xa);
                ASSERT_EQ(many.size(), ws.size());
                for (size_t k = 0; k < ws.size(); ++k) {
                    const Act one = cpu.matmul(ws[k].t, xa);
                    ASSERT_EQ(one.ne, many[k].ne);
                    for (size_t i = 0; i < size_t(one.n_elements()); ++i)
                        ASSERT_EQ(std::bit_cast<uint32_t>(cpu.data(one)[i]),
                                  std::bit_cast<uint32_t>(cpu.data(many[k])[i]))
                            << type_name(types[k]) << " n_in " << n_in << " T " << n_tok << " element " << i;
                }
            }
        }
    }
}

Tensor f32_tensor(const std::vector<float>& v) {
    Tensor t;
    t.type = GgmlType::F32;
    t.n_dims = 1;
    t.ne = {int64_t(v.size()), 1, 1, 1};
    t.nb = contiguous_strides(GgmlType::F32, t.ne);
    t.data = v.data();
    return t;
}

// RoPE bit for bit as ggml computes it (checked against llama.cpp's rotated Q and K): the angles by
// repeated multiplication with powf(base, -2 / n_rot), cosf / sinf, and the rotation as GCC contracts
// ggml's x0*cos - x1*sin, x0*sin + x1*cos: the first product fused, the second rounded.
TEST(CpuOps, RopeIsGgmlsRotation) {
    const int64_t dim = 64, n_head = 3, n_tok = 5;
    const std::vector<float> x = random_floats(size_t(dim * n_head * n_tok), 41, 3.0f);
    const std::vector<int32_t> pos = {0, 1, 17, 250, 4095};
    CpuOps cpu(2);
    for (auto mode : {backend::RopeMode::Normal, backend::RopeMode::Neox}) {
        const backend::RopeParams p{.mode = mode, .n_rot = dim, .freq_base = 100000.0f};
        const Act y = cpu.rope(cpu.input(x, {dim, n_head, n_tok, 1}), pos, p);
        const float theta_scale = std::pow(p.freq_base, -2.0f / float(dim));
        for (int64_t t = 0; t < n_tok; ++t) {
            float theta = float(pos[size_t(t)]);
            for (int64_t i = 0; i < dim / 2; ++i, theta *= theta_scale) {
                const float c = std::cos(theta), sn = std::sin(theta);
                for (int64_t h = 0; h < n_head; ++h) {
                    const int64_t base = (t * n_head + h) * dim;
                    const int64_t i0 = base + (mode == backend::RopeMode::Normal ? 2 * i : i);
                    const int64_t i1 = base + (mode == backend::RopeMode::Normal ? 2 * i + 1 : i + dim / 2);
                    const float x0 = x[size_t(i0)], x1 = x[size_t(i1)];
                    ASSERT_EQ(cpu.data(y)[size_t(i0)], std::fma(x0, c, -(x1 * sn))) << t << " " << i;
                    ASSERT_EQ(cpu.data(y)[size_t(i1)], std::fma(x0, sn, x1 * c)) << t << " " << i;
                }
            }
        }
    }
}

TEST(CpuOps, ElementWiseNormRopeSoftmaxMatchReference) {
    for (int n_threads : {1, 3}) {
        ReferenceOps ref;
        CpuOps cpu(n_threads);
        const std::array<int64_t, kMaxDims> ne{96, 5, 33, 1};
        const size_t n = 96 * 5 * 33;
        const std::vector<float> a = random_floats(n, 1), b = random_floats(n, 2), wv = random_floats(96, 3);
        const Tensor wt = f32_tensor(wv);
        auto check = [&](const char* what, Act r, Act c, double tol) {
            ASSERT_EQ(r.ne, c.ne) << what;
            EXPECT_LE(nmse(cpu.data(c), ref.data(r)), tol) << what << " threads " << n_threads;
        };
        const Act ra = ref.input(a, ne), rb = ref.input(b, ne);
        const Act ca = cpu.input(a, ne), cb = cpu.input(b, ne);
        check("add", ref.add(ra, rb), cpu.add(ca, cb), 0);
        check("mul", ref.mul(ra, rb), cpu.mul(ca, cb), 0);
        check("scale", ref.scale(ra, 0.3f), cpu.scale(ca, 0.3f), 0);
        check("silu", ref.silu(ra), cpu.silu(ca), 1e-12);
        check("gelu", ref.gelu(ra), cpu.gelu(ca), 1e-12);
        check("swiglu", ref.swiglu(ra, rb), cpu.swiglu(ca, cb), 1e-12);
        check("geglu", ref.geglu(ra, rb), cpu.geglu(ca, cb), 1e-12);
        check("rms_norm", ref.rms_norm(ra, &wt, 1e-5f), cpu.rms_norm(ca, &wt, 1e-5f), 1e-12);
        check("rms_norm no weight", ref.rms_norm(ra, nullptr, 1e-6f), cpu.rms_norm(ca, nullptr, 1e-6f), 1e-12);
        check("softmax", ref.softmax(ra, 0.7f), cpu.softmax(ca, 0.7f), 1e-12);
        check("rows", ref.rows(backend::reshape(ra, {96, 165, 1, 1}), 17, 40),
              cpu.rows(backend::reshape(ca, {96, 165, 1, 1}), 17, 40), 0);
        {
            // concat_rows undoes rows: three pieces of different lengths (one a 3-d view) back in order.
            const Act r2 = backend::reshape(ra, {96, 165, 1, 1}), c2 = backend::reshape(ca, {96, 165, 1, 1});
            const std::vector<Act> rp = {ref.rows(r2, 0, 7), backend::reshape(ref.rows(r2, 7, 6), {96, 2, 3, 1}),
                                         ref.rows(r2, 13, 152)};
            const std::vector<Act> cp = {cpu.rows(c2, 0, 7), backend::reshape(cpu.rows(c2, 7, 6), {96, 2, 3, 1}),
                                         cpu.rows(c2, 13, 152)};
            check("concat_rows", ref.concat_rows(rp), cpu.concat_rows(cp), 0);
            check("concat_rows = input", r2, cpu.concat_rows(cp), 0);
        }
        std::vector<int32_t> pos(33);
        for (int i = 0; i < 33; ++i) pos[size_t(i)] = 1000 + 37 * i;
        const std::vector<float> ff = {1.0f, 1.5f, 2.0f, 4.0f, 8.0f, 1.0f, 1.0f, 3.0f};
        const Tensor fft = f32_tensor(ff);
        for (auto mode : {backend::RopeMode::Normal, backend::RopeMode::Neox}) {
            const backend::RopeParams p{.mode = mode, .n_rot = 64, .freq_base = 500000.0f, .freq_scale = 0.5f};
            check("rope", ref.rope(ra, pos, p), cpu.rope(ca, pos, p), 1e-12);
            const backend::RopeParams pf{.mode = mode, .n_rot = 16, .freq_base = 10000.0f, .freq_factors = &fft};
            check("rope partial + freq factors", ref.rope(ra, pos, pf), cpu.rope(ca, pos, pf), 1e-12);
        }
        EXPECT_EQ(ref.top_k(backend::reshape(ra, {96, 165, 1, 1}), 5),
                  cpu.top_k(backend::reshape(ca, {96, 165, 1, 1}), 5));
    }
}

TEST(CpuOps, GetRowsEveryType) {
    for (GgmlType type : weight_types()) {
        const quant::FormatTraits* f = quant::find_format(type);
        const int64_t n = f->block_size == 1 ? 40 : 2 * f->block_size;
        const Weight w = make_weight(type, n, 23, 4);
        const std::vector<int32_t> ids = {0, 22, 5, 5, 11};
        ReferenceOps ref;
        CpuOps cpu(2);
        EXPECT_LE(nmse(cpu.data(cpu.get_rows(w.t, ids)), ref.data(ref.get_rows(w.t, ids))), 0) << type_name(type);
    }
}

struct AttnCase {
    int64_t n_head, n_head_kv, dk, dv, n_past, n_tok, n_swa;
    GgmlType cache;
    int n_threads;
};

class CpuAttention : public ::testing::TestWithParam<AttnCase> {};

// Both -fa settings against the reference's plain F32. Where the CPU backend follows llama.cpp's F16
// arithmetic (an F16 cache, except the tiled flash-attention path of >= 64 query rows) the query and,
// with flash attention, the V accumulator are rounded to F16: NMSE ~2e-6; otherwise F32 throughout.
TEST_P(CpuAttention, MatchesReference) {
    const AttnCase c = GetParam();
    const int64_t n_ctx = c.n_past + c.n_tok + 3, n_kv = c.n_past + c.n_tok;
    for (bool fa : {true, false}) {
        ReferenceOps ref;
        CpuOps cpu(c.n_threads);
        const backend::KvHandle kr = ref.new_kv_layer({n_ctx, c.n_head_kv, c.dk, c.dv, c.cache, c.cache, fa});
        const backend::KvHandle kc = cpu.new_kv_layer({n_ctx, c.n_head_kv, c.dk, c.dv, c.cache, c.cache, fa});
        const std::vector<float> k = random_floats(size_t(n_kv * c.n_head_kv * c.dk), 21);
        const std::vector<float> v = random_floats(size_t(n_kv * c.n_head_kv * c.dv), 22);
        const std::vector<float> q = random_floats(size_t(c.n_tok * c.n_head * c.dk), 23);
        const std::array<int64_t, kMaxDims> kne{c.dk, c.n_head_kv, n_kv, 1}, vne{c.dv, c.n_head_kv, n_kv, 1};
        ref.kv_write(kr, ref.input(k, kne), ref.input(v, vne), 0);
        cpu.kv_write(kc, cpu.input(k, kne), cpu.input(v, vne), 0);
        std::vector<int32_t> pos(static_cast<size_t>(c.n_tok));
        for (int64_t t = 0; t < c.n_tok; ++t) pos[size_t(t)] = int32_t(c.n_past + t);
        const float scale = 1.0f / std::sqrt(float(c.dk));
        const backend::AttnParams p{.kq_scale = scale, .n_kv = n_kv, .n_swa = c.n_swa};
        const Act yr = ref.attention(ref.input(q, {c.dk, c.n_head, c.n_tok, 1}), kr, pos, p);
        const Act yc = cpu.attention(cpu.input(q, {c.dk, c.n_head, c.n_tok, 1}), kc, pos, p);
        ASSERT_EQ(yr.ne, yc.ne);
        const bool f16_arith = c.cache == GgmlType::F16 && !(fa && c.n_tok >= 64);
        EXPECT_LE(nmse(cpu.data(yc), ref.data(yr)), f16_arith ? 1e-5 : 1e-10) << (fa ? "-fa on" : "-fa off");
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuAttention,
    ::testing::Values(
        AttnCase{4, 2, 64, 64, 0, 7, 0, GgmlType::F16, 1}, AttnCase{6, 2, 32, 48, 9, 1, 0, GgmlType::F32, 3},
        AttnCase{8, 1, 128, 128, 100, 1, 0, GgmlType::F16, 2}, AttnCase{9, 3, 64, 64, 50, 90, 0, GgmlType::F16, 3},
        AttnCase{4, 4, 16, 16, 20, 40, 13, GgmlType::F32, 2}, AttnCase{4, 2, 64, 64, 0, 200, 70, GgmlType::F16, 3},
        // Around the tiled path's 64 rows, GQA 1 / 3 / 8, head sizes
        // 64 / 128 / 256, with and without cells already cached.
        AttnCase{2, 2, 128, 128, 30, 1, 0, GgmlType::F32, 1}, AttnCase{8, 1, 128, 128, 5, 7, 0, GgmlType::F16, 2},
        AttnCase{3, 3, 64, 64, 0, 63, 0, GgmlType::F16, 2}, AttnCase{3, 1, 64, 64, 0, 64, 0, GgmlType::F16, 2},
        AttnCase{3, 1, 64, 64, 37, 65, 0, GgmlType::F16, 2}, AttnCase{8, 8, 128, 64, 10, 100, 0, GgmlType::F32, 3},
        AttnCase{16, 2, 256, 256, 100, 70, 0, GgmlType::F16, 2}, AttnCase{3, 1, 64, 64, 0, 512, 0, GgmlType::F16, 2},
        // One-token decode over a view of >= 512 cells: llama.cpp's split-KV path on -fa on.
        AttnCase{6, 2, 64, 64, 600, 1, 0, GgmlType::F16, 2}, AttnCase{8, 2, 64, 48, 900, 1, 0, GgmlType::F16, 3},
        AttnCase{8, 2, 256, 256, 700, 1, 0, GgmlType::F16, 3}));  // heads merged on several threads

// llama.cpp's attention arithmetic for an F16 cache, written out one element at a time for one (token,
// head) over its visible cells [j0, j1) of a cache holding n_kv cells (the softmax's ggml_v_expf steps
// come from the scalar kernel table, whose own test pins them to the SIMD tables). one_row: -fa off with
// a single query row in the micro-batch, where llamafile declines (n < 2) and mul_mat uses
// ggml_vec_dot_f16 for the scores and for the output over the cells (V transposed).
std::vector<float> llama_cpp_attention(bool fa, bool one_row, const float* q, const std::vector<uint16_t>& k,
                                       const std::vector<uint16_t>& v, int64_t stride_k, int64_t stride_v, int64_t j0,
                                       int64_t j1, int64_t dk, int64_t dv, float scale) {
    auto h = [](uint16_t x) { return fp16_to_fp32(x); };
    auto r16 = [](float x) { return fp16_to_fp32(fp32_to_fp16(x)); };
    auto reduce16 = [](const float* l) {
        float t[8], u[4];
        for (int i = 0; i < 8; ++i) t[i] = l[i] + l[i + 8];
        for (int i = 0; i < 4; ++i) u[i] = t[i] + t[i + 4];
        return (u[0] + u[2]) + (u[1] + u[3]);
    };
    // ggml_vec_dot_f16 of x(i) * y(i), i < n: four 16-lane accumulators over 64-element steps, tail in double.
    auto vec_dot_f16 = [&](int64_t n, auto x, auto y) {
        float lanes[4][16] = {};
        const int64_t np = n / 64 * 64;
        for (int64_t i = 0; i < np; ++i)
            lanes[(i % 64) / 16][i % 16] = std::fma(x(i), y(i), lanes[(i % 64) / 16][i % 16]);
        for (int l = 0; l < 16; ++l) lanes[0][l] = (lanes[0][l] + lanes[2][l]) + (lanes[1][l] + lanes[3][l]);
        double d = reduce16(lanes[0]);
        for (int64_t i = np; i < n; ++i) d += double(x(i) * y(i));
        return float(d);
    };
    std::vector<float> out(static_cast<size_t>(dv));
    if (one_row) {
        const int64_t n_row = (j1 + 15) / 16 * 16, n64 = (j1 + 63) / 64 * 64;
        std::vector<float> row(static_cast<size_t>(n_row), -INFINITY), p(static_cast<size_t>(n_row));
        for (int64_t j = j0; j < j1; ++j)
            row[size_t(j)] = vec_dot_f16(
                                 dk, [&](int64_t i) { return h(k[size_t(j * stride_k + i)]); },
                                 [&](int64_t i) { return r16(q[i]); }) *
                             scale;
        const float mx = *std::max_element(row.begin(), row.end());
        const double sum = quant::kernels_for(quant::Isa::Scalar)->soft_max_ggml(n_row, p.data(), row.data(), mx);
        for (int64_t i = 0; i < dv; ++i)
            out[size_t(i)] = vec_dot_f16(
                n64, [&](int64_t j) { return j >= j0 && j < j1 ? h(v[size_t(j * stride_v + i)]) : 0.0f; },
                [&](int64_t j) { return j >= j0 && j < j1 ? r16(p[size_t(j)] * float(1.0 / sum)) : 0.0f; });
        return out;
    }
    if (fa) {  // ggml's one-row kernel: ggml_vec_dot_f16 scores, online softmax, F16 accumulator
        float m = -INFINITY, sum = 0;
        std::vector<float> acc(static_cast<size_t>(dv), 0.0f);
        for (int64_t j = j0; j < j1; ++j) {
            float lanes[4][16] = {};
            const int64_t np = dk / 64 * 64;
            for (int64_t i = 0; i < np; ++i)
                lanes[(i % 64) / 16][i % 16] =
                    std::fma(r16(q[i]), h(k[size_t(j * stride_k + i)]), lanes[(i % 64) / 16][i % 16]);
            for (int l = 0; l < 16; ++l) lanes[0][l] = (lanes[0][l] + lanes[2][l]) + (lanes[1][l] + lanes[3][l]);
            double d = reduce16(lanes[0]);
            for (int64_t i = np; i < dk; ++i) d += double(r16(q[i]) * h(k[size_t(j * stride_k + i)]));
            const float sc = float(d) * scale;
            float ms = 1, vs = 1;
            if (sc > m) {
                ms = std::exp(m - sc);
                m = sc;
                for (float& a : acc) a = r16(a * ms);
            } else {
                vs = std::exp(sc - m);
            }
            for (int64_t i = 0; i < dv; ++i)
                acc[size_t(i)] = r16(std::fma(h(v[size_t(j * stride_v + i)]), vs, acc[size_t(i)]));
            sum = std::fma(sum, ms, vs);
        }
        for (int64_t i = 0; i < dv; ++i) out[size_t(i)] = acc[size_t(i)] * (1.0f / sum);
        return out;
    }
    // mul_mat (tinyBLAS lanes), soft_max_ext over the whole padded row, mul_mat with rounded probabilities.
    const int64_t n_row = (j1 + 15) / 16 * 16;
    std::vector<float> row(static_cast<size_t>(n_row), -INFINITY), p(static_cast<size_t>(n_row));
    for (int64_t j = j0; j < j1; ++j) {
        float lanes[16] = {};
        for (int64_t i = 0; i < dk; ++i)
            lanes[i % 16] = std::fma(r16(q[i]), h(k[size_t(j * stride_k + i)]), lanes[i % 16]);
        row[size_t(j)] = reduce16(lanes) * scale;
    }
    const float mx = *std::max_element(row.begin(), row.end());
    const double sum = quant::kernels_for(quant::Isa::Scalar)->soft_max_ggml(n_row, p.data(), row.data(), mx);
    std::vector<float> lanes(size_t(16 * dv), 0.0f);
    for (int64_t j = 0; j < n_row; ++j) {
        const float pj = r16(p[size_t(j)] * float(1.0 / sum));
        for (int64_t i = 0; i < dv && j < j1; ++i)
            lanes[size_t((j % 16) * dv + i)] =
                std::fma(h(v[size_t(j * stride_v + i)]), pj, lanes[size_t((j % 16) * dv + i)]);
    }
    for (int64_t i = 0; i < dv; ++i) {
        float l[16];
        for (int a = 0; a < 16; ++a) l[a] = lanes[size_t(a * dv + i)];
        out[size_t(i)] = reduce16(l);
    }
    return out;
}

// The CPU backend, with the best and with the scalar kernel table, equals llama_cpp_attention bit for bit
// on -fa off (decode included) and the one-row flash-attention path: random shapes, GQA, windows,
// positions past 0.
TEST(CpuAttention, EqualsLlamaCppArithmetic) {
    std::mt19937 rng(7);
    for (int iter = 0; iter < 24; ++iter) {
        // Some -fa on calls with GQA groups of 10 heads: the F16 one-row kernel's items take them in
        // chunks of at most quant::kFlashRowHeads.
        const int64_t n_head_kv = 1 + int64_t(rng() % 3),
                      n_head = n_head_kv * (iter % 6 == 4 ? 10 : 1 + int64_t(rng() % 3));
        const int64_t dk = 16 * (1 + int64_t(rng() % 8)), dv = 16 * (1 + int64_t(rng() % 8));
        const int64_t n_tok = iter % 4 == 1 ? 1 : 1 + int64_t(rng() % 40), n_past = int64_t(rng() % 90);
        const int64_t n_swa = rng() % 3 == 0 ? 1 + int64_t(rng() % 50) : 0;
        const int64_t n_kv = n_past + n_tok, n_ctx = n_kv + 20;
        const bool fa = iter % 2 == 0;
        const std::vector<float> k = random_floats(size_t(n_kv * n_head_kv * dk), 100 + iter, 2.0f);
        const std::vector<float> v = random_floats(size_t(n_kv * n_head_kv * dv), 200 + iter);
        const std::vector<float> q = random_floats(size_t(n_tok * n_head * dk), 300 + iter, 2.0f);
        std::vector<uint16_t> k16(k.size()), v16(v.size());
        for (size_t i = 0; i < k.size(); ++i) k16[i] = fp32_to_fp16(k[i]);
        for (size_t i = 0; i < v.size(); ++i) v16[i] = fp32_to_fp16(v[i]);
        std::vector<int32_t> pos(static_cast<size_t>(n_tok));
        for (int64_t t = 0; t < n_tok; ++t) pos[size_t(t)] = int32_t(n_past + t);
        const float scale = 1.0f / std::sqrt(float(dk));
        const backend::AttnParams p{.kq_scale = scale, .n_kv = n_kv, .n_swa = n_swa};
        for (quant::Isa isa : {quant::Isa::Scalar, quant::best_kernels().isa}) {
            CpuOps cpu(2, quant::kernels_for(isa));
            const backend::KvHandle kv = cpu.new_kv_layer({n_ctx, n_head_kv, dk, dv, GgmlType::F16, GgmlType::F16, fa});
            cpu.kv_write(kv, cpu.input(k, {dk, n_head_kv, n_kv, 1}), cpu.input(v, {dv, n_head_kv, n_kv, 1}), 0);
            const Act out = cpu.attention(cpu.input(q, {dk, n_head, n_tok, 1}), kv, pos, p);
            const std::vector<float> y(cpu.data(out).begin(), cpu.data(out).end());
            for (int64_t t = 0; t < n_tok; ++t) {
                const int64_t qp = n_past + t, j1 = qp + 1, j0 = n_swa > 0 ? std::max<int64_t>(0, qp - n_swa + 1) : 0;
                for (int64_t hh = 0; hh < n_head; ++hh) {
                    const int64_t hk = hh / (n_head / n_head_kv);
                    const std::vector<float> want =
                        llama_cpp_attention(fa, !fa && n_tok == 1, q.data() + (t * n_head + hh) * dk,
                                            std::vector<uint16_t>(k16.begin() + hk * dk, k16.end()),
                                            std::vector<uint16_t>(v16.begin() + hk * dv, v16.end()), n_head_kv * dk,
                                            n_head_kv * dv, j0, j1, dk, dv, scale);
                    for (int64_t i = 0; i < dv; ++i)
                        ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t((t * n_head + hh) * dv + i)]),
                                  std::bit_cast<uint32_t>(want[size_t(i)]))
                            << quant::isa_name(isa) << (fa ? " -fa on" : " -fa off") << " iter " << iter << " t " << t
                            << " head " << hh << " dim " << i;
                }
            }
        }
    }
}

// attention_seqs (several sequences in one parallel region; the default loop of the reference backend)
// equals one attention call per sequence bit for bit: sequences of different lengths and pasts, each
// with its own KV layer, -fa on and off, F16, F32 and quantized caches, GQA, a batch with a
// sequence long enough for the tiled kernel (the CPU backend then goes sequence by sequence), and
// sequences past 256 cells in a cache of 1024 (F16 -fa on: llama.cpp's split-KV decode) among short ones.
TEST(CpuAttention, SeqsEqualPerSequenceCalls) {
    std::mt19937 rng(11);
    const GgmlType types[][2] = {{GgmlType::F16, GgmlType::F16},
                                 {GgmlType::Q8_0, GgmlType::Q8_0},
                                 {GgmlType::F32, GgmlType::F32},
                                 {GgmlType::F16, GgmlType::Q4_0}};
    for (int iter = 0; iter < 18; ++iter) {
        // Iterations 16 and 17: F16 -fa on with long pasts, without and with a window.
        const GgmlType tk = types[iter < 16 ? iter % 4 : 0][0], tv = types[iter < 16 ? iter % 4 : 0][1];
        const bool fa = iter >= 16 || iter / 4 % 2 == 0, long_seq = iter >= 8 && iter < 16;
        const bool long_past = iter >= 16 || iter % 4 == 0;
        const int64_t n_head_kv = 1 + int64_t(rng() % 3), n_head = n_head_kv * (1 + int64_t(rng() % 3));
        const int64_t dk = 32 * (1 + int64_t(rng() % 4)), dv = 32 * (1 + int64_t(rng() % 4));
        const bool window = iter < 16 ? iter % 3 == 0 : iter == 17;
        const int64_t n_swa = window ? 1 + int64_t(rng() % 40) : 0, n_seq = iter >= 16 ? 3 : 1 + int64_t(rng() % 5);
        const float scale = 1.0f / std::sqrt(float(dk));
        std::vector<int64_t> past(static_cast<size_t>(n_seq)), n_tok(static_cast<size_t>(n_seq));
        std::vector<int32_t> pos;
        for (int64_t i = 0; i < n_seq; ++i) {
            past[size_t(i)] = long_past && i % 2 == 1 ? 256 + int64_t(rng() % 600) : int64_t(rng() % 200);
            n_tok[size_t(i)] = long_seq && i == 0 ? 70 : rng() % 3 == 0 ? 1 + int64_t(rng() % 5) : 1;
            for (int64_t t = 0; t < n_tok[size_t(i)]; ++t) pos.push_back(int32_t(past[size_t(i)] + t));
        }
        const int64_t total = int64_t(pos.size());
        const std::vector<float> q = random_floats(size_t(total * n_head * dk), 400 + iter, 2.0f);
        CpuOps cpu(2);
        ReferenceOps ref;
        for (backend::Ops* ops : {static_cast<backend::Ops*>(&cpu), static_cast<backend::Ops*>(&ref)}) {
            std::vector<backend::AttnSeq> seqs;
            int64_t first = 0;
            for (int64_t i = 0; i < n_seq; ++i) {
                const int64_t n_kv = past[size_t(i)] + n_tok[size_t(i)];
                const int64_t n_ctx = long_past ? 1024 : n_kv + 8;
                const backend::KvHandle kv = ops->new_kv_layer({n_ctx, n_head_kv, dk, dv, tk, tv, fa});
                const std::vector<float> k =
                    random_floats(size_t(n_kv * n_head_kv * dk), 500 + 10 * iter + int(i), 2.0f);
                const std::vector<float> v = random_floats(size_t(n_kv * n_head_kv * dv), 600 + 10 * iter + int(i));
                ops->kv_write(kv, ops->input(k, {dk, n_head_kv, n_kv, 1}), ops->input(v, {dv, n_head_kv, n_kv, 1}), 0);
                seqs.push_back({.kv = kv,
                                .first = first,
                                .pos = std::span<const int32_t>(pos).subspan(size_t(first), size_t(n_tok[size_t(i)])),
                                .p = {.kq_scale = scale, .n_kv = n_kv, .n_swa = n_swa}});
                first += n_tok[size_t(i)];
            }
            std::vector<float> all(size_t(total * n_head * dv));
            ops->read(ops->attention_seqs(ops->input(q, {dk, n_head, total, 1}), seqs), all);
            for (const backend::AttnSeq& sq : seqs) {
                const int64_t n = int64_t(sq.pos.size());
                const std::vector<float> qs(q.begin() + sq.first * n_head * dk,
                                            q.begin() + (sq.first + n) * n_head * dk);
                std::vector<float> one(size_t(n * n_head * dv));
                ops->read(ops->attention(ops->input(qs, {dk, n_head, n, 1}), sq.kv, sq.pos, sq.p), one);
                ASSERT_EQ(std::memcmp(one.data(), all.data() + sq.first * n_head * dv, one.size() * 4), 0)
                    << (ops == &cpu ? "cpu" : "reference") << " iter " << iter << " sequence from " << sq.first
                    << " tokens " << n;
            }
        }
    }
}

// Typed KV caches (llama.cpp's -ctk / -ctv): K and V each in one of the cache types. The CPU backend
// and the reference dequantize the same bytes, so they agree closely; against an F32 cache the
// output is off by the types' rounding only.
struct KvTypeCase {
    GgmlType k, v;
};

std::vector<KvTypeCase> kv_type_cases() {
    const GgmlType all[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,  GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL};
    std::vector<KvTypeCase> cases;
    for (GgmlType t : all) cases.push_back({t, GgmlType::F16});
    for (GgmlType t : all)
        if (t != GgmlType::F16) cases.push_back({GgmlType::F16, t});
    cases.push_back({GgmlType::Q8_0, GgmlType::Q8_0});
    cases.push_back({GgmlType::Q4_0, GgmlType::Q4_0});
    cases.push_back({GgmlType::Q5_1, GgmlType::IQ4_NL});
    cases.push_back({GgmlType::BF16, GgmlType::F32});
    return cases;
}

// The loose bound vs an F32 cache for a type: 8 bits and up, or 4 / 5 bits.
double kv_type_bound(GgmlType t) {
    switch (t) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
        case GgmlType::Q8_0: return 1e-3;
        default: return 2e-2;
    }
}

class CpuKvTypes : public ::testing::TestWithParam<KvTypeCase> {};

TEST_P(CpuKvTypes, MatchesReferenceAndF32Cache) {
    const KvTypeCase c = GetParam();
    const int64_t n_head = 8, n_head_kv = 2, dk = 64, dv = 96, n_past = 75, n_tok = 60;
    const int64_t n_ctx = n_past + n_tok + 5, n_kv = n_past + n_tok;
    const std::vector<float> k = random_floats(size_t(n_kv * n_head_kv * dk), 31);
    const std::vector<float> v = random_floats(size_t(n_kv * n_head_kv * dv), 32);
    const std::vector<float> q = random_floats(size_t(n_tok * n_head * dk), 33);
    std::vector<int32_t> pos(static_cast<size_t>(n_tok));
    for (int64_t t = 0; t < n_tok; ++t) pos[size_t(t)] = int32_t(n_past + t);
    const backend::AttnParams p{.kq_scale = 1.0f / std::sqrt(float(dk)), .n_kv = n_kv, .n_swa = 0};

    // Two writes (the earlier tokens, then the batch), then attention of the batch.
    auto run = [&](backend::Ops& ops, GgmlType tk, GgmlType tv) {
        const backend::KvHandle kv = ops.new_kv_layer({n_ctx, n_head_kv, dk, dv, tk, tv});
        const int64_t kc = n_head_kv * dk, vc = n_head_kv * dv;
        ops.kv_write(kv, ops.input(std::span(k).first(size_t(n_past * kc)), {dk, n_head_kv, n_past, 1}),
                     ops.input(std::span(v).first(size_t(n_past * vc)), {dv, n_head_kv, n_past, 1}), 0);
        ops.kv_write(kv, ops.input(std::span(k).subspan(size_t(n_past * kc)), {dk, n_head_kv, n_tok, 1}),
                     ops.input(std::span(v).subspan(size_t(n_past * vc)), {dv, n_head_kv, n_tok, 1}), n_past);
        return ops.attention(ops.input(q, {dk, n_head, n_tok, 1}), kv, pos, p);
    };
    ReferenceOps ref;
    CpuOps cpu(3);
    const Act yr = run(ref, c.k, c.v);
    const Act yc = run(cpu, c.k, c.v);
    const Act y32 = run(ref, GgmlType::F32, GgmlType::F32);
    ASSERT_EQ(yr.ne, yc.ne);
    const std::string name = std::string(type_name(c.k)) + "/" + std::string(type_name(c.v));
    // The CPU backend rounds the query as llama.cpp does (F16 for F16 / F32 K with -fa on's one-row
    // kernel, the matmul activation type, e.g. Q8_0, for a block-type K) and accumulates an F16 V in F16.
    const bool block_k = c.k != GgmlType::F32 && c.k != GgmlType::F16 && c.k != GgmlType::BF16;
    EXPECT_LE(nmse(cpu.data(yc), ref.data(yr)), block_k ? 1e-4 : 1e-5) << name;
    const double bound = std::max(kv_type_bound(c.k), kv_type_bound(c.v));
    const double err = nmse(ref.data(yr), ref.data(y32));
    EXPECT_LE(err, bound) << name;
    if (c.k != GgmlType::F32 || c.v != GgmlType::F32) {
        EXPECT_GT(err, 0.0) << name;  // the cache really is stored in the type
    }
}

INSTANTIATE_TEST_SUITE_P(Types, CpuKvTypes, ::testing::ValuesIn(kv_type_cases()),
                         [](const ::testing::TestParamInfo<KvTypeCase>& info) {
                             return std::string(type_name(info.param.k)) + "_" + std::string(type_name(info.param.v));
                         });

TEST(CpuKvTypes, LayerErrors) {
    EXPECT_EQ(backend::kv_layer_error({16, 2, 64, 64, GgmlType::Q4_0, GgmlType::IQ4_NL}), "");
    const std::string k_err = backend::kv_layer_error({16, 2, 48, 64, GgmlType::Q8_0, GgmlType::F16});
    EXPECT_NE(k_err.find("Q8_0"), std::string::npos) << k_err;
    EXPECT_NE(k_err.find("48"), std::string::npos) << k_err;
    const std::string v_err = backend::kv_layer_error({16, 2, 64, 80, GgmlType::F16, GgmlType::Q5_1});
    EXPECT_NE(v_err.find("Q5_1"), std::string::npos) << v_err;
    EXPECT_NE(v_err.find("80"), std::string::npos) << v_err;
    EXPECT_NE(backend::kv_layer_error({16, 2, 64, 64, GgmlType::Q4_K, GgmlType::F16}), "");
    EXPECT_FALSE(backend::kv_cache_type_supported(GgmlType::Q8_1));
    EXPECT_TRUE(backend::kv_cache_type_supported(GgmlType::BF16));
}

}  // namespace
}  // namespace ferry::cpu_test

namespace ferry::cpu_test {
namespace {

// The pool the CPU backend runs on: every index covered exactly once, over many back-to-back jobs
// (workers that start late or sleep between jobs must not lose one), odd thread counts included.
TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
    for (int n_threads : {1, 2, 3, 5}) {
        ThreadPool pool(n_threads);
        EXPECT_EQ(pool.size(), n_threads);
        for (int job = 0; job < 300; ++job) {
            const int64_t n = 1 + job * 7 % 257, grain = 1 + job % 5;
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
                EXPECT_TRUE(0 <= b && b < e && e <= n);
                if (pool.size() > 1 && n > grain) {
                    EXPECT_LE(e - b, grain);
                }
                for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
            });
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "job " << job << " index " << i;
        }
    }
    EXPECT_GE(ThreadPool(0).size(), 1);
}

}  // namespace
}  // namespace ferry::cpu_test
