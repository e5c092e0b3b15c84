// Helpers shared by the quant tests: fixture files, random data, block buffers.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/ggml_type.h"
#include "quant/formats.h"

namespace ferry::quant::testing {

// The weight formats: everything in the table that has a dot product.
inline const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,    GgmlType::BF16,   GgmlType::Q4_0,
                                        GgmlType::Q4_1, GgmlType::Q5_0,   GgmlType::Q5_1,   GgmlType::Q8_0,
                                        GgmlType::Q2_K, GgmlType::Q3_K,   GgmlType::Q4_K,   GgmlType::Q5_K,
                                        GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4};

inline std::string lower_name(GgmlType t) {
    std::string s(type_name(t));
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A fixture written by scripts/gen_quant_fixtures.py (file format documented there).
struct Fixture {
    uint32_t type = 0, n_blocks = 0, block_size = 0, type_size = 0;
    std::vector<uint8_t> raw;   // n_blocks * type_size bytes
    std::vector<float> floats;  // n_blocks * block_size floats
    int64_t n() const { return int64_t(n_blocks) * block_size; }
};

// Loads tests/data/quant/<name>; deq = true for "FQD1" (raw then floats), false for "FQQ1".
inline bool load_fixture(const std::string& name, bool deq, Fixture* f) {
    std::ifstream in("tests/data/quant/" + name, std::ios::binary);
    if (!in) {
        ADD_FAILURE() << "missing fixture tests/data/quant/" << name << " (run from the repo root)";
        return false;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 20 || std::memcmp(bytes.data(), deq ? "FQD1" : "FQQ1", 4) != 0) {
        ADD_FAILURE() << name << ": bad header";
        return false;
    }
    uint32_t hdr[4];
    std::memcpy(hdr, bytes.data() + 4, sizeof(hdr));
    f->type = hdr[0];
    f->n_blocks = hdr[1];
    f->block_size = hdr[2];
    f->type_size = hdr[3];
    const size_t raw_bytes = size_t(f->n_blocks) * f->type_size;
    const size_t float_bytes = size_t(f->n_blocks) * f->block_size * 4;
    if (bytes.size() != 20 + raw_bytes + float_bytes) {
        ADD_FAILURE() << name << ": size " << bytes.size() << " does not match its header";
        return false;
    }
    const uint8_t* raw_at = bytes.data() + 20 + (deq ? 0 : float_bytes);
    const uint8_t* floats_at = bytes.data() + 20 + (deq ? raw_bytes : 0);
    f->raw.assign(raw_at, raw_at + raw_bytes);
    f->floats.resize(size_t(f->n()));
    std::memcpy(f->floats.data(), floats_at, float_bytes);
    return true;
}

inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// Bytes for a row of n elements of the format.
inline std::vector<uint8_t> row_buffer(const FormatTraits& f, int64_t n) {
    return std::vector<uint8_t>(size_t(n / f.block_size * f.type_size));
}

inline std::vector<float> dequantized(const FormatTraits& f, const std::vector<uint8_t>& q, int64_t n) {
    std::vector<float> y(static_cast<size_t>(n));
    f.dequantize_row(q.data(), y.data(), n);
    return y;
}

inline std::vector<uint8_t> quantized(const FormatTraits& f, const std::vector<float>& x) {
    std::vector<uint8_t> q = row_buffer(f, int64_t(x.size()));
    f.quantize_row(x.data(), q.data(), int64_t(x.size()));
    return q;
}

inline uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

}  // namespace ferry::quant::testing
