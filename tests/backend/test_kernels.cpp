// Every SIMD kernel table entry against the scalar reference on seeded random data:
//   - activation quantizers (Q8_0, Q8_1, Q8_K) bit for bit, including blocks of zeros, ties at .5
//     and repeated maxima of both signs;
//   - gemm tiles against the format's scalar vec_dot by NMSE, with guard values around a strided
//     output, for awkward row and column counts; and per column bit for bit equal whatever the tile
//     width (so token-by-token decode equals batched prefill);
//   - the repacked-Q4_K kernel bit for bit against ggml's GEMM / GEMV order in scalar code;
//   - the vector helpers of attention.
// Runs for each instruction set this CPU supports (AVX2, AVX-512); the others are skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "cpu_test_util.h"
#include "quant/kernels.h"
#include "quant/q4_1.h"
#include "quant/q4_k.h"
#include "quant/q6_k.h"
#include "quant/q8_0.h"
#include "quant/q8_k.h"

namespace ferry::cpu_test {
namespace {

using quant::Isa;
using quant::KernelTable;

class Kernels : public ::testing::TestWithParam<Isa> {
protected:
    void SetUp() override {
        table_ = quant::kernels_for(GetParam());
        if (table_ == nullptr) GTEST_SKIP() << quant::isa_name(GetParam()) << " not supported on this CPU";
    }
    const KernelTable* table_ = nullptr;
};

// Inputs that stress the quantizers: normal data, exact zeros, values on rounding ties, equal
// magnitudes of both signs competing for the maximum, tiny and huge scales.
std::vector<float> quantizer_input(int64_t n, uint32_t seed) {
    std::vector<float> x = random_floats(size_t(n), seed);
    std::mt19937 rng(seed + 1);
    for (int64_t b = 0; b < n / 32; ++b) {
        float* xb = x.data() + b * 32;
        switch (rng() % 6) {
            case 0: std::fill(xb, xb + 32, 0.0f); break;
            case 1:  // amax 127 * k: quants are exact ties x.5 for odd halves
                for (int j = 0; j < 32; ++j) xb[j] = float(int(rng() % 255) - 127) + (j % 2 ? 0.5f : 0.0f);
                xb[0] = 127.0f;
                break;
            case 2:  // both signs of the maximum
                xb[3] = 4.0f;
                xb[7] = -4.0f;
                break;
            case 3:
                for (int j = 0; j < 32; ++j) xb[j] *= 1e-30f;
                break;
            case 4:
                for (int j = 0; j < 32; ++j) xb[j] *= 1e4f;
                break;
            default: break;
        }
    }
    return x;
}

TEST_P(Kernels, QuantizersAreBitExact) {
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
        const quant::FormatTraits* f = quant::find_format(t);
        const quant::QuantizeFn fast = table_->quantize_for(t);
        ASSERT_NE(fast, nullptr) << type_name(t);
        for (int64_t n : {256, 512, 4096}) {
            for (uint32_t seed = 1; seed <= 20; ++seed) {
                const std::vector<float> x = quantizer_input(n, seed * 7 + uint32_t(n));
                const size_t bytes = size_t(n / f->block_size * f->type_size);
                std::vector<uint8_t> want(bytes, 0xAA), got(bytes, 0x55);
                quant::activation_quantizer(t)(x.data(), want.data(), n);
                fast(x.data(), got.data(), n);
                ASSERT_EQ(std::memcmp(want.data(), got.data(), bytes), 0)
                    << type_name(t) << " n=" << n << " seed=" << seed;
            }
        }
    }
}

// Activations for weight type w: the reference quantizer's blocks (or f32, rounded for F16 / BF16).
std::vector<uint8_t> make_act(GgmlType w, int64_t n, int64_t nc, uint32_t seed, size_t* stride) {
    const quant::FormatTraits* af = quant::find_format(quant::find_format(w)->vec_dot_type);
    *stride = size_t(n / af->block_size * af->type_size);
    std::vector<uint8_t> out(*stride * size_t(nc));
    std::vector<float> x = random_floats(size_t(n * nc), seed);
    for (float& v : x) {
        if (w == GgmlType::F16) v = fp16_to_fp32(fp32_to_fp16(v));
        if (w == GgmlType::BF16) v = bf16_to_fp32(fp32_to_bf16(v));
    }
    for (int64_t c = 0; c < nc; ++c) af->quantize_row(x.data() + c * n, out.data() + size_t(c) * *stride, n);
    return out;
}

TEST_P(Kernels, GemmMatchesScalarVecDot) {
    constexpr float kGuard = 12345.0f;
    int n_fast = 0;
    for (GgmlType type : weight_types()) {
        const quant::GemmFn fast = table_->gemm_for(type);
        if (fast == nullptr) continue;
        ++n_fast;
        const quant::FormatTraits* f = quant::find_format(type);
        const std::vector<int64_t> lengths =
            f->block_size == 256 ? std::vector<int64_t>{256, 768}
                                 : std::vector<int64_t>{32, 96, 256, 40 * f->block_size, 71 * f->block_size};
        for (int64_t n : lengths) {
            if (f->block_size == 1 && n == 32) n = 37;  // a float row with a scalar tail
            // Column counts around the register tiles' widths (groups of 8, a padded group of 6..7, a 4-column
            // tile for 3..5, 2-column tiles, leftovers of 1..3: every count of 1..9); row counts around their heights
            // (pairs, and blocks of 16 rows); n around their chunks of 32 blocks, with odd block counts; 67 rows: more
            // than one panel of 64 rows, an odd last row.
            for (auto [nr, nc] : {std::pair<int64_t, int64_t>{1, 1},
                                  {5, 1},
                                  {3, 7},
                                  {9, 12},
                                  {2, 17},
                                  {19, 13},
                                  {1, 4},
                                  {13, 4},
                                  {4, 64},
                                  {67, 5},
                                  {6, 2},
                                  {11, 3},
                                  {21, 6},
                                  {10, 8},
                                  {17, 9}}) {
                const Weight w = make_weight(type, n, nr, uint32_t(n + nr));
                size_t a_stride = 0;
                const std::vector<uint8_t> act = make_act(type, n, nc, uint32_t(n * 3 + nc), &a_stride);
                // Output with ldy > nr and guard values before, between and after.
                const int64_t ldy = nr + 3, pad = 8;
                std::vector<float> y(size_t(pad + ldy * nc + pad), kGuard);
                const quant::GemmArgs g{.n = n,
                                        .w = w.bytes.data(),
                                        .w_stride = size_t(w.row_bytes),
                                        .nr = nr,
                                        .a = act.data(),
                                        .a_stride = a_stride,
                                        .nc = nc,
                                        .y = y.data() + pad,
                                        .ldy = ldy};
                fast(g);
                std::vector<float> got, want;
                for (int64_t c = 0; c < nc; ++c) {
                    for (int64_t r = 0; r < nr; ++r) {
                        got.push_back(y[size_t(pad + c * ldy + r)]);
                        want.push_back(
                            f->vec_dot(n, w.bytes.data() + r * w.row_bytes, act.data() + size_t(c) * a_stride));
                    }
                    for (int64_t r = nr; r < ldy; ++r) ASSERT_EQ(y[size_t(pad + c * ldy + r)], kGuard) << "gap written";
                }
                for (int64_t i = 0; i < pad; ++i) {
                    ASSERT_EQ(y[size_t(i)], kGuard) << "wrote before the output";
                    ASSERT_EQ(y[y.size() - 1 - size_t(i)], kGuard) << "wrote after the output";
                }
                EXPECT_LE(nmse(got, want), 1e-10) << type_name(type) << " n=" << n << " nr=" << nr << " nc=" << nc;

                // Column by column: bit-identical to the batched tile.
                for (int64_t c = 0; c < nc; ++c) {
                    std::vector<float> one(size_t(nr), kGuard);
                    quant::GemmArgs g1 = g;
                    g1.a = act.data() + size_t(c) * a_stride;
                    g1.nc = 1;
                    g1.y = one.data();
                    fast(g1);
                    for (int64_t r = 0; r < nr; ++r)
                        ASSERT_EQ(one[size_t(r)], got[size_t(c * nr + r)]) << type_name(type) << " column " << c;
                }
            }
        }
    }
    EXPECT_GE(n_fast, 8);
}

// One call of a K-quant GEMM on random weights (nr rows) and activations (nc columns), output stride ldy.
struct GemmCase {
    Weight w;
    std::vector<uint8_t> act;
    size_t a_stride = 0;
    std::vector<float> y;
};

GemmCase run_gemm_case(quant::GemmFn fn, GgmlType type, int64_t n, int64_t nr, int64_t nc, int64_t ldy, uint32_t w_seed,
                       uint32_t a_seed) {
    GemmCase k{.w = make_weight(type, n, nr, w_seed), .act = {}, .a_stride = 0, .y = {}};
    k.act = make_act(type, n, nc, a_seed, &k.a_stride);
    k.y.assign(size_t(ldy * nc), 12345.0f);
    fn({.n = n,
        .w = k.w.bytes.data(),
        .w_stride = size_t(k.w.row_bytes),
        .nr = nr,
        .a = k.act.data(),
        .a_stride = k.a_stride,
        .nc = nc,
        .y = k.y.data(),
        .ldy = ldy});
    return k;
}

// llama.cpp's repacked Q4_K order (ggml_gemm / ggml_gemv_q4_K_8x8_q8_K), written out in scalar code: the
// first nc - nc % 4 columns per pair of sub-blocks, the rest per super-block; bit for bit.
float q4k_8x8_ref(const quant::BlockQ4K* w, const quant::BlockQ8K* a, int64_t nb, bool gemv) {
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
        int sc[8], m[8];
        const uint8_t* s = w[b].scales;
        for (int j = 0; j < 4; ++j) {
            sc[j] = s[j] & 63;
            m[j] = s[j + 4] & 63;
            sc[j + 4] = (s[j + 8] & 15) | (s[j] >> 6) << 4;
            m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
        }
        const float dd = fp16_to_fp32(w[b].d) * a[b].d, dm = fp16_to_fp32(w[b].dmin) * a[b].d;
        int isum = 0, imin = 0;
        for (int i = 0; i < 4; ++i) {
            int lo = 0, hi = 0;
            for (int l = 0; l < 32; ++l) {
                lo += (w[b].qs[32 * i + l] & 15) * a[b].qs[64 * i + l];
                hi += (w[b].qs[32 * i + l] >> 4) * a[b].qs[64 * i + 32 + l];
            }
            const int pair_sum = sc[2 * i] * lo + sc[2 * i + 1] * hi;
            const int pair_min = m[2 * i] * (a[b].bsums[4 * i] + a[b].bsums[4 * i + 1]) +
                                 m[2 * i + 1] * (a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3]);
            if (gemv) {
                isum += pair_sum;
                imin += pair_min;
            } else {
                acc = std::fma(float(pair_sum), dd, acc);
                accm = std::fma(float(pair_min), dm, accm);
            }
        }
        if (gemv) {
            acc = std::fma(float(isum), dd, acc);
            accm = std::fma(float(imin), dm, accm);
        }
    }
    return acc - accm;
}

