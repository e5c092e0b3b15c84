// The reference backend's ops against naive, independent computations in double on seeded random
// data, with awkward shapes: batch 1 and 7, rows that are not a multiple of 32 where the type allows,
// query heads != KV heads, K and V head sizes that differ, windows that cut through the batch.
// Compared by NMSE (sum of squared errors / sum of squares), ggml test-backend-ops style.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "backend/reference/reference_ops.h"
#include "core/fp16.h"
#include "quant/formats.h"

namespace ferry::backend::reference {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

double nmse(std::span<const float> got, const std::vector<double>& want) {
    EXPECT_EQ(got.size(), want.size());
    double err = 0, ref = 0;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
        err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        ref += want[i] * want[i];
    }
    return ref == 0 ? err : err / ref;
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

// A weight {n_in, n_out} of `type`, made by the reference quantizer from random floats.
struct Weight {
    std::vector<uint8_t> bytes;
    Tensor t;
};

Weight make_weight(GgmlType type, int64_t n_in, int64_t n_out, uint32_t seed) {
    const quant::FormatTraits* f = quant::find_format(type);
    const int64_t row = n_in / f->block_size * f->type_size;
    Weight w;
    w.bytes.resize(size_t(row * n_out));
    const std::vector<float> src = random_floats(size_t(n_in * n_out), seed);
    for (int64_t o = 0; o < n_out; ++o) f->quantize_row(src.data() + o * n_in, w.bytes.data() + o * row, n_in);
    w.t.type = type;
    w.t.n_dims = 2;
    w.t.ne = {n_in, n_out, 1, 1};
    w.t.nb = contiguous_strides(type, w.t.ne);
    w.t.data = w.bytes.data();
    return w;
}

std::vector<float> dequant_row(GgmlType type, const void* row, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    quant::find_format(type)->dequantize_row(row, out.data(), n);
    return out;
}

// What the activation becomes before the dot: quantized to the paired type and back (F16 / BF16
// weights: rounded to F16 / BF16).
std::vector<float> act_as_seen(GgmlType weight_type, const float* x, int64_t n) {
    std::vector<float> out(x, x + n);
    if (weight_type == GgmlType::F16)
        for (float& v : out) v = fp16_to_fp32(fp32_to_fp16(v));
    if (weight_type == GgmlType::BF16)
        for (float& v : out) v = bf16_to_fp32(fp32_to_bf16(v));
    const quant::FormatTraits* af = quant::find_format(quant::find_format(weight_type)->vec_dot_type);
    if (af->block_size == 1) return out;
    std::vector<uint8_t> q(size_t(n / af->block_size * af->type_size));
    af->quantize_row(out.data(), q.data(), n);
    return dequant_row(af->type, q.data(), n);
}

class MatmulAllTypes : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulAllTypes, EqualsDotOfDequantizedOperands) {
    const GgmlType type = GetParam();
    const quant::FormatTraits* wf = quant::find_format(type);
    const int64_t act_block = quant::find_format(wf->vec_dot_type)->block_size;
    const int64_t block = std::max(wf->block_size, act_block);
    // Rows not a multiple of 32 where the type allows (F32/F16/BF16), otherwise 3 blocks.
    const int64_t n_in = block == 1 ? 83 : 3 * block;
    for (int64_t n_tok : {1, 7}) {
        const int64_t n_out = 13;
        const Weight w = make_weight(type, n_in, n_out, 7 + uint32_t(type));
        const std::vector<float> x = random_floats(size_t(n_in * n_tok), 99);
        ReferenceOps ops;
        const Act y = ops.matmul(w.t, ops.input(x, {n_in, n_tok, 1, 1}));
        ASSERT_EQ(y.ne, (std::array<int64_t, 4>{n_out, n_tok, 1, 1}));
        const std::span<const float> got = ops.data(y);
        for (int64_t t = 0; t < n_tok; ++t) {
            const std::vector<float> a = act_as_seen(type, x.data() + t * n_in, n_in);
            for (int64_t o = 0; o < n_out; ++o) {
                const std::vector<float> wr = dequant_row(type, w.bytes.data() + o * w.t.nb[1], n_in);
                double want = 0, mag = 0;
                for (int64_t i = 0; i < n_in; ++i) {
                    want += double(wr[size_t(i)]) * double(a[size_t(i)]);
                    mag += std::fabs(double(wr[size_t(i)]) * double(a[size_t(i)]));
                }
                // Q4_1 / Q5_1 fold their minimum in through Q8_1's fp16 sum: a few 1e-4 of the magnitude.
                const double tol = (type == GgmlType::Q4_1 || type == GgmlType::Q5_1 ? 2e-3 : 1e-5) * mag + 1e-6;
                EXPECT_NEAR(got[size_t(t * n_out + o)], want, tol) << type_name(type) << " t=" << t << " o=" << o;
            }
        }
    }
}

