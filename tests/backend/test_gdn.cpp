// The Gated DeltaNet ops: the reference backend against a naive matrix formulation in double, and the CPU
// backend (ggml's per-token float order, threaded over heads and conv channels) against the reference. Micro-batches of
// 1 and 7 tokens and across the chunk boundaries (63, 64, 65, 130), several head layouts (V heads sharing K heads,
// equal counts), states carried across calls, and the state read back through state_get.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/reference_ops.h"
#include "cpu_test_util.h"

namespace ferry::cpu_test {
namespace {

using backend::Act;
using backend::Ops;
using backend::StateHandle;
using backend::StateLayerSpec;
using backend::cpu::CpuOps;
using backend::reference::ReferenceOps;

Tensor f32_tensor(const std::vector<float>& v, std::array<int64_t, kMaxDims> ne) {
    Tensor t;
    t.type = GgmlType::F32;
    t.n_dims = ne[1] == 1 ? 1 : 2;
    t.ne = ne;
    t.nb = contiguous_strides(GgmlType::F32, t.ne);
    t.data = v.data();
    return t;
}

struct GdnCase {
    int64_t n_head_k, n_head_v, dk, dv;
    std::vector<int64_t> calls;  // tokens per call; the state carries over between calls
    int n_threads;
};

// Random inputs of a whole sequence, cut into the calls.
struct GdnInputs {
    GdnCase c;
    int64_t n_tok = 0;
    std::vector<float> q, k, v, alpha, beta, ssm_a, dt_bias;

    explicit GdnInputs(const GdnCase& gc) : c(gc) {
        for (int64_t n : c.calls) n_tok += n;
        q = random_floats(size_t(n_tok * c.n_head_k * c.dk), 1);
        k = random_floats(size_t(n_tok * c.n_head_k * c.dk), 2);
        v = random_floats(size_t(n_tok * c.n_head_v * c.dv), 3);
        alpha = random_floats(size_t(n_tok * c.n_head_v), 4);
        beta = random_floats(size_t(n_tok * c.n_head_v), 5);
        ssm_a = random_floats(size_t(c.n_head_v), 6, 0.5f);
        for (float& a : ssm_a) a = -std::exp(a);  // -exp(A_log): every decay in (0, 1)
        dt_bias = random_floats(size_t(c.n_head_v), 7);
        // q and k L2-normalized per head, as the model hands them over.
        for (auto* x : {&q, &k}) {
            for (size_t r = 0; r < x->size() / size_t(c.dk); ++r) {
                double s = 0;
                for (int64_t i = 0; i < c.dk; ++i)
                    s += double((*x)[r * size_t(c.dk) + size_t(i)]) * (*x)[r * size_t(c.dk) + size_t(i)];
                for (int64_t i = 0; i < c.dk; ++i) (*x)[r * size_t(c.dk) + size_t(i)] /= float(std::sqrt(s));
            }
        }
    }

    StateLayerSpec spec() const { return {2 * c.n_head_k * c.dk + c.n_head_v * c.dv, 4, c.n_head_v, c.dk, c.dv}; }

    // Runs the calls through `ops`; returns every token's output, then the final state.
    std::pair<std::vector<float>, std::vector<float>> run(Ops& ops, bool token_by_token = false) const {
        const StateHandle s = ops.new_state_layer(spec());
        const Tensor ta = f32_tensor(ssm_a, {c.n_head_v, 1, 1, 1}), tdt = f32_tensor(dt_bias, {c.n_head_v, 1, 1, 1});
        std::vector<int64_t> calls = c.calls;
        if (token_by_token) calls.assign(size_t(n_tok), 1);
        std::vector<float> out;
        int64_t t0 = 0;
        for (int64_t n : calls) {
            ops.reset();
            auto part = [&](const std::vector<float>& x, int64_t row) {
                return std::span<const float>(x).subspan(size_t(t0 * row), size_t(n * row));
            };
            const Act aq = ops.input(part(q, c.n_head_k * c.dk), {c.dk, c.n_head_k, n, 1});
            const Act ak = ops.input(part(k, c.n_head_k * c.dk), {c.dk, c.n_head_k, n, 1});
            const Act av = ops.input(part(v, c.n_head_v * c.dv), {c.dv, c.n_head_v, n, 1});
            const Act aa = ops.input(part(alpha, c.n_head_v), {c.n_head_v, n, 1, 1});
            const Act ab = ops.input(part(beta, c.n_head_v), {c.n_head_v, n, 1, 1});
            const Act o = ops.gated_delta_net(aq, ak, av, aa, ab, {.ssm_a = &ta, .dt_bias = &tdt, .state = s});
            EXPECT_EQ(o.ne, (std::array<int64_t, kMaxDims>{c.dv, c.n_head_v, n, 1}));
            std::vector<float> y(size_t(o.n_elements()));
            ops.read(o, y);
            out.insert(out.end(), y.begin(), y.end());
            t0 += n;
        }
        std::vector<float> st(size_t(spec().n_floats()));
        ops.state_get(s, st);
        return {out, std::vector<float>(st.begin() + spec().conv_floats(), st.end())};
    }