TEST_P(Kernels, RepackedQ4KFollowsGgmlOrder) {
    ASSERT_NE(table_->gemm_q4k_8x8, nullptr);
    for (int64_t n : {256, 1024}) {
        for (int64_t nc : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 67, 70}) {  // 64-column chunks and the rest
            for (int64_t nr : {6, 8, 13, 16, 24, 35}) {                // groups of 8 rows and the rows after them
                const int64_t ldy = nr + 3;                            // a gap after each column
                const GemmCase k = run_gemm_case(table_->gemm_q4k_8x8, GgmlType::Q4_K, n, nr, nc, ldy,
                                                 uint32_t(n + nc + 7 * nr), uint32_t(n * 5 + nc));
                const Weight& w = k.w;
                const std::vector<uint8_t>& act = k.act;
                const size_t a_stride = k.a_stride;
                const std::vector<float>& y = k.y;
                for (int64_t c = 0; c < nc; ++c) {
                    const bool gemv = nc < 4;
                    const auto* ac = reinterpret_cast<const quant::BlockQ8K*>(act.data() + size_t(c) * a_stride);
                    for (int64_t r = 0; r < nr; ++r) {
                        const auto* wr = reinterpret_cast<const quant::BlockQ4K*>(w.bytes.data() + r * w.row_bytes);
                        const float want = q4k_8x8_ref(wr, ac, n / 256, gemv);
                        ASSERT_EQ(std::bit_cast<uint32_t>(y[size_t(c * ldy + r)]), std::bit_cast<uint32_t>(want))
                            << "n=" << n << " nc=" << nc << " nr=" << nr << " column " << c << " row " << r;
                    }
                }
            }
        }
    }
}

