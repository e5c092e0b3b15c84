// Helpers shared by the CPU backend tests: seeded random data, quantized random weights, NMSE.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "quant/formats.h"

namespace ferry::cpu_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// sum (a - b)^2 / sum b^2 (b the reference).
inline double nmse(std::span<const float> got, std::span<const float> want) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
        const double d = double(got[i]) - double(want[i]);
        err += d * d;
        ref += double(want[i]) * double(want[i]);
    }
    return ref == 0 ? err : err / ref;
}

// A weight {n_in, n_out} of `type` made by the reference quantizer from random floats.
struct Weight {
    std::vector<uint8_t> bytes;
    Tensor t;
    int64_t row_bytes = 0;
};

inline Weight make_weight(GgmlType type, int64_t n_in, int64_t n_out, uint32_t seed) {
    const quant::FormatTraits* f = quant::find_format(type);
    Weight w;
    w.row_bytes = n_in / f->block_size * f->type_size;
    w.bytes.resize(size_t(w.row_bytes * n_out));
    const std::vector<float> src = random_floats(size_t(n_in * n_out), seed);
    for (int64_t o = 0; o < n_out; ++o) f->quantize_row(src.data() + o * n_in, w.bytes.data() + o * w.row_bytes, n_in);
    w.t.type = type;
    w.t.n_dims = 2;
    w.t.ne = {n_in, n_out, 1, 1};
    w.t.nb = contiguous_strides(type, w.t.ne);
    w.t.data = w.bytes.data();
    return w;
}

// Every weight type with a vec_dot (all of them get a CPU matmul, fast kernel or scalar fallback).
inline std::vector<GgmlType> weight_types() {
    std::vector<GgmlType> out;
    for (const quant::FormatTraits& f : quant::all_formats())
        if (f.vec_dot != nullptr) out.push_back(f.type);
    return out;
}

}  // namespace ferry::cpu_test
