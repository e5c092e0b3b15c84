// Scale searches shared by the reference quantizers of the K-quants and the IQ4 formats.
//
// Each search fits one sub-block x[0..n) with weights w[0..n) (w >= 0; the error measured is
// sum w[i] * (x[i] - xhat[i])^2) to a small integer code L[i] and returns the best scale it found.
// They try a spread of candidate scales around the plain "largest element maps to the end of the
// range" choice; for each candidate they round to codes, solve the weighted least-squares problem
// for the scale (and offset) given those codes, re-round with the solved scale and solve again, and
// keep the candidate with the smallest error. The plain round-to-nearest choice is one of the
// candidates, so a search is never worse than it (before the caller rounds the scale to fewer bits).
#pragma once

#include <cstdint>

namespace ferry::quant {

// x[i] ~= scale * L[i] + offset with L[i] in [0, nmax] and offset <= 0 (the K-quants store -offset
// as an unsigned "min"). Returns scale (>= 0), writes offset. All-equal input: scale 0.
float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L, float* offset);

// x[i] ~= scale * L[i] with L[i] in [-nneg, nneg - 1] (a two's-complement style range: Q3_K uses
// nneg = 4, Q6_K nneg = 32). The scale may be negative: the largest-magnitude element is steered to
// the -nneg end, which has one more level. All-zero input: scale 0, L = 0.
float fit_scale_symmetric(int n, int nneg, const float* x, const float* w, int8_t* L);

// x[i] ~= scale * grid[L[i]] with L[i] in [0, 16) and grid ascending (IQ4_NL's values).
float fit_scale_grid(int n, const int8_t grid[16], const float* x, const float* w, uint8_t* L);

// Index of the grid value nearest to v (the lower one on ties).
int nearest_grid_index(const int8_t grid[16], float v);

}  // namespace ferry::quant