// The one-sum kernels (steps of several sequences) against their scalar twins, bit for bit: strips of 16 rows
// and the rows after them, every column count of a step (1..8) and more (passes of 8 columns).
TEST_P(Kernels, OneSumGemmMatchesScalarTwin) {
    struct Twin {
        GgmlType type;
        float (*dot)(int64_t n, const uint8_t* w, const uint8_t* a);
    };
    const Twin twins[] = {{GgmlType::Q4_1,
                           [](int64_t n, const uint8_t* w, const uint8_t* a) {
                               return quant::vec_dot_q4_1_q8_1_one_sum(n, reinterpret_cast<const quant::BlockQ4_1*>(w),
                                                                       reinterpret_cast<const quant::BlockQ8_1*>(a));
                           }},
                          {GgmlType::Q8_0, [](int64_t n, const uint8_t* w, const uint8_t* a) {
                               return quant::vec_dot_q8_0_q8_0_one_sum(n, reinterpret_cast<const quant::BlockQ8_0*>(w),
                                                                       reinterpret_cast<const quant::BlockQ8_0*>(a));
                           }}};
    int n_fast = 0;
    for (const Twin& twin : twins) {
        const quant::GemmFn fn = table_->gemm_one_sum_for(twin.type);
        if (fn == nullptr) continue;
        ++n_fast;
        // 513 blocks: rows too long for the strips' scale buffers.
        for (int64_t n : {32, 96, 576, 71 * 32, 513 * 32}) {
            for (auto [nr, nc] : {std::pair<int64_t, int64_t>{16, 2},
                                  {35, 4},
                                  {48, 3},
                                  {17, 8},
                                  {5, 2},
                                  {33, 7},
                                  {64, 5},
                                  {16, 1},
                                  {20, 6},
                                  {32, 11}}) {
                const int64_t ldy = nr + 3;  // a gap after each column
                const GemmCase k =
                    run_gemm_case(fn, twin.type, n, nr, nc, ldy, uint32_t(n + 3 * nr + nc), uint32_t(n * 7 + nc));
                std::vector<float> got, want;
                for (int64_t c = 0; c < nc; ++c) {
                    const uint8_t* ac = k.act.data() + size_t(c) * k.a_stride;
                    for (int64_t r = 0; r < nr; ++r) {
                        const uint8_t* wr = k.w.bytes.data() + r * k.w.row_bytes;
                        const float y = k.y[size_t(c * ldy + r)];
                        ASSERT_EQ(std::bit_cast<uint32_t>(y), std::bit_cast<uint32_t>(twin.dot(n, wr, ac)))
                            << type_name(twin.type) << " n=" << n << " nc=" << nc << " nr=" << nr << " column " << c
                            << " row " << r;
                        got.push_back(y);
                        want.push_back(quant::find_format(twin.type)->vec_dot(n, wr, ac));
                    }
                    for (int64_t r = nr; r < ldy; ++r) ASSERT_EQ(k.y[size_t(c * ldy + r)], 12345.0f) << "gap written";
                }
                // The same outputs as ggml's order up to rounding.
                EXPECT_LE(nmse(got, want), 1e-10) << type_name(twin.type) << " n=" << n << " nr=" << nr << " nc=" << nc;
            }
        }
    }
    if (GetParam() == Isa::Avx512) {
        EXPECT_EQ(n_fast, 2);
    } else if (n_fast == 0) {
        GTEST_SKIP() << "no one-sum kernels in this table";
    }
}