std::vector<GgmlType> weight_types() {
    std::vector<GgmlType> v;
    for (const quant::FormatTraits& f : quant::all_formats())
        if (f.vec_dot != nullptr) v.push_back(f.type);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Reference, MatmulAllTypes, ::testing::ValuesIn(weight_types()),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(ReferenceOps, GetRowsDequantizesEveryType) {
    for (GgmlType type : weight_types()) {
        const quant::FormatTraits* f = quant::find_format(type);
        const int64_t n = f->block_size == 1 ? 37 : 2 * f->block_size;
        const Weight table = make_weight(type, n, 9, 3);
        const std::vector<int32_t> ids = {8, 0, 3, 3};
        ReferenceOps ops;
        const Act y = ops.get_rows(table.t, ids);
        ASSERT_EQ(y.ne, (std::array<int64_t, 4>{n, 4, 1, 1}));
        std::vector<double> want;
        for (int32_t id : ids) {
            const std::vector<float> r = dequant_row(type, table.bytes.data() + id * table.t.nb[1], n);
            want.insert(want.end(), r.begin(), r.end());
        }
        EXPECT_EQ(nmse(ops.data(y), want), 0.0) << type_name(type);
    }
}

TEST(ReferenceOps, RmsNormWithAndWithoutWeight) {
    const int64_t n = 67, rows = 7;
    const std::vector<float> x = random_floats(size_t(n * rows), 1, 3.0f);
    const std::vector<float> w = random_floats(size_t(n), 2);
    const Tensor wt = f32_tensor(w);
    for (bool with_weight : {false, true}) {
        ReferenceOps ops;
        const Act y = ops.rms_norm(ops.input(x, {n, rows, 1, 1}), with_weight ? &wt : nullptr, 1e-5f);
        std::vector<double> want;
        for (int64_t r = 0; r < rows; ++r) {
            double ss = 0;
            for (int64_t i = 0; i < n; ++i) ss += double(x[size_t(r * n + i)]) * x[size_t(r * n + i)];
            const double s = 1.0 / std::sqrt(ss / double(n) + 1e-5);
            for (int64_t i = 0; i < n; ++i)
                want.push_back(x[size_t(r * n + i)] * s * (with_weight ? w[size_t(i)] : 1.0));
        }
        EXPECT_LT(nmse(ops.data(y), want), 1e-12);
    }
}

struct RopeCase {
    RopeMode mode;
    int64_t head_dim, n_rot;
    float base, scale;
    bool factors;
};

class Rope : public ::testing::TestWithParam<RopeCase> {};

TEST_P(Rope, MatchesRotationInDouble) {
    const RopeCase c = GetParam();
    const int64_t n_head = 3, n_tok = 7;
    const std::vector<int32_t> pos = {0, 1, 2, 17, 40, 41, 99};
    const std::vector<float> x = random_floats(size_t(c.head_dim * n_head * n_tok), 5);
    std::vector<float> ff(static_cast<size_t>(c.n_rot / 2));
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + float(i % 3);
    const Tensor fft = f32_tensor(ff);
    const RopeParams p{.mode = c.mode,
                       .n_rot = c.n_rot,
                       .freq_base = c.base,
                       .freq_scale = c.scale,
                       .freq_factors = c.factors ? &fft : nullptr};
    ReferenceOps ops;
    const Act y = ops.rope(ops.input(x, {c.head_dim, n_head, n_tok, 1}), pos, p);

    std::vector<double> want(x.begin(), x.end());
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t off = (t * n_head + h) * c.head_dim;
            for (int64_t i = 0; i < c.n_rot / 2; ++i) {
                double theta =
                    pos[size_t(t)] * double(c.scale) * std::pow(double(c.base), -2.0 * double(i) / double(c.n_rot));
                if (c.factors) theta /= ff[size_t(i)];
                const int64_t a = off + (c.mode == RopeMode::Normal ? 2 * i : i);
                const int64_t b = off + (c.mode == RopeMode::Normal ? 2 * i + 1 : i + c.n_rot / 2);
                want[size_t(a)] = x[size_t(a)] * std::cos(theta) - x[size_t(b)] * std::sin(theta);
                want[size_t(b)] = x[size_t(a)] * std::sin(theta) + x[size_t(b)] * std::cos(theta);
            }
        }
    }
    // theta is a float running product, as in ggml: ~1e-5 relative at position 99.
    EXPECT_LT(nmse(ops.data(y), want), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Reference, Rope,
                         ::testing::Values(RopeCase{RopeMode::Normal, 64, 64, 10000.0f, 1.0f, false},
                                           RopeCase{RopeMode::Neox, 64, 64, 1e6f, 1.0f, false},
                                           RopeCase{RopeMode::Neox, 64, 16, 1e7f, 1.0f, false},
                                           RopeCase{RopeMode::Normal, 40, 24, 10000.0f, 0.25f, true},
                                           RopeCase{RopeMode::Neox, 10, 6, 500.0f, 0.5f, true}));

