// The element-wise kernel tables (backend/cpu/elementwise.h) against the scalar one, bit for bit (two NaNs
// count as equal whatever their payloads): SiLU / SwiGLU with every split between ggml's vector formula and
// libm's, add / mul / scale / scale_mul, RoPE in both layouts, the conv + SiLU of ssm_conv, on row lengths
// that are and are not multiples of the vector widths, with NaN, infinities, signed zeros, denormals and
// values around the exp cut-offs (|n| = 192, expf's overflow and underflow) mixed in; and the fused Gated
// DeltaNet recurrence against gdn_loop through the same instruction set's KernelTable.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/elementwise.h"
#include "cpu_test_util.h"

namespace ferry::cpu_test {
namespace {

using backend::cpu::EwKernels;
using backend::cpu::GdnRun;
using quant::Isa;

class Elementwise : public ::testing::TestWithParam<Isa> {
protected:
    void SetUp() override {
        if (quant::kernels_for(GetParam()) == nullptr)
            GTEST_SKIP() << quant::isa_name(GetParam()) << " not supported on this CPU";
        vec_ = &backend::cpu::ew_kernels(GetParam());
        ASSERT_EQ(vec_->isa, GetParam());
    }
    const EwKernels* vec_ = nullptr;
    const EwKernels& ref_ = backend::cpu::ew_kernels(Isa::Scalar);
};

constexpr int64_t kLengths[] = {1, 7, 8, 15, 16, 17, 33, 576, 1536 + 3};

// Random values of several magnitudes, then edge values at random places.
std::vector<float> edgy(int64_t n, uint32_t seed, float scale = 8.0f) {
    std::vector<float> x = random_floats(size_t(n), seed, scale);
    static const float kEdges[] = {0.0f,
                                   -0.0f,
                                   std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::quiet_NaN(),
                                   -std::numeric_limits<float>::quiet_NaN(),
                                   1e-40f,
                                   -1e-40f,
                                   FLT_MIN,
                                   FLT_MAX,
                                   -FLT_MAX,
                                   88.72f,
                                   -88.73f,
                                   -103.9f,
                                   -104.0f,
                                   133.0f,
                                   -133.1f,
                                   133.2f,
                                   -133.2f,
                                   -87.3f,
                                   -95.0f,
                                   1e-8f,
                                   -1e-8f};
    std::mt19937 rng(seed * 7 + 3);
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t r = rng() % 8;
        if (r == 0) x[size_t(i)] = kEdges[rng() % std::size(kEdges)];
        if (r == 1) x[size_t(i)] *= 30.0f;
    }
    return x;
}

bool same(float a, float b) {
    return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_TRUE(same(got[i], want[i])) << what << " at " << i << ": " << got[i] << " vs " << want[i];
}

TEST_P(Elementwise, SiluSwigluAreBitExact) {
    uint32_t seed = 1;
    for (int64_t n : kLengths) {
        for (int64_t n_vec : {int64_t(0), n - n % 16, n, n / 2, int64_t(5), n + 16}) {
            const std::vector<float> x = edgy(n, ++seed), u = edgy(n, ++seed, 2.0f);
            const std::string what = "n " + std::to_string(n) + " n_vec " + std::to_string(n_vec);
            std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
            vec_->silu(n, x.data(), a.data(), n_vec);
            ref_.silu(n, x.data(), b.data(), n_vec);
            expect_same(a, b, "silu " + what);
            vec_->swiglu(n, x.data(), u.data(), a.data(), n_vec);
            ref_.swiglu(n, x.data(), u.data(), b.data(), n_vec);
            expect_same(a, b, "swiglu " + what);
            a = x;  // in place
            vec_->silu(n, a.data(), a.data(), n_vec);
            ref_.silu(n, x.data(), b.data(), n_vec);
            expect_same(a, b, "silu in place " + what);
        }
    }
}

TEST_P(Elementwise, ArithmeticIsBitExact) {
    uint32_t seed = 100;
    for (int64_t n : kLengths) {
        const std::vector<float> x = edgy(n, ++seed), z = edgy(n, ++seed), w = edgy(n, ++seed, 1.0f);
        std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        const std::string what = "n " + std::to_string(n);
        vec_->add(n, x.data(), z.data(), a.data());
        ref_.add(n, x.data(), z.data(), b.data());
        expect_same(a, b, "add " + what);
        vec_->mul(n, x.data(), z.data(), a.data());
        ref_.mul(n, x.data(), z.data(), b.data());
        expect_same(a, b, "mul " + what);
        for (float s : {0.37f, -3.0f, 1e-30f}) {
            vec_->scale(n, x.data(), s, a.data());
            ref_.scale(n, x.data(), s, b.data());
            expect_same(a, b, "scale " + what);
            vec_->scale_mul(n, x.data(), s, w.data(), a.data());
            ref_.scale_mul(n, x.data(), s, w.data(), b.data());
            expect_same(a, b, "scale_mul " + what);
        }
    }
}

TEST_P(Elementwise, RopeIsBitExact) {
    uint32_t seed = 200;
    for (int64_t n_pairs : {1, 3, 4, 7, 8, 9, 15, 16, 17, 32, 64, 67}) {
        for (bool neox : {false, true}) {
            const std::vector<float> x = edgy(2 * n_pairs, ++seed);
            std::vector<float> c(static_cast<size_t>(n_pairs)), s(static_cast<size_t>(n_pairs));
            const std::vector<float> th = random_floats(size_t(n_pairs), ++seed, 100.0f);
            for (size_t i = 0; i < th.size(); ++i) {
                c[i] = std::cos(th[i]);
                s[i] = std::sin(th[i]);
            }
            std::vector<float> a(size_t(2 * n_pairs)), b(size_t(2 * n_pairs));
            vec_->rope(n_pairs, neox, c.data(), s.data(), x.data(), a.data());
            ref_.rope(n_pairs, neox, c.data(), s.data(), x.data(), b.data());
            expect_same(a, b, "rope pairs " + std::to_string(n_pairs) + (neox ? " neox" : " normal"));
        }
    }
}

TEST_P(Elementwise, ConvSiluIsBitExact) {
    uint32_t seed = 300;
    for (int64_t n : {1, 15, 16, 17, 40, 256, 300}) {
        for (int64_t kw : {1, 4}) {
            const int64_t stride = n + 5;
            const std::vector<float> rows = edgy(kw * n, ++seed, 2.0f), w = random_floats(size_t(kw * stride), ++seed);
            std::vector<const float*> u;
            for (int64_t j = 0; j < kw; ++j) u.push_back(rows.data() + j * n);
            for (int64_t n_vec : {int64_t(0), n - n % 16, n - 3, n}) {
                std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
                vec_->conv_silu(n, kw, u.data(), w.data(), stride, a.data(), n_vec);
                ref_.conv_silu(n, kw, u.data(), w.data(), stride, b.data(), n_vec);
                expect_same(
                    a, b,
                    "conv n " + std::to_string(n) + " kw " + std::to_string(kw) + " n_vec " + std::to_string(n_vec));
            }
        }
    }
}

TEST_P(Elementwise, GatedDeltaNetIsBitExact) {
    ASSERT_NE(vec_->gdn, nullptr);
    const quant::KernelTable& kt = *quant::kernels_for(GetParam());
    uint32_t seed = 400;
    struct Shape {
        int64_t dk, dv, n;
    };
    for (const Shape sh :
         {Shape{16, 8, 3}, Shape{64, 16, 2}, Shape{128, 128, 5}, Shape{130, 24, 2}, Shape{32, 40, 4}}) {
        const int64_t stride = sh.dk + 3;
        const std::vector<float> q = random_floats(size_t(sh.n * stride), ++seed, 0.2f);
        const std::vector<float> k = random_floats(size_t(sh.n * stride), ++seed, 0.2f);
        const std::vector<float> v = random_floats(size_t(sh.n * sh.dv), ++seed);
        std::vector<float> decay = random_floats(size_t(sh.n), ++seed), beta = random_floats(size_t(sh.n), ++seed);
        for (float& d : decay) d = 1.0f / (1.0f + std::exp(d));
        for (float& b : beta) b = 1.0f / (1.0f + std::exp(b));
        const std::vector<float> s0 = random_floats(size_t(sh.dk * sh.dv), ++seed);
        std::vector<float> sa = s0, sb = s0, oa(size_t(sh.n * sh.dv)), ob(size_t(sh.n * sh.dv));
        std::vector<float> work(size_t(backend::cpu::gdn_work_floats(sh.dk)));
        GdnRun r{.dk = sh.dk,
                 .dv = sh.dv,
                 .n = sh.n,
                 .q = q.data(),
                 .k = k.data(),
                 .qk_stride = stride,
                 .v = v.data(),
                 .v_stride = sh.dv,
                 .decay = decay.data(),
                 .b = beta.data(),
                 .scale = 1.0f / std::sqrt(float(sh.dk)),
                 .S = sa.data(),
                 .o = oa.data(),
                 .o_stride = sh.dv,
                 .work = work.data()};
        vec_->gdn(r);
        r.S = sb.data();
        r.o = ob.data();
        backend::cpu::gdn_loop(r, kt);
        const std::string what = "dk " + std::to_string(sh.dk) + " dv " + std::to_string(sh.dv);
        expect_same(oa, ob, "gdn output " + what);
        expect_same(sa, sb, "gdn state " + what);
    }
}

INSTANTIATE_TEST_SUITE_P(Isas, Elementwise, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                             return std::string(quant::isa_name(info.param));
                         });

}  // namespace
}  // namespace ferry::cpu_test