// ggml's x86 Q6_K order (ggml_vec_dot_q6_K_q8_K, AVX2), written out in scalar code: 8 float lanes, lane l
// summing bytes 4l .. 4l + 3 of every 32-element piece (scale of the piece's 16-element half), one fma
// per super-block, then hsum_float_8's tree; bit for bit.
float q6k_ggml_ref(const quant::BlockQ6K* w, const quant::BlockQ8K* a, int64_t nb) {
    float acc[8] = {};
    for (int64_t b = 0; b < nb; ++b) {
        // The codes 0..63 from dequantization: value = d * scale * (code - 32).
        int code[256];
        for (int i = 0; i < 256; ++i) {
            const int half = i / 128, e = i % 128, l = e % 32, q = e / 32;
            const uint8_t ql = w[b].ql[64 * half + l + 32 * (q & 1)];
            const int lo = q < 2 ? ql & 15 : ql >> 4;
            const int hi = (w[b].qh[32 * half + l] >> (2 * q)) & 3;
            code[i] = lo | hi << 4;
        }
        const float d = fp16_to_fp32(w[b].d) * a[b].d;
        for (int l = 0; l < 8; ++l) {
            int sumi = 0;
            for (int i = 0; i < 8; ++i) {
                int s = 0;
                for (int t = 0; t < 4; ++t) s += (code[32 * i + 4 * l + t] - 32) * a[b].qs[32 * i + 4 * l + t];
                sumi += w[b].scales[2 * i + l / 4] * s;
            }
            acc[l] = std::fma(float(sumi), d, acc[l]);
        }
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

TEST_P(Kernels, Q6KFollowsGgmlOrder) {
    const quant::GemmFn fast = table_->gemm_for(GgmlType::Q6_K);
    ASSERT_NE(fast, nullptr);
    const int64_t n = 512;
    for (int64_t nc : {1, 3, 4, 5, 13, 70}) {    // 64-column chunks and the rest
        for (int64_t nr : {7, 8, 16, 19, 35}) {  // groups of 16 and 8 rows and the rows after them
            const int64_t ldy = nr + 2;
            const GemmCase k =
                run_gemm_case(fast, GgmlType::Q6_K, n, nr, nc, ldy, uint32_t(3 * nr + nc), uint32_t(nc + 11));
            for (int64_t c = 0; c < nc; ++c) {
                const auto* ac = reinterpret_cast<const quant::BlockQ8K*>(k.act.data() + size_t(c) * k.a_stride);
                for (int64_t r = 0; r < nr; ++r) {
                    const auto* wr = reinterpret_cast<const quant::BlockQ6K*>(k.w.bytes.data() + r * k.w.row_bytes);
                    ASSERT_EQ(std::bit_cast<uint32_t>(k.y[size_t(c * ldy + r)]),
                              std::bit_cast<uint32_t>(q6k_ggml_ref(wr, ac, n / 256)))
                        << "nc=" << nc << " nr=" << nr << " column " << c << " row " << r;
                }
            }
        }
    }
}

TEST_P(Kernels, VectorHelpers) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
    for (int64_t n : {1, 7, 64, 100, 257}) {
        const std::vector<float> x = random_floats(size_t(n), 1), z = random_floats(size_t(n), 2);
        std::vector<uint16_t> h(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) h[size_t(i)] = fp32_to_fp16(x[size_t(i)]);
        EXPECT_NEAR(table_->dot_f32(n, x.data(), z.data()), s.dot_f32(n, x.data(), z.data()), 1e-4 * double(n));
        EXPECT_NEAR(table_->dot_f16_f32(n, h.data(), z.data()), s.dot_f16_f32(n, h.data(), z.data()), 1e-4 * double(n));
        std::vector<float> a = z, b = z;
        table_->mad_f32(n, a.data(), x.data(), 0.7f);
        s.mad_f32(n, b.data(), x.data(), 0.7f);
        EXPECT_LE(nmse(a, b), 1e-12);
        table_->mad_f16(n, a.data(), h.data(), -1.3f);
        s.mad_f16(n, b.data(), h.data(), -1.3f);
        EXPECT_LE(nmse(a, b), 1e-12);
        table_->scale_f32(n, a.data(), 0.25f);
        s.scale_f32(n, b.data(), 0.25f);
        EXPECT_LE(nmse(a, b), 1e-12);
        std::vector<float> big = random_floats(size_t(n), 3, 3e4f), r1(static_cast<size_t>(n)),
                           r2(static_cast<size_t>(n));
        table_->round_f16(n, big.data(), r1.data());
        s.round_f16(n, big.data(), r2.data());
        EXPECT_EQ(std::memcmp(r1.data(), r2.data(), size_t(n) * 4), 0) << "round_f16 n=" << n;
        // to_f16 over overflow, subnormal and NaN inputs as well.
        std::vector<float> wide = big;
        for (int64_t i = 0; i < n; i += 3) wide[size_t(i)] *= 1e-9f;
        if (n > 5) wide[5] = std::nanf("");
        std::vector<uint16_t> h1(static_cast<size_t>(n)), h2(static_cast<size_t>(n));
        table_->to_f16(n, wide.data(), h1.data());
        s.to_f16(n, wide.data(), h2.data());
        EXPECT_EQ(h1, h2) << "to_f16 n=" << n;
    }
}

// expf_libm: every table gives the C library's expf bit for bit, over 4M bit patterns spread across all
// floats (every sign, binade, denormals, both sides of the +-88 special-case limit, infinities, NaN) and
// lengths with a vector tail; on the glibc versions whose algorithm expf_libm.h reproduces, the vector
// path must have been chosen (it was checked exhaustively, all 2^32 inputs, on glibc 2.36).
TEST_P(Kernels, ExpfLibmIsTheLibrarys) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
#if defined(__GLIBC__) && __GLIBC__ == 2 && __GLIBC_MINOR__ >= 28 && __GLIBC_MINOR__ <= 40
    if (GetParam() != Isa::Scalar) {
        EXPECT_TRUE(table_->expf_libm_vector) << "the vector expf disagrees with glibc";
    }
#endif
    constexpr size_t kN = size_t(1) << 22;
    std::vector<float> x(kN), got(kN), want(kN);
    for (size_t i = 0; i < kN; ++i) {
        const uint32_t bits =
            uint32_t(i * 1023u + (i >> 12));  // steps of 1023 over the bit patterns, shifted per round
        std::memcpy(&x[i], &bits, sizeof(float));
    }
    const float edges[] = {88.0f,         -88.0f,         0x1.5ffffep6f,  -0x1.5ffffep6f, 0x1.62e42ep6f,
                           0x1.62e430p6f, -0x1.9fe368p6f, -0x1.9fe36ap6f, -0x1.9d1d9ep6f, -0x1.9d1da0p6f,
                           0.0f,          -0.0f,          INFINITY,       -INFINITY};
    std::copy(std::begin(edges), std::end(edges), x.begin());
    for (const int64_t n : {int64_t(kN), int64_t(13), int64_t(8), int64_t(1)}) {
        table_->expf_libm(n, x.data(), got.data());
        s.expf_libm(n, x.data(), want.data());
        for (int64_t i = 0; i < n; ++i) {
            if (std::isnan(want[size_t(i)])) {
                ASSERT_TRUE(std::isnan(got[size_t(i)])) << "expf(" << x[size_t(i)] << ")";
                continue;
            }
            ASSERT_EQ(std::bit_cast<uint32_t>(got[size_t(i)]), std::bit_cast<uint32_t>(want[size_t(i)]))
                << "expf(" << std::hexfloat << x[size_t(i)] << "), n " << n;
        }
    }
}

