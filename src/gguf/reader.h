// GGUF reader.
//
// Layout (all little-endian; v2 and v3 differ from v1 only in 64-bit counts, v3 adds nothing the
// reader must know beyond its version number):
//
//     u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//     n_kv ×      { string key | u32 value_type | value }
//     n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//     padding to `general.alignment` (default 32)
//     tensor data; each tensor at data_offset + offset, offset a multiple of the alignment
//
//     string = u64 length | bytes (no terminator); array = u32 elem_type | u64 count | elements
//
// Every file is hostile. Each count and length is checked against the bytes that remain before
// anything is allocated; sizes use checked arithmetic; dims, types, alignment, nesting depth and
// name lengths are bounded; tensor data must lie inside the file, aligned, without overlaps; keys
// and tensor names must be unique. Errors name the key or tensor and the file offset.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/ggml_type.h"
#include "core/mapped_file.h"
#include "core/result.h"
#include "core/tensor.h"
#include "gguf/value.h"

namespace ferry::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxAlignment = 1u << 20;
constexpr uint32_t kMaxArrayDepth = 8;
constexpr uint64_t kMaxKeyLength = 1u << 16;
constexpr uint64_t kMaxTensorNameLength = 256;

struct KeyValue {
    std::string key;
    Value value;
};

struct TensorInfo {
    std::string name;
    GgmlType type = GgmlType::F32;
    int n_dims = 0;
    std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
    uint64_t offset = 0;  // relative to the start of the data section
    uint64_t size = 0;    // bytes

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
public:
    // Opens and validates a file; `mode` chooses mmap (default) or a read into RAM (--no-mmap).
    static Result<File> open(const std::string& path, FileData::Mode mode = FileData::Mode::Mmap);
    // Validates bytes already in memory.
    static Result<File> parse(FileData data);

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return data_.size(); }
    const std::string& path() const { return data_.path(); }
    FileData::Mode mode() const { return data_.mode(); }

    const std::vector<KeyValue>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    const uint8_t* tensor_data(const TensorInfo& info) const { return data_.data() + data_offset_ + info.offset; }
    // A view of the tensor's bytes, valid while this File lives.
    Tensor tensor(const TensorInfo& info) const;

private:
    File() = default;
    friend class Parser;

    FileData data_;
    uint32_t version_ = 0;
    uint64_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<KeyValue> kv_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace ferry::gguf
