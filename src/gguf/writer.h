// GGUF writer: metadata and tensors in, a valid v3 file out (tensor data aligned to
// `general.alignment`, default 32). Used by the quantizer and by tests to build fixtures.
// Tensors are written in the order they were added.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/ggml_type.h"
#include "core/result.h"
#include "gguf/value.h"

namespace ferry::gguf {

class Writer {
public:
    // Adds a metadata entry; duplicate keys are an error. Setting "general.alignment" (u32, a
    // power of two) changes the data alignment.
    Status add(std::string key, Value value);
    // Adds a tensor; `data` must hold exactly the bytes of shape `ne` (GGUF order) of `type`.
    Status add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> data);

    std::vector<uint8_t> to_bytes() const;
    Status write_file(const std::string& path) const;

private:
    struct PendingTensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        std::vector<uint8_t> data;
    };

    uint64_t alignment_ = 32;
    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<PendingTensor> tensors_;
    std::unordered_set<std::string> keys_;
    std::unordered_set<std::string> names_;
};

}  // namespace ferry::gguf