// llama.cpp's attention arithmetic: every table bit-identical with the scalar one (std::fma), on random
// rows of awkward lengths, F16 values across the range, and softmax inputs down to -inf and -200.
TEST_P(Kernels, AttentionArithmeticIsBitExact) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
    auto bits = [](float f) { return std::bit_cast<uint32_t>(f); };
    for (int64_t n : {16, 64, 80, 128, 7, 100, 257}) {
        const std::vector<float> x = random_floats(size_t(n), 11, 4.0f), z = random_floats(size_t(n), 12, 4.0f);
        std::vector<uint16_t> hx(static_cast<size_t>(n)), hz(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            hx[size_t(i)] = fp32_to_fp16(x[size_t(i)]);
            hz[size_t(i)] = fp32_to_fp16(z[size_t(i)]);
        }
        if (n % 16 == 0) {
            EXPECT_EQ(bits(table_->dot_f16_lanes16(n, hx.data(), hz.data())),
                      bits(s.dot_f16_lanes16(n, hx.data(), hz.data())));
            EXPECT_EQ(bits(table_->dot_f32_lanes16(n, x.data(), z.data())),
                      bits(s.dot_f32_lanes16(n, x.data(), z.data())));
        }
        EXPECT_EQ(bits(table_->dot_f16_ggml(n, hx.data(), hz.data())), bits(s.dot_f16_ggml(n, hx.data(), hz.data())))
            << "n=" << n;
        std::vector<float> a = z, b = z;
        table_->fmad_f32(n, a.data(), x.data(), 0.37f);
        s.fmad_f32(n, b.data(), x.data(), 0.37f);
        table_->fmad_f16(n, a.data(), hx.data(), -1.3f);
        s.fmad_f16(n, b.data(), hx.data(), -1.3f);
        EXPECT_EQ(std::memcmp(a.data(), b.data(), size_t(n) * 4), 0) << "fmad n=" << n;
        std::vector<uint16_t> ha = hz, hb = hz;
        table_->fmad_f16_acc16(n, ha.data(), hx.data(), 0.61f);
        s.fmad_f16_acc16(n, hb.data(), hx.data(), 0.61f);
        table_->scale_f16(n, ha.data(), 0.3f);
        s.scale_f16(n, hb.data(), 0.3f);
        EXPECT_EQ(ha, hb) << "f16 accumulator n=" << n;
        // Softmax inputs: random scores, some masked (-inf), some far below the maximum.
        std::vector<float> row = random_floats(size_t(n), 13, 30.0f);
        for (int64_t i = 0; i < n; i += 5) row[size_t(i)] = -INFINITY;
        for (int64_t i = 3; i < n; i += 11) row[size_t(i)] = -200.0f;
        const float mx = *std::max_element(row.begin(), row.end());
        std::vector<float> ya(static_cast<size_t>(n)), yb(static_cast<size_t>(n));
        const double sa = table_->soft_max_ggml(n, ya.data(), row.data(), mx);
        const double sb = s.soft_max_ggml(n, yb.data(), row.data(), mx);
        EXPECT_EQ(sa, sb) << "soft_max n=" << n;
        EXPECT_EQ(std::memcmp(ya.data(), yb.data(), size_t(n) * 4), 0) << "soft_max n=" << n;
        for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(yb[size_t(i)], std::exp(double(row[size_t(i)]) - mx), 2e-6);
        // Batched forms: rows of a strided matrix, cell ranges starting and ending off the 16-cell grid.
        const int64_t n_x = 1 + n % 13, ldx = n + 5;
        const std::vector<float> xs = random_floats(size_t(n_x * ldx), 15, 3.0f);
        std::vector<uint16_t> hxs(xs.size());
        for (size_t i = 0; i < xs.size(); ++i) hxs[i] = fp32_to_fp16(xs[i]);
        if (n % 16 == 0) {
            std::vector<float> da(static_cast<size_t>(n_x)), db(static_cast<size_t>(n_x));
            table_->dot_f16_lanes16_rows(n, hxs.data(), ldx, n_x, hz.data(), da.data());
            s.dot_f16_lanes16_rows(n, hxs.data(), ldx, n_x, hz.data(), db.data());
            EXPECT_EQ(std::memcmp(da.data(), db.data(), size_t(n_x) * 4), 0) << "dot rows n=" << n;
            EXPECT_EQ(bits(da[0]), bits(s.dot_f16_lanes16(n, hxs.data(), hz.data())));
        }
        for (auto [j0, j1] : {std::pair<int64_t, int64_t>{0, 1}, {3, 40}, {16, 64}, {21, 100}, {50, 51}}) {
            const int64_t cols = n_x * 8 + n % 7, ldv = cols + 3;
            const std::vector<float> vf = random_floats(size_t(j1 * ldv), 16), pf = random_floats(size_t(j1), 17);
            std::vector<uint16_t> vh(vf.size());
            for (size_t i = 0; i < vf.size(); ++i) vh[i] = fp32_to_fp16(vf[i]);
            std::vector<float> oa(static_cast<size_t>(cols)), ob(static_cast<size_t>(cols));
            table_->pv_f16_lanes16(cols, vh.data(), ldv, pf.data(), j0, j1, oa.data());
            s.pv_f16_lanes16(cols, vh.data(), ldv, pf.data(), j0, j1, ob.data());
            EXPECT_EQ(std::memcmp(oa.data(), ob.data(), size_t(cols) * 4), 0) << "pv cols=" << cols << " j0=" << j0;
        }
        const std::vector<float> lanes = random_floats(size_t(16 * n), 14);
        std::vector<float> ra(static_cast<size_t>(n)), rb(static_cast<size_t>(n));
        table_->reduce_lanes16(n, lanes.data(), ra.data());
        s.reduce_lanes16(n, lanes.data(), rb.data());
        EXPECT_EQ(std::memcmp(ra.data(), rb.data(), size_t(n) * 4), 0) << "reduce_lanes16 n=" << n;
    }
}