    // S_t = a_t (I - b_t k k^T) S_{t-1} + b_t k v^T, o_t = S_t^T q / sqrt(dk), as matrices in double.
    std::pair<std::vector<double>, std::vector<double>> naive() const {
        const int64_t dk = c.dk, dv = c.dv, hv = c.n_head_v, hk = c.n_head_k;
        std::vector<double> S(size_t(hv * dk * dv), 0.0), out;
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t h = 0; h < hv; ++h) {
                const float* qh = q.data() + (t * hk + h % hk) * dk;
                const float* kh = k.data() + (t * hk + h % hk) * dk;
                const float* vh = v.data() + (t * hv + h) * dv;
                const double x = double(alpha[size_t(t * hv + h)]) + dt_bias[size_t(h)];
                const double a = std::exp(double(ssm_a[size_t(h)]) * (x > 20 ? x : std::log1p(std::exp(x))));
                const double b = 1.0 / (1.0 + std::exp(-double(beta[size_t(t * hv + h)])));
                double* Sh = S.data() + h * dk * dv;
                std::vector<double> next(size_t(dk * dv));
                for (int64_t i = 0; i < dk; ++i) {
                    for (int64_t j = 0; j < dv; ++j) {
                        double m = 0;  // ((I - b k k^T) S)[i][j]
                        for (int64_t l = 0; l < dk; ++l)
                            m += ((i == l ? 1.0 : 0.0) - b * kh[i] * kh[l]) * Sh[l * dv + j];
                        next[size_t(i * dv + j)] = a * m + b * kh[i] * vh[j];
                    }
                }
                std::copy(next.begin(), next.end(), Sh);
                for (int64_t j = 0; j < dv; ++j) {
                    double o = 0;
                    for (int64_t i = 0; i < dk; ++i) o += Sh[i * dv + j] * qh[i] / std::sqrt(double(dk));
                    out.push_back(o);
                }
            }
        }
        return {out, S};
    }
};

double nmse_d(std::span<const float> got, const std::vector<double>& want) {
    std::vector<float> w(want.begin(), want.end());
    return nmse(got, w);
}

class GdnReference : public ::testing::TestWithParam<GdnCase> {};

TEST_P(GdnReference, MatchesNaiveMatrixRecurrence) {
    const GdnInputs in(GetParam());
    ReferenceOps ref;
    const auto [out, state] = in.run(ref);
    const auto [want_out, want_state] = in.naive();
    EXPECT_LE(nmse_d(out, want_out), 1e-11);
    EXPECT_LE(nmse_d(state, want_state), 1e-11);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GdnReference,
                         ::testing::Values(GdnCase{2, 4, 16, 24, {1}, 1}, GdnCase{2, 4, 16, 16, {7, 1, 3}, 1},
                                           GdnCase{3, 3, 8, 8, {20}, 1}));

class GdnCpu : public ::testing::TestWithParam<GdnCase> {};

TEST_P(GdnCpu, MatchesReferenceRecurrence) {
    const GdnInputs in(GetParam());
    ReferenceOps ref;
    CpuOps cpu(GetParam().n_threads);
    const auto [want_out, want_state] = in.run(ref);
    const auto [out, state] = in.run(cpu);
    EXPECT_LE(nmse(out, want_out), 1e-10);
    EXPECT_LE(nmse(state, want_state), 1e-10);
    // The CPU backend's own token-by-token run is the same per-token arithmetic: bit for bit, whatever
    // the micro-batch and thread count (as llama.cpp's fused op).
    CpuOps cpu1(1);
    const auto [tbt_out, tbt_state] = in.run(cpu1, /*token_by_token=*/true);
    EXPECT_EQ(tbt_out, out);
    EXPECT_EQ(tbt_state, state);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GdnCpu,
                         ::testing::Values(GdnCase{2, 4, 16, 24, {1}, 1}, GdnCase{2, 4, 32, 32, {7}, 3},
                                           GdnCase{2, 4, 32, 32, {63}, 2}, GdnCase{1, 4, 64, 64, {64}, 3},
                                           GdnCase{2, 4, 32, 48, {65}, 3}, GdnCase{3, 3, 16, 16, {130}, 2},
                                           GdnCase{2, 4, 32, 32, {65, 1, 7, 64}, 3}, GdnCase{2, 2, 128, 128, {70}, 3}));

