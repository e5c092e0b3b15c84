// Each reference dot product against the definition: dot(dequantize(w), dequantize(quantize_act(a)))
// computed in double. The dots sum integer products per block and accumulate in float, so they agree
// to float rounding; the tolerance is a few float ulps of the sum of absolute terms. Q4_1 / Q5_1 use
// the activation's precomputed fp16 s = d * sum(q), whose rounding adds up to |m * s| * 2^-10 per block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant_test_util.h"

namespace ferry::quant::testing {
namespace {

struct DotCase {
    GgmlType type;
    int n_blocks;
};

// Sum over blocks of |m| * |s| * 2^-9: the slack for the fp16 rounding of Q8_1's s (and of d inside it).
double q8_1_slack(GgmlType type, const std::vector<uint8_t>& w, const std::vector<uint8_t>& a, int64_t n) {
    if (type != GgmlType::Q4_1 && type != GgmlType::Q5_1) return 0;
    const FormatTraits* wf = find_format(type);
    const FormatTraits* af = find_format(GgmlType::Q8_1);
    double slack = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        uint16_t m, s;  // both at byte offset 2 of their blocks
        std::memcpy(&m, w.data() + b * wf->type_size + 2, 2);
        std::memcpy(&s, a.data() + b * af->type_size + 2, 2);
        slack += std::fabs(double(fp16_to_fp32(m)) * double(fp16_to_fp32(s))) * std::ldexp(1.0, -9);
    }
    return slack;
}

class Dot : public ::testing::TestWithParam<DotCase> {};

TEST_P(Dot, MatchesDequantizedDotInDouble) {
    const DotCase c = GetParam();
    const FormatTraits* wf = find_format(c.type);
    ASSERT_NE(wf, nullptr);
    ASSERT_NE(wf->vec_dot, nullptr);
    const FormatTraits* af = find_format(wf->vec_dot_type);
    ASSERT_NE(af, nullptr);
    // A row long enough for both formats' blocks.
    const int64_t block = std::max(wf->block_size, af->block_size);
    const int64_t n = std::max<int64_t>(block, 32) * c.n_blocks;

    for (uint32_t trial = 0; trial < 4; ++trial) {
        const uint32_t seed = 1000 * uint32_t(c.type) + 10 * uint32_t(c.n_blocks) + trial;
        std::vector<float> x = gaussian(size_t(n), seed, 0.05f);
        std::vector<float> act = gaussian(size_t(n), seed + 7, 2.0f);
        if (trial == 1) {
            // Offsets: all-positive weights and activations exercise the min terms and bsums.
            for (float& v : x) v = std::fabs(v) + 0.02f;
            for (float& v : act) v = std::fabs(v);
        }
        const std::vector<uint8_t> w = quantized(*wf, x);
        const std::vector<uint8_t> a = quantized(*af, act);
        const std::vector<float> wd = dequantized(*wf, w, n);
        const std::vector<float> ad = dequantized(*af, a, n);
        double want = 0, magnitude = 0;
        for (int64_t i = 0; i < n; ++i) {
            want += double(wd[size_t(i)]) * double(ad[size_t(i)]);
            magnitude += std::fabs(double(wd[size_t(i)]) * double(ad[size_t(i)]));
        }
        // Terms inside a block may cancel (d * sc * q against the min): bound by the block's range.
        double range_mag = 0;
        for (int64_t b = 0; b < n / wf->block_size; ++b) {
            float wmax = 0;
            for (int64_t i = b * wf->block_size; i < (b + 1) * wf->block_size; ++i) {
                wmax = std::max(wmax, std::fabs(wd[size_t(i)]));
            }
            for (int64_t i = b * wf->block_size; i < (b + 1) * wf->block_size; ++i) {
                range_mag += 2.0 * wmax * std::fabs(double(ad[size_t(i)]));
            }
        }
        const double tol = 1e-6 * (magnitude + range_mag) + q8_1_slack(c.type, w, a, n);
        const float got = wf->vec_dot(n, w.data(), a.data());
        EXPECT_NEAR(double(got), want, tol)
            << type_name(c.type) << " n=" << n << " trial " << trial << " (|terms| " << magnitude << ")";
    }
}

std::vector<DotCase> all_cases() {
    std::vector<DotCase> cases;
    for (const GgmlType t : kWeightTypes) {
        for (const int nb : {1, 3, 8}) cases.push_back({t, nb});
    }
    return cases;
}

std::string case_name(const ::testing::TestParamInfo<DotCase>& info) {
    return lower_name(info.param.type) + "_x" + std::to_string(info.param.n_blocks);
}

INSTANTIATE_TEST_SUITE_P(Quant, Dot, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace ferry::quant::testing