// flash_attn_rows: every table bit-identical with the scalar one, on blocks of 1 .. 64 query rows
// (heads x tokens), F16 and F32 K / V, head sizes with and without a tail, causal ranges, windows that
// leave gaps between the rows' key ranges, rows that see nothing, and strided Q / Y with guard values.
TEST_P(Kernels, FlashAttnRowsIsBitExact) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
    std::mt19937 rng(17);
    for (int iter = 0; iter < 40; ++iter) {
        const int64_t heads = 1 + int64_t(rng() % 8), n_tok = 1 + int64_t(rng() % (quant::kFlashRows / heads));
        const int64_t n_rows = heads * n_tok;
        const int64_t dk = iter % 5 == 0 ? 8 + int64_t(rng() % 60) : 16 * (1 + int64_t(rng() % 8));
        const int64_t dv = 16 * (1 + int64_t(rng() % 8)), n_kv = 1 + int64_t(rng() % 300);
        const bool f16 = iter % 2 == 0;
        const int64_t ldk = dk + 3, ldv = dv + 5, ldq = heads * dk + 7, ldy = heads * dv + 9;
        const std::vector<float> kf = random_floats(size_t(n_kv * ldk), 500 + iter, 2.0f);
        const std::vector<float> vf = random_floats(size_t(n_kv * ldv), 600 + iter);
        const std::vector<float> q = random_floats(size_t(n_tok * ldq), 700 + iter, 2.0f);
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        for (size_t i = 0; i < kf.size(); ++i) kh[i] = fp32_to_fp16(kf[i]);
        for (size_t i = 0; i < vf.size(); ++i) vh[i] = fp32_to_fp16(vf[i]);
        std::vector<int32_t> lo(static_cast<size_t>(n_rows)), hi(static_cast<size_t>(n_rows));
        const int64_t past = int64_t(rng() % uint32_t(n_kv)), window = rng() % 3 == 0 ? 1 + int64_t(rng() % 90) : 0;
        for (int64_t r = 0; r < n_rows; ++r) {
            // Token positions spread out so that windows leave whole key blocks unseen.
            const int64_t qp = std::min(n_kv - 1, past + (r / heads) * (window > 0 ? 7 : 1));
            hi[size_t(r)] = int32_t(qp + 1);
            lo[size_t(r)] = int32_t(window > 0 ? std::max<int64_t>(0, qp - window + 1) : 0);
            if (rng() % 23 == 0) lo[size_t(r)] = hi[size_t(r)];  // sees nothing
        }
        std::vector<float> scratch(size_t(quant::flash_attn_scratch_floats(dk, dv)));
        std::vector<float> ya(size_t(n_tok * ldy), 777.0f), yb = ya;
        for (int t = 0; t < 2; ++t) {
            const KernelTable& table = t == 0 ? *table_ : s;
            const quant::FlashAttnArgs a{.dk = dk,
                                         .dv = dv,
                                         .n_rows = n_rows,
                                         .heads = heads,
                                         .q = q.data(),
                                         .ldq = ldq,
                                         .y = (t == 0 ? ya : yb).data(),
                                         .ldy = ldy,
                                         .lo = lo.data(),
                                         .hi = hi.data(),
                                         .k = f16 ? static_cast<const void*>(kh.data()) : kf.data(),
                                         .ldk = ldk,
                                         .k_f16 = f16,
                                         .v = f16 ? static_cast<const void*>(vh.data()) : vf.data(),
                                         .ldv = ldv,
                                         .v_f16 = f16,
                                         .scale = 1.0f / std::sqrt(float(dk)),
                                         .scratch = scratch.data()};
            table.flash_attn_rows(a);
        }
        ASSERT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * 4), 0)
            << "iter " << iter << " heads " << heads << " tokens " << n_tok << " dk " << dk << " dv " << dv;
        for (int64_t t = 0; t < n_tok; ++t)  // guard values between the strided rows stay
            EXPECT_EQ(ya[size_t(t * ldy + heads * dv)], 777.0f);
    }
}