double gelu_d(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
double silu_d(double x) { return x / (1 + std::exp(-x)); }

TEST(ReferenceOps, ElementWiseAndActivations) {
    const std::array<int64_t, 4> ne{19, 7, 1, 1};
    const std::vector<float> a = random_floats(19 * 7, 11, 4.0f), b = random_floats(19 * 7, 12, 2.0f);
    ReferenceOps ops;
    const Act A = ops.input(a, ne), B = ops.input(b, ne);
    auto check = [&](const Act& y, auto f) {
        std::vector<double> want;
        for (size_t i = 0; i < a.size(); ++i) want.push_back(f(double(a[i]), double(b[i])));
        return nmse(ops.data(y), want);
    };
    EXPECT_LT(check(ops.add(A, B), [](double x, double y) { return x + y; }), 1e-14);
    EXPECT_LT(check(ops.mul(A, B), [](double x, double y) { return x * y; }), 1e-14);
    EXPECT_LT(check(ops.scale(A, 0.37f), [](double x, double) { return x * double(0.37f); }), 1e-14);
    EXPECT_LT(check(ops.silu(A), [](double x, double) { return silu_d(x); }), 1e-12);
    EXPECT_LT(check(ops.gelu(A), [](double x, double) { return gelu_d(x); }), 1e-12);
    EXPECT_LT(check(ops.swiglu(A, B), [](double x, double y) { return silu_d(x) * y; }), 1e-12);
    EXPECT_LT(check(ops.geglu(A, B), [](double x, double y) { return gelu_d(x) * y; }), 1e-12);
}

TEST(ReferenceOps, SoftmaxRowsSliceReshapeTopK) {
    const std::vector<float> x = {1, 5, 3, 5, -2, 0, 0, 7, 1, 2, 3, 4};
    ReferenceOps ops;
    const Act X = ops.input(x, {4, 3, 1, 1});
    const Act s = ops.softmax(X, 0.5f);
    std::vector<double> want;
    for (int r = 0; r < 3; ++r) {
        double sum = 0;
        for (int i = 0; i < 4; ++i) sum += std::exp(0.5 * x[size_t(r * 4 + i)]);
        for (int i = 0; i < 4; ++i) want.push_back(std::exp(0.5 * x[size_t(r * 4 + i)]) / sum);
    }
    EXPECT_LT(nmse(ops.data(s), want), 1e-13);

    const Act mid = ops.rows(X, 1, 2);
    EXPECT_EQ(std::vector<float>(ops.data(mid).begin(), ops.data(mid).end()),
              std::vector<float>(x.begin() + 4, x.end()));
    const Act flat = reshape(X, {12, 1, 1, 1});
    EXPECT_EQ(flat.id, X.id);

    // Ties keep the lower index first.
    EXPECT_EQ(ops.top_k(X, 2), (std::vector<int32_t>{1, 3, 3, 1, 3, 2}));
}

// Attention against a naive double implementation: GQA, causal over a cache that already holds
// earlier tokens, optional sliding window, K and V head sizes that differ.
struct AttnCase {
    int64_t n_head, n_head_kv, dk, dv, n_swa;
    GgmlType cache;
};

class Attention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(Attention, MatchesNaiveSoftmaxAttention) {
    const AttnCase c = GetParam();
    const int64_t n_ctx = 32, n_past = 5, n_tok = 7;
    ReferenceOps ops;
    const KvHandle kv = ops.new_kv_layer({n_ctx, c.n_head_kv, c.dk, c.dv, c.cache, c.cache});
    auto stored = [&](float v) { return c.cache == GgmlType::F16 ? fp16_to_fp32(fp32_to_fp16(v)) : v; };

    // Two writes: n_past earlier tokens, then the batch.
    const int64_t n_kv = n_past + n_tok;
    const std::vector<float> k = random_floats(size_t(n_kv * c.n_head_kv * c.dk), 21);
    const std::vector<float> v = random_floats(size_t(n_kv * c.n_head_kv * c.dv), 22);
    const int64_t kc = c.n_head_kv * c.dk, vc = c.n_head_kv * c.dv;
    ops.kv_write(kv, ops.input(std::span(k).first(size_t(n_past * kc)), {c.dk, c.n_head_kv, n_past, 1}),
                 ops.input(std::span(v).first(size_t(n_past * vc)), {c.dv, c.n_head_kv, n_past, 1}), 0);
    ops.kv_write(kv, ops.input(std::span(k).subspan(size_t(n_past * kc)), {c.dk, c.n_head_kv, n_tok, 1}),
                 ops.input(std::span(v).subspan(size_t(n_past * vc)), {c.dv, c.n_head_kv, n_tok, 1}), n_past);

    const std::vector<float> q = random_floats(size_t(n_tok * c.n_head * c.dk), 23);
    std::vector<int32_t> pos(static_cast<size_t>(n_tok));
    std::iota(pos.begin(), pos.end(), int32_t(n_past));
    const float scale = 1.0f / std::sqrt(float(c.dk));
    const Act y = ops.attention(ops.input(q, {c.dk, c.n_head, n_tok, 1}), kv, pos,
                                {.kq_scale = scale, .n_kv = n_kv, .n_swa = c.n_swa});
    ASSERT_EQ(y.ne, (std::array<int64_t, 4>{c.dv, c.n_head, n_tok, 1}));

    std::vector<double> want;
    for (int64_t t = 0; t < n_tok; ++t) {
        const int64_t p = pos[size_t(t)];
        for (int64_t h = 0; h < c.n_head; ++h) {
            const int64_t hk = h * c.n_head_kv / c.n_head;
            std::vector<double> w(static_cast<size_t>(n_kv), 0.0);
            double sum = 0;
            for (int64_t j = 0; j <= p; ++j) {
                if (c.n_swa > 0 && p - j >= c.n_swa) continue;
                double d = 0;
                for (int64_t i = 0; i < c.dk; ++i)
                    d += double(q[size_t((t * c.n_head + h) * c.dk + i)]) * stored(k[size_t(j * kc + hk * c.dk + i)]);
                w[size_t(j)] = std::exp(d * scale);
                sum += w[size_t(j)];
            }
            for (int64_t i = 0; i < c.dv; ++i) {
                double o = 0;
                for (int64_t j = 0; j < n_kv; ++j) o += w[size_t(j)] / sum * stored(v[size_t(j * vc + hk * c.dv + i)]);
                want.push_back(o);
            }
        }
    }
    EXPECT_LT(nmse(ops.data(y), want), 1e-11);
}

INSTANTIATE_TEST_SUITE_P(Reference, Attention,
                         ::testing::Values(AttnCase{6, 2, 40, 24, 0, GgmlType::F32},
                                           AttnCase{4, 4, 16, 16, 0, GgmlType::F16},
                                           AttnCase{4, 1, 32, 32, 3, GgmlType::F32},
                                           AttnCase{8, 2, 64, 64, 1, GgmlType::F16}));

}  // namespace
}  // namespace ferry::backend::reference