// Causal conv over the whole sequence in double, from a zero state.
std::vector<double> naive_conv(const std::vector<float>& x, const std::vector<float>& w, int64_t ch, int64_t kw) {
    const int64_t n_tok = int64_t(x.size()) / ch;
    std::vector<double> y;
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t c = 0; c < ch; ++c) {
            double s = 0;
            for (int64_t j = 0; j < kw; ++j) {
                const int64_t src = t - (kw - 1) + j;
                if (src >= 0) s += double(w[size_t(c * kw + j)]) * x[size_t(src * ch + c)];
            }
            y.push_back(s / (1.0 + std::exp(-s)));
        }
    }
    return y;
}

TEST(GdnOps, ConvWithRollingStateBothBackends) {
    const int64_t ch = 300, kw = 4;
    const std::vector<int64_t> calls = {1, 2, 7, 64, 1};
    int64_t n_tok = 0;
    for (int64_t n : calls) n_tok += n;
    const std::vector<float> x = random_floats(size_t(n_tok * ch), 11), w = random_floats(size_t(ch * kw), 12);
    const Tensor tw = f32_tensor(w, {kw, ch, 1, 1});
    const std::vector<double> want = naive_conv(x, w, ch, kw);
    ReferenceOps ref;
    CpuOps cpu(3);
    for (Ops* ops : {static_cast<Ops*>(&ref), static_cast<Ops*>(&cpu)}) {
        const StateHandle s = ops->new_state_layer({ch, kw, 1, 1, 1});
        std::vector<float> got;
        int64_t t0 = 0;
        for (int64_t n : calls) {
            ops->reset();
            const Act y = ops->ssm_conv(
                ops->input(std::span<const float>(x).subspan(size_t(t0 * ch), size_t(n * ch)), {ch, n, 1, 1}), tw, s);
            std::vector<float> part(size_t(y.n_elements()));
            ops->read(y, part);
            got.insert(got.end(), part.begin(), part.end());
            t0 += n;
        }
        EXPECT_LE(nmse_d(got, want), 1e-12);
        // The state holds the last kw - 1 inputs, oldest first.
        std::vector<float> st(size_t((kw - 1) * ch + 1));
        ops->state_get(s, st);
        for (int64_t r = 0; r < kw - 1; ++r)
            for (int64_t c = 0; c < ch; ++c)
                EXPECT_EQ(st[size_t(r * ch + c)], x[size_t((n_tok - (kw - 1) + r) * ch + c)]);
        // state_set round trip.
        std::vector<float> zero(st.size(), 0.0f), back(st.size());
        ops->state_set(s, zero);
        ops->state_get(s, back);
        EXPECT_EQ(back, zero);
    }
}

TEST(GdnOps, L2NormColsSigmoidMatchReference) {
    const std::vector<float> x = random_floats(size_t(96 * 37), 13);
    ReferenceOps ref;
    CpuOps cpu(3);
    const Act xr = ref.input(x, {96, 37, 1, 1}), xc = cpu.input(x, {96, 37, 1, 1});
    EXPECT_LE(nmse(cpu.data(cpu.l2_norm(xc, 1e-6f)), ref.data(ref.l2_norm(xr, 1e-6f))), 1e-12);
    EXPECT_LE(nmse(cpu.data(cpu.sigmoid(xc)), ref.data(ref.sigmoid(xr))), 1e-12);
    const Act cr = ref.cols(backend::reshape(xr, {32, 3, 37, 1}), 5, 20);
    const Act cc = cpu.cols(backend::reshape(xc, {32, 3, 37, 1}), 5, 20);
    EXPECT_EQ(cr.ne, (std::array<int64_t, kMaxDims>{20, 3, 37, 1}));
    EXPECT_EQ(nmse(cpu.data(cc), ref.data(cr)), 0.0);
    EXPECT_EQ(ref.data(cr)[0], x[5]);
    EXPECT_EQ(ref.data(cr)[20], x[32 + 5]);
    // l2_norm: unit rows; an all-zero row stays zero (eps floor).
    const std::vector<float> z(16, 0.0f);
    for (float v : ref.data(ref.l2_norm(ref.input(z, {16, 1, 1, 1}), 1e-6f))) EXPECT_EQ(v, 0.0f);
    double s = 0;
    for (int i = 0; i < 96; ++i)
        s += double(ref.data(ref.l2_norm(xr, 1e-6f))[size_t(i)]) * ref.data(ref.l2_norm(xr, 1e-6f))[size_t(i)];
    EXPECT_NEAR(s, 1.0, 1e-6);
}

}  // namespace
}  // namespace ferry::cpu_test