std::vector<uint16_t> halves(const std::vector<float>& x) {
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) h[i] = fp32_to_fp16(x[i]);
    return h;
}

// flash_attn_row_f16's arguments for the tests below: K / V rows from elements 1 / 2 of kh / vh on
// (unaligned rows), the scale 1 / sqrt(dk).
quant::FlashRowF16Args row_f16_args(int64_t dk, int64_t dv, const std::vector<uint16_t>& qh,
                                    const std::vector<uint16_t>& kh, int64_t ldk, const std::vector<uint16_t>& vh,
                                    int64_t ldv, int64_t j0, int64_t j1) {
    return {.dk = dk,
            .dv = dv,
            .q = qh.data(),
            .k = kh.data() + 1,
            .ldk = ldk,
            .v = vh.data() + 2,
            .ldv = ldv,
            .j0 = j0,
            .j1 = j1,
            .scale = 1.0f / std::sqrt(float(dk))};
}

// flash_attn_row_f16 against the scalar table and against the per-key composition of the table's own
// helpers (the CPU backend's loop before the fused kernel), bit for bit: head sizes with and without a
// 64-element tail, 1 .. 1000+ keys, strided K / V rows, scores that raise the maximum often (a
// growing key ramp) or rarely, and empty ranges.
TEST_P(Kernels, FlashAttnRowF16IsBitExact) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
    auto composed = [&](const quant::FlashRowF16Args& a) {
        std::vector<uint16_t> acc(size_t(a.dv), 0);
        float m = -INFINITY, sum = 0.0f;
        for (int64_t j = a.j0; j < a.j1; ++j) {
            const float sc = table_->dot_f16_ggml(a.dk, a.k + j * a.ldk, a.q) * a.scale;
            float ms = 1.0f, vs = 1.0f;
            if (sc > m) {
                ms = std::exp(m - sc);
                m = sc;
                table_->scale_f16(a.dv, acc.data(), ms);
            } else {
                vs = std::exp(sc - m);
            }
            table_->fmad_f16_acc16(a.dv, acc.data(), a.v + j * a.ldv, vs);
            sum = std::fma(sum, ms, vs);
        }
        for (int64_t d = 0; d < a.dv; ++d) a.y[d] = fp16_to_fp32(acc[size_t(d)]);
        table_->scale_f32(a.dv, a.y, sum == 0.0f ? 0.0f : 1.0f / sum);
    };
    std::mt19937 rng(29);
    const int64_t dims[][2] = {{64, 64}, {80, 80}, {128, 128}, {256, 256}, {40, 24}, {64, 100}, {96, 7}, {200, 136}};
    int iter = 0;
    for (const auto& dim : dims) {
        for (auto [j0, j1] : {std::pair<int64_t, int64_t>{0, 1}, {0, 1100}, {5, 70}, {300, 301}, {7, 7}, {0, 130}}) {
            const int64_t dk = dim[0], dv = dim[1], ldk = 3 * dk + 5, ldv = 3 * dv + 3;
            const uint32_t seed = uint32_t(900 + 10 * iter++);
            std::vector<float> kf = random_floats(size_t(j1 * ldk + dk), seed, 2.0f);
            const std::vector<float> vf = random_floats(size_t(j1 * ldv + dv), seed + 1, 3.0f);
            const std::vector<float> qf = random_floats(size_t(dk), seed + 2, 2.0f);
            // Every third range: keys aligned with q and growing, so the maximum changes at most keys.
            if (iter % 3 == 0)
                for (int64_t j = j0; j < j1; ++j)
                    for (int64_t i = 0; i < dk; ++i)
                        kf[size_t(j * ldk + i)] = qf[size_t(i)] * (0.5f + 0.01f * float(j % 97 + rng() % 3));
            const std::vector<uint16_t> kh = halves(kf), vh = halves(vf), qh = halves(qf);
            std::vector<float> ya(size_t(dv), 5.0f), yb(size_t(dv), 6.0f), yc(size_t(dv), 7.0f);
            quant::FlashRowF16Args a = row_f16_args(dk, dv, qh, kh, ldk, vh, ldv, j0, j1);
            a.y = ya.data();
            table_->flash_attn_row_f16(a);
            a.y = yb.data();
            s.flash_attn_row_f16(a);
            a.y = yc.data();
            composed(a);
            ASSERT_EQ(std::memcmp(ya.data(), yb.data(), size_t(dv) * 4), 0)
                << "vs scalar: dk " << dk << " dv " << dv << " keys " << j0 << ".." << j1;
            ASSERT_EQ(std::memcmp(ya.data(), yc.data(), size_t(dv) * 4), 0)
                << "vs per-key helpers: dk " << dk << " dv " << dv << " keys " << j0 << ".." << j1;
            if (j1 > j0) {
                EXPECT_NE(ya[0], 0.0f);
            }
        }
    }
}

