// Tensor element types, numbered as GGUF/ggml number them, and their storage geometry.
//
// A row of n elements of type t occupies n / block_size(t) blocks of type_size(t) bytes; n must be a
// multiple of the block size. The geometry of every type a GGUF file may name is known here (so that a
// reader can bound sizes and `ferry inspect` can show any file), while the block formats ferry
// computes with live in src/quant.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ferry {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
};

struct TypeInfo {
    std::string_view name;  // as ggml spells it: "Q4_K", "BF16"
    uint32_t block_size;    // elements per block
    uint32_t type_size;     // bytes per block
    bool quantized;
};

// Geometry of a known type id, or nullopt for an id no ggml version defines (or that was removed).
std::optional<TypeInfo> type_info(uint32_t id);

// Geometry of a valid enum value.
const TypeInfo& type_info(GgmlType type);

inline std::string_view type_name(GgmlType type) { return type_info(type).name; }

// Looks a type up by its ggml name, case-insensitively ("q8_0", "F16").
std::optional<GgmlType> type_from_name(std::string_view name);

// Bytes of a row of n elements; nullopt if n is not a multiple of the block size.
std::optional<uint64_t> row_size(GgmlType type, uint64_t n);

}  // namespace ferry
