#include "gguf/writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/checked_math.h"
#include "core/tensor.h"
#include "gguf/reader.h"

namespace ferry::gguf {
namespace {

class Bytes {
public:
    explicit Bytes(std::vector<uint8_t>& out) : out_(out) {}

    template <class T>
    void put(T v) {
        const size_t at = out_.size();
        out_.resize(at + sizeof(T));
        std::memcpy(out_.data() + at, &v, sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        out_.insert(out_.end(), s.begin(), s.end());
    }
    void put_value(const Value& v) {
        if (v.type() == ValueType::STRING) return put_string(*v.get_string());
        if (!v.is_array()) {
            out_.insert(out_.end(), v.packed().begin(), v.packed().end());
            return;
        }
        put<uint32_t>(uint32_t(v.array_type()));
        put<uint64_t>(v.array_size());
        if (const auto* s = v.get_strings()) {
            for (const std::string& e : *s) put_string(e);
        } else if (const auto* a = v.get_arrays()) {
            for (const Value& e : *a) put_value(e);
        } else {
            out_.insert(out_.end(), v.packed().begin(), v.packed().end());
        }
    }
    void pad_to(uint64_t alignment) {
        while (out_.size() % alignment != 0) out_.push_back(0);
    }

private:
    std::vector<uint8_t>& out_;
};

}  // namespace

Status Writer::add(std::string key, Value value) {
    if (key.empty() || key.size() > kMaxKeyLength) return make_error("gguf writer: bad key length");
    if (!keys_.insert(key).second) return make_error("gguf writer: duplicate key '" + key + "'");
    if (key == "general.alignment") {
        const auto a = value.get_uint();
        if (value.type() != ValueType::U32 || !a || !is_power_of_two(*a) || *a > kMaxAlignment)
            return make_error("gguf writer: general.alignment must be a u32 power of two");
        alignment_ = *a;
    }
    kv_.emplace_back(std::move(key), std::move(value));
    return {};
}

Status Writer::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
    const std::string what = "gguf writer: tensor '" + name + "'";
    if (name.empty() || name.size() > kMaxTensorNameLength) return make_error(what + ": bad name length");
    if (ne.empty() || ne.size() > size_t(kMaxDims)) return make_error(what + ": needs 1 to 4 dimensions");
    uint64_t n = 1;
    for (int64_t d : ne) {
        if (d < 0 || !checked_mul(n, uint64_t(d), &n)) return make_error(what + ": bad shape");
    }
    const TypeInfo& info = type_info(type);
    if (uint64_t(ne[0]) % info.block_size != 0) return make_error(what + ": row length not a multiple of the block");
    if (n / info.block_size * info.type_size != data.size())
        return make_error(what + ": " + std::to_string(data.size()) + " data bytes, shape needs " +
                          std::to_string(n / info.block_size * info.type_size));
    if (!names_.insert(name).second) return make_error(what + ": duplicate name");
    tensors_.push_back({std::move(name), type, std::move(ne), std::move(data)});
    return {};
}

std::vector<uint8_t> Writer::to_bytes() const {
    std::vector<uint8_t> out;
    Bytes b(out);
    b.put<uint32_t>(kMagic);
    b.put<uint32_t>(3);
    b.put<uint64_t>(tensors_.size());
    b.put<uint64_t>(kv_.size());
    for (const auto& [key, value] : kv_) {
        b.put_string(key);
        b.put<uint32_t>(uint32_t(value.type()));
        b.put_value(value);
    }
    uint64_t offset = 0;
    for (const PendingTensor& t : tensors_) {
        b.put_string(t.name);
        b.put<uint32_t>(uint32_t(t.ne.size()));
        for (int64_t d : t.ne) b.put<uint64_t>(uint64_t(d));
        b.put<uint32_t>(uint32_t(t.type));
        b.put<uint64_t>(offset);
        offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    b.pad_to(alignment_);
    for (const PendingTensor& t : tensors_) {
        out.insert(out.end(), t.data.begin(), t.data.end());
        b.pad_to(alignment_);
    }
    return out;
}

Status Writer::write_file(const std::string& path) const {
    const std::vector<uint8_t> bytes = to_bytes();
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) return make_error("cannot create '" + path + "': " + std::strerror(errno));
    if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
        return make_error("cannot write '" + path + "': " + std::strerror(errno));
    if (std::fclose(f.release()) != 0) return make_error("cannot close '" + path + "': " + std::strerror(errno));
    return {};
}

}  // namespace ferry::gguf
