#include "quant/fit.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "quant/common.h"

namespace ferry::quant {
namespace {

// Candidate spread: the reciprocal scale is tried at (end + kStep * k) / range for |k| <= kSteps.
constexpr int kSteps = 10;
constexpr float kStep = 0.1f;

struct Affine {
    float scale = 0;
    float offset = 0;
    float err = 0;
};

float affine_error(int n, const float* x, const float* w, const uint8_t* L, float scale, float offset) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = scale * float(L[i]) + offset - x[i];
        err += w[i] * diff * diff;
    }
    return err;
}

// Weighted least squares for (scale, offset) given the codes, with offset constrained to <= 0.
Affine solve_affine(int n, const float* x, const float* w, const uint8_t* L) {
    float sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
    for (int i = 0; i < n; ++i) {
        const float l = float(L[i]);
        sw += w[i];
        sl += w[i] * l;
        sll += w[i] * l * l;
        sx += w[i] * x[i];
        slx += w[i] * l * x[i];
    }
    Affine a;
    const float det = sw * sll - sl * sl;
    if (det > 0) {
        a.scale = (sw * slx - sl * sx) / det;
        a.offset = (sll * sx - sl * slx) / det;
    }
    if (det <= 0 || a.offset > 0) {
        a.offset = 0;
        a.scale = sll > 0 ? slx / sll : 0;
    }
    a.err = affine_error(n, x, w, L, a.scale, a.offset);
    return a;
}

void round_affine(int n, int nmax, const float* x, float iscale, float offset, uint8_t* L) {
    for (int i = 0; i < n; ++i) L[i] = uint8_t(std::clamp(round_even(iscale * (x[i] - offset)), 0, nmax));
}

}  // namespace

float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L, float* offset) {
    FERRY_CHECK(n > 0 && n <= 256);
    float lo = std::min(*std::min_element(x, x + n), 0.0f);
    const float hi = *std::max_element(x, x + n);
    if (hi == lo) {
        std::fill(L, L + n, uint8_t(0));
        *offset = lo;
        return 0;
    }
    // The plain choice: lo -> 0, hi -> nmax.
    round_affine(n, nmax, x, float(nmax) / (hi - lo), lo, L);
    Affine best{(hi - lo) / float(nmax), lo, 0};
    best.err = affine_error(n, x, w, L, best.scale, best.offset);

    uint8_t cand[256];
    for (int k = -kSteps; k <= kSteps; ++k) {
        round_affine(n, nmax, x, (float(nmax) + kStep * float(k)) / (hi - lo), lo, cand);
        for (int pass = 0; pass < 2; ++pass) {
            const Affine a = solve_affine(n, x, w, cand);
            if (a.scale <= 0) break;
            if (a.err < best.err) {
                best = a;
                std::copy(cand, cand + n, L);
            }
            round_affine(n, nmax, x, 1.0f / a.scale, a.offset, cand);
        }
    }
    *offset = best.offset;
    return best.scale;
}

float fit_scale_symmetric(int n, int nneg, const float* x, const float* w, int8_t* L) {
    FERRY_CHECK(n > 0 && n <= 256);
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    if (amax == 0) {
        std::fill(L, L + n, int8_t(0));
        return 0;
    }
    auto round_codes = [&](float iscale, int8_t* out) {
        for (int i = 0; i < n; ++i) out[i] = int8_t(std::clamp(round_even(iscale * x[i]), -nneg, nneg - 1));
    };
    // Given codes, the best scale is sum(w x L) / sum(w L^2) and the error falls as
    // sum(w x L)^2 / sum(w L^2) grows, so candidates are ranked by that ratio.
    auto score = [&](const int8_t* codes, float* scale) {
        float slx = 0, sll = 0;
        for (int i = 0; i < n; ++i) {
            slx += w[i] * x[i] * float(codes[i]);
            sll += w[i] * float(codes[i]) * float(codes[i]);
        }
        *scale = sll > 0 ? slx / sll : 0;
        return sll > 0 ? slx * slx / sll : 0;
    };
    round_codes(-float(nneg) / max, L);
    float best_scale = 0;
    float best = score(L, &best_scale);
    int8_t cand[256];
    for (int k = -kSteps; k <= kSteps; ++k) {
        round_codes(-(float(nneg) + kStep * float(k)) / max, cand);
        for (int pass = 0; pass < 2; ++pass) {
            float scale = 0;
            const float s = score(cand, &scale);
            if (scale == 0) break;
            if (s > best) {
                best = s;
                best_scale = scale;
                std::copy(cand, cand + n, L);
            }
            round_codes(1.0f / scale, cand);
        }
    }
    return best_scale;
}

int nearest_grid_index(const int8_t grid[16], float v) {
    int best = 0;
    float best_err = std::fabs(v - float(grid[0]));
    for (int k = 1; k < 16; ++k) {
        const float err = std::fabs(v - float(grid[k]));
        if (err < best_err) {
            best = k;
            best_err = err;
        }
    }
    return best;
}

float fit_scale_grid(int n, const int8_t grid[16], const float* x, const float* w, uint8_t* L) {
    FERRY_CHECK(n > 0 && n <= 256);
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    if (amax == 0) {
        std::fill(L, L + n, uint8_t(nearest_grid_index(grid, 0.0f)));
        return 0;
    }
    auto round_codes = [&](float iscale, uint8_t* out) {
        for (int i = 0; i < n; ++i) out[i] = uint8_t(nearest_grid_index(grid, iscale * x[i]));
    };
    auto score = [&](const uint8_t* codes, float* scale) {
        float sgx = 0, sgg = 0;
        for (int i = 0; i < n; ++i) {
            const float g = float(grid[codes[i]]);
            sgx += w[i] * x[i] * g;
            sgg += w[i] * g * g;
        }
        *scale = sgg > 0 ? sgx / sgg : 0;
        return sgg > 0 ? sgx * sgx / sgg : 0;
    };
    // Plain choice: the largest element onto the grid's most negative value (its longest arm).
    const float g_lo = float(grid[0]);
    const float g_hi = float(grid[15]);
    round_codes(g_lo / max, L);
    float best_scale = 0;
    float best = score(L, &best_scale);
    uint8_t cand[256];
    for (const float end : {g_lo, g_hi}) {
        for (int k = -kSteps; k <= kSteps; ++k) {
            // Steps of 1% of the grid's reach, toward and beyond each end.
            round_codes((end + 0.01f * std::fabs(end) * float(k)) / max, cand);
            for (int pass = 0; pass < 2; ++pass) {
                float scale = 0;
                const float s = score(cand, &scale);
                if (scale == 0) break;
                if (s > best) {
                    best = s;
                    best_scale = scale;
                    std::copy(cand, cand + n, L);
                }
                round_codes(1.0f / scale, cand);
            }
        }
    }
    return best_scale;
}

}  // namespace ferry::quant