// flash_attn_row_f16 with G = 1 .. kFlashRowHeads heads of one GQA group (strided queries and outputs)
// against the scalar table (G one-row calls) and the table's own one-row calls, bit for bit: random head
// sizes (odd ones, with and without a 64-element tail), 1 .. 1100 keys, keys whose scores keep raising
// the maximum of some heads (queries close to each other) or not, and empty ranges.
TEST_P(Kernels, FlashAttnRowF16GroupIsBitExact) {
    const KernelTable& s = *quant::kernels_for(Isa::Scalar);
    std::mt19937 rng(31);
    const int64_t dims[][2] = {{64, 64}, {128, 128}, {80, 80}, {40, 24}, {67, 33}, {131, 9}, {7, 72}, {256, 129}};
    const int64_t ranges[][2] = {{0, 1}, {0, 1100}, {5, 70}, {300, 301}, {7, 7}, {0, 130}, {3, 67}, {64, 192}};
    for (int iter = 0; iter < 48; ++iter) {
        const int64_t heads = 1 + iter % quant::kFlashRowHeads;
        const int64_t dk = dims[(iter + iter / 8) % 8][0], dv = dims[(3 * iter + 5 * (iter / 8)) % 8][1];
        const int64_t r = (5 * iter + 7 * (iter / 8)) % 8, j0 = ranges[r][0], j1 = ranges[r][1];
        const int64_t ldk = 2 * dk + 3, ldv = 2 * dv + 5, ldq = dk + 1 + int64_t(rng() % 3), ldy = dv + 2;
        const uint32_t seed = uint32_t(2000 + 10 * iter);
        std::vector<float> kf = random_floats(size_t(j1 * ldk + dk), seed, 2.0f);
        const std::vector<float> vf = random_floats(size_t(j1 * ldv + dv), seed + 1, 3.0f);
        std::vector<float> qf = random_floats(size_t(heads * ldq), seed + 2, 2.0f);
        // Every other call: keys aligned with head 0's query and growing, the other queries near it, so
        // the maximum changes at most keys for some heads and at few for others.
        if (iter % 2 == 0) {
            for (int64_t g = 1; g < heads; ++g)
                for (int64_t i = 0; i < dk; ++i) qf[size_t(g * ldq + i)] = qf[size_t(i)] * (1.0f - 0.3f * float(g % 3));
            for (int64_t j = j0; j < j1; ++j)
                for (int64_t i = 0; i < dk; ++i)
                    kf[size_t(j * ldk + i)] = qf[size_t(i)] * (0.5f + 0.01f * float(j % 97 + rng() % 3));
        }
        const std::vector<uint16_t> kh = halves(kf), vh = halves(vf), qh = halves(qf);
        const size_t ny = size_t(heads * ldy);
        std::vector<float> ya(ny, 5.0f), yb(ny, 5.0f), yc(ny, 5.0f);
        quant::FlashRowF16Args a = row_f16_args(dk, dv, qh, kh, ldk, vh, ldv, j0, j1);
        a.y = ya.data();
        a.heads = heads;
        a.ldq = ldq;
        a.ldy = ldy;
        table_->flash_attn_row_f16(a);
        a.y = yb.data();
        s.flash_attn_row_f16(a);
        for (int64_t g = 0; g < heads; ++g) {
            quant::FlashRowF16Args one = a;
            one.heads = 1;
            one.q = qh.data() + g * ldq;
            one.y = yc.data() + g * ldy;
            table_->flash_attn_row_f16(one);
        }
        ASSERT_EQ(std::memcmp(ya.data(), yb.data(), ny * 4), 0)
            << "vs scalar: heads " << heads << " dk " << dk << " dv " << dv << " keys " << j0 << ".." << j1;
        ASSERT_EQ(std::memcmp(ya.data(), yc.data(), ny * 4), 0)
            << "vs one-row calls: heads " << heads << " dk " << dk << " dv " << dv << " keys " << j0 << ".." << j1;
        for (int64_t g = 0; g < heads; ++g) {
            EXPECT_EQ(ya[size_t(g * ldy + dv)], 5.0f);  // the gap between the strided outputs stays
            if (j1 > j0) {
                EXPECT_NE(ya[size_t(g * ldy)], 0.0f);
            }
        }
        // The split-KV partials (ms set): the unnormalized accumulator and each head's max and sum, equal to
        // the scalar table's; y times 1 / sum is the normalized output.
        std::vector<float> pa(ny, 5.0f), pb(ny, 5.0f), ma(size_t(2 * heads), 7.0f), mb(size_t(2 * heads), 7.0f);
        a.y = pa.data();
        a.ms = ma.data();
        table_->flash_attn_row_f16(a);
        a.y = pb.data();
        a.ms = mb.data();
        s.flash_attn_row_f16(a);
        ASSERT_EQ(std::memcmp(pa.data(), pb.data(), ny * 4), 0) << "partials: heads " << heads << " dk " << dk;
        ASSERT_EQ(std::memcmp(ma.data(), mb.data(), ma.size() * 4), 0) << "partials: heads " << heads << " dk " << dk;
        for (int64_t g = 0; g < heads; ++g) {
            const float sum = ma[size_t(2 * g + 1)];
            EXPECT_EQ(sum == 0.0f, j1 <= j0);
            if (j1 <= j0) {
                EXPECT_EQ(ma[size_t(2 * g)], -INFINITY);
            }
            const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
            for (int64_t d = 0; d < dv; ++d)
                ASSERT_EQ(pa[size_t(g * ldy + d)] * inv, ya[size_t(g * ldy + d)]) << "head " << g << " column " << d;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Isa, Kernels, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(quant::isa_name(info.param)); });

}  // namespace
}  // namespace ferry::cpu_test
