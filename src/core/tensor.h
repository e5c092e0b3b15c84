// A tensor is a typed view of bytes that someone else owns (a mapped GGUF file, a scratch buffer).
//
// Shapes use GGUF/ggml order throughout ferry: ne[0] is the innermost (contiguous) dimension, so a
// weight "W (n_out, n_in)" in math order is stored with ne = {n_in, n_out}: each of the n_out rows
// holds n_in elements. nb[i] is the stride in bytes of dimension i; for a quantized type nb[0] is
// the block size in bytes and rows are whole blocks. Unused dimensions have ne = 1.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/ggml_type.h"

namespace ferry {

constexpr int kMaxDims = 4;

struct Tensor {
    std::string name;
    GgmlType type = GgmlType::F32;
    int n_dims = 0;
    std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
    std::array<uint64_t, kMaxDims> nb{0, 0, 0, 0};
    const void* data = nullptr;

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    uint64_t n_bytes() const { return nb[3] * uint64_t(ne[3]); }
};

// Contiguous strides for a shape (the caller has checked that ne[0] is a multiple of the block).
inline std::array<uint64_t, kMaxDims> contiguous_strides(GgmlType type, const std::array<int64_t, kMaxDims>& ne) {
    const TypeInfo& info = type_info(type);
    std::array<uint64_t, kMaxDims> nb{};
    nb[0] = info.type_size;
    nb[1] = uint64_t(ne[0]) / info.block_size * info.type_size;
    nb[2] = nb[1] * uint64_t(ne[1]);
    nb[3] = nb[2] * uint64_t(ne[2]);
    return nb;
}

}  // namespace ferry
