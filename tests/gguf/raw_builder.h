// Builds GGUF bytes field by field, so tests can write files a correct writer never would.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ferry::gguf::testing {

class RawBuilder {
public:
    template <class T>
    RawBuilder& put(T v) {
        const size_t at = bytes.size();
        bytes.resize(at + sizeof(T));
        std::memcpy(bytes.data() + at, &v, sizeof(T));
        return *this;
    }
    RawBuilder& u8(uint8_t v) { return put(v); }
    RawBuilder& u32(uint32_t v) { return put(v); }
    RawBuilder& u64(uint64_t v) { return put(v); }
    RawBuilder& str(const std::string& s) {
        u64(s.size());
        bytes.insert(bytes.end(), s.begin(), s.end());
        return *this;
    }
    RawBuilder& raw(const std::string& s) {
        bytes.insert(bytes.end(), s.begin(), s.end());
        return *this;
    }
    RawBuilder& zeros(size_t n) {
        bytes.insert(bytes.end(), n, 0);
        return *this;
    }
    RawBuilder& pad_to(size_t alignment) {
        while (bytes.size() % alignment) bytes.push_back(0);
        return *this;
    }
    // "GGUF", version, n_tensors, n_kv
    RawBuilder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
    }
    // A kv with a u32 value.
    RawBuilder& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
    RawBuilder& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
    // A tensor info record.
    RawBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(uint32_t(ne.size()));
        for (uint64_t d : ne) u64(d);
        return u32(type).u64(offset);
    }

    std::vector<uint8_t> bytes;
};

}  // namespace ferry::gguf::testing
