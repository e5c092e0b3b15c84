#include "gguf/reader.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/checked_math.h"

namespace ferry::gguf {
namespace {

std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 96)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
    if (s.size() > 96) out += "...";
    return out;
}

}  // namespace

// Reads the file front to back with every read bounded by the bytes that remain.
class Parser {
public:
    explicit Parser(File& f) : f_(f), p_(f.data_.data()), size_(f.data_.size()) {}

    Status run() {
        FERRY_TRY(header());
        FERRY_TRY(metadata());
        FERRY_TRY(tensor_infos());
        return data_section();
    }

private:
    uint64_t remaining() const { return size_ - pos_; }

    Error fail(uint64_t at, const std::string& what) const {
        char buf[48];
        std::snprintf(buf, sizeof buf, "offset %" PRIu64 ": ", at);
        return make_error("invalid GGUF file '" + f_.path() + "': " + buf + what);
    }

    template <class T>
    Status read(T* out, const char* what) {
        if (remaining() < sizeof(T))
            return fail(pos_, std::string("truncated: need ") + std::to_string(sizeof(T)) + " bytes for " + what +
                                  ", " + std::to_string(remaining()) + " left");
        std::memcpy(out, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return {};
    }

    Status read_string(std::string* out, uint64_t max_len, const std::string& what) {
        const uint64_t at = pos_;
        uint64_t len = 0;
        FERRY_TRY(read(&len, (what + " length").c_str()));
        if (len > remaining())
            return fail(at, what + ": string length " + std::to_string(len) + " exceeds the " +
                                std::to_string(remaining()) + " bytes left in the file");
        if (len > max_len)
            return fail(at, what + ": string length " + std::to_string(len) + " exceeds the limit of " +
                                std::to_string(max_len));
        out->assign(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
        return {};
    }

    Status header() {
        uint32_t magic = 0;
        FERRY_TRY(read(&magic, "magic"));
        if (magic != kMagic) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "bad magic 0x%08x, expected \"GGUF\"", magic);
            return fail(0, buf);
        }
        FERRY_TRY(read(&f_.version_, "version"));
        const uint32_t v = f_.version_;
        if ((v & 0xffff) == 0 && v != 0)
            return fail(
                4, "version field 0x" + hex(v) +
                       " looks byte-swapped: this is a big-endian GGUF file; only little-endian files are supported");
        if (v == 1) return fail(4, "GGUF version 1 is not supported (32-bit counts); convert the file to v3");
        if (v != 2 && v != 3) return fail(4, "unsupported GGUF version " + std::to_string(v) + " (supported: 2, 3)");
        FERRY_TRY(read(&n_tensors_, "tensor count"));
        FERRY_TRY(read(&n_kv_, "metadata count"));
        // Smallest possible records: a kv is an 8-byte key length, 1 key byte, a 4-byte type and a
        // 1-byte value; a tensor info is 8+1 name, 4 n_dims, 8 ne, 4 type, 8 offset.
        if (n_kv_ > remaining() / 14)
            return fail(16, "metadata count " + std::to_string(n_kv_) + " is impossible for the " +
                                std::to_string(remaining()) + " bytes left");
        if (n_tensors_ > remaining() / 33)
            return fail(8, "tensor count " + std::to_string(n_tensors_) + " is impossible for the " +
                               std::to_string(remaining()) + " bytes left");
        return {};
    }

    static std::string hex(uint32_t v) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%08x", v);
        return buf;
    }

    Status value_type(ValueType* out, const std::string& what) {
        const uint64_t at = pos_;
        uint32_t t = 0;
        FERRY_TRY(read(&t, (what + " type").c_str()));
        if (t >= kValueTypeCount) return fail(at, what + ": unknown value type " + std::to_string(t));
        *out = ValueType(t);
        return {};
    }

    Status value(ValueType type, Value* out, const std::string& what, uint32_t depth) {
        out->type_ = type;
        if (type == ValueType::STRING) return read_string(&out->str_, UINT64_MAX, what);
        if (type != ValueType::ARRAY) {
            const uint32_t size = value_type_size(type);
            const uint64_t at = pos_;
            if (remaining() < size) return fail(at, what + ": truncated " + std::string(value_type_name(type)));
            out->raw_.assign(p_ + pos_, p_ + pos_ + size);
            pos_ += size;
            if (type == ValueType::BOOL && out->raw_[0] > 1)
                return fail(at, what + ": bool value " + std::to_string(out->raw_[0]) + " is neither 0 nor 1");
            return {};
        }
        return array(out, what, depth);
    }

    Status array(Value* out, const std::string& what, uint32_t depth) {
        const uint64_t at = pos_;
        if (depth >= kMaxArrayDepth)
            return fail(at, what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
        FERRY_TRY(value_type(&out->elem_type_, what + " array element"));
        uint64_t count = 0;
        FERRY_TRY(read(&count, (what + " array length").c_str()));
        const uint32_t elem_size = value_type_size(out->elem_type_);
        // Strings take at least their 8-byte length, nested arrays their 12-byte header.
        const uint64_t min_size = elem_size ? elem_size : (out->elem_type_ == ValueType::STRING ? 8 : 12);
        if (count > remaining() / min_size)
            return fail(
                at, what + ": array of " + std::to_string(count) + " " + std::string(value_type_name(out->elem_type_)) +
                        " needs at least " +
                        (count > UINT64_MAX / min_size ? std::string("more") : std::to_string(count * min_size)) +
                        " bytes, " + std::to_string(remaining()) + " left");
        if (elem_size) {
            out->raw_.assign(p_ + pos_, p_ + pos_ + count * elem_size);
            if (out->elem_type_ == ValueType::BOOL) {
                for (uint64_t i = 0; i < count; ++i)
                    if (out->raw_[i] > 1) return fail(pos_ + i, what + ": bool array element is neither 0 nor 1");
            }
            pos_ += count * elem_size;
            return {};
        }
        if (out->elem_type_ == ValueType::STRING) {
            out->strings_.resize(count);
            for (uint64_t i = 0; i < count; ++i)
                FERRY_TRY(read_string(&out->strings_[i], UINT64_MAX, what + "[" + std::to_string(i) + "]"));
            return {};
        }
        out->arrays_.resize(count);
        for (uint64_t i = 0; i < count; ++i) {
            Value& e = out->arrays_[i];
            e.type_ = ValueType::ARRAY;
            FERRY_TRY(array(&e, what + "[" + std::to_string(i) + "]", depth + 1));
        }
        return {};
    }

    Status metadata() {
        f_.kv_.reserve(n_kv_);
        for (uint64_t i = 0; i < n_kv_; ++i) {
            const uint64_t at = pos_;
            KeyValue kv;
            FERRY_TRY(read_string(&kv.key, kMaxKeyLength, "metadata key #" + std::to_string(i)));
            if (kv.key.empty()) return fail(at, "metadata key #" + std::to_string(i) + " is empty");
            const std::string what = "key '" + printable(kv.key) + "'";
            if (f_.kv_index_.count(kv.key)) return fail(at, "duplicate " + what);
            ValueType type;
            FERRY_TRY(value_type(&type, what));
            FERRY_TRY(value(type, &kv.value, what, 0));
            f_.kv_index_.emplace(kv.key, f_.kv_.size());
            f_.kv_.push_back(std::move(kv));
        }
        if (const Value* a = f_.find("general.alignment")) {
            const auto v = a->get_uint();
            if (a->type() != ValueType::U32 || !v || !is_power_of_two(*v) || *v > kMaxAlignment)
                return fail(0, "key 'general.alignment' must be a u32 power of two <= " +
                                   std::to_string(kMaxAlignment) + ", got " + a->to_display());
            f_.alignment_ = *v;
        }
        return {};
    }

    Status tensor_infos() {
        f_.tensors_.reserve(n_tensors_);
        for (uint64_t i = 0; i < n_tensors_; ++i) {
            const uint64_t at = pos_;
            TensorInfo t;
            FERRY_TRY(read_string(&t.name, kMaxTensorNameLength, "tensor #" + std::to_string(i) + " name"));
            if (t.name.empty()) return fail(at, "tensor #" + std::to_string(i) + " has an empty name");
            const std::string what = "tensor '" + printable(t.name) + "'";
            if (f_.tensor_index_.count(t.name)) return fail(at, "duplicate " + what);
            uint32_t n_dims = 0;
            FERRY_TRY(read(&n_dims, "n_dims"));
            if (n_dims == 0 || n_dims > kMaxDims)
                return fail(at,
                            what + ": n_dims " + std::to_string(n_dims) + " outside 1.." + std::to_string(kMaxDims));
            t.n_dims = int(n_dims);
            uint64_t n_elements = 1;
            for (uint32_t d = 0; d < n_dims; ++d) {
                uint64_t ne = 0;
                FERRY_TRY(read(&ne, "ne"));
                if (ne > uint64_t(INT64_MAX) || !checked_mul(n_elements, ne, &n_elements) ||
                    n_elements > uint64_t(INT64_MAX))
                    return fail(at, what + ": shape overflows (dimension " + std::to_string(d) + " = " +
                                        std::to_string(ne) + ")");
                t.ne[d] = int64_t(ne);
            }
            const uint64_t type_at = pos_;
            uint32_t type_id = 0;
            FERRY_TRY(read(&type_id, "tensor type"));
            const auto info = type_info(type_id);
            if (!info) return fail(type_at, what + ": unknown ggml type id " + std::to_string(type_id));
            t.type = GgmlType(type_id);
            if (uint64_t(t.ne[0]) % info->block_size != 0)
                return fail(at, what + ": row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                                    std::string(info->name) + " block size " + std::to_string(info->block_size));
            uint64_t blocks = n_elements / info->block_size;
            if (!checked_mul(blocks, info->type_size, &t.size)) return fail(at, what + ": byte size overflows");
            FERRY_TRY(read(&t.offset, "tensor offset"));
            f_.tensor_index_.emplace(t.name, f_.tensors_.size());
            f_.tensors_.push_back(std::move(t));
        }
        return {};
    }

    Status data_section() {
        if (!checked_align_up(pos_, f_.alignment_, &f_.data_offset_)) return fail(pos_, "data offset overflows");
        if (f_.tensors_.empty()) return {};
        if (f_.data_offset_ > size_)
            return fail(pos_, "file ends before the tensor data section (data offset " +
                                  std::to_string(f_.data_offset_) + ", file size " + std::to_string(size_) + ")");
        const uint64_t data_size = size_ - f_.data_offset_;
        std::vector<const TensorInfo*> by_offset;
        by_offset.reserve(f_.tensors_.size());
        for (const TensorInfo& t : f_.tensors_) {
            const std::string what = "tensor '" + printable(t.name) + "'";
            if (t.offset % f_.alignment_ != 0)
                return fail(f_.data_offset_, what + ": data offset " + std::to_string(t.offset) +
                                                 " is not a multiple of the alignment " +
                                                 std::to_string(f_.alignment_));
            uint64_t end = 0;
            if (!checked_add(t.offset, t.size, &end) || end > data_size)
                return fail(f_.data_offset_, what + ": data [" + std::to_string(t.offset) + ", +" +
                                                 std::to_string(t.size) + ") lies past the end of the file (" +
                                                 std::to_string(data_size) + " data bytes)");
            by_offset.push_back(&t);
        }
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
        for (size_t i = 1; i < by_offset.size(); ++i) {
            const TensorInfo& a = *by_offset[i - 1];
            const TensorInfo& b = *by_offset[i];
            if (a.offset + a.size > b.offset && a.size != 0 && b.size != 0)
                return fail(f_.data_offset_ + b.offset,
                            "tensor '" + printable(b.name) + "' overlaps tensor '" + printable(a.name) + "'");
        }
        return {};
    }

    File& f_;
    const uint8_t* p_;
    uint64_t size_;
    uint64_t pos_ = 0;
    uint64_t n_tensors_ = 0;
    uint64_t n_kv_ = 0;
};

Result<File> File::open(const std::string& path, FileData::Mode mode) {
    auto data = FileData::open(path, mode);
    if (!data.ok()) return data.error();
    return parse(std::move(data).value());
}

Result<File> File::parse(FileData data) {
    File f;
    f.data_ = std::move(data);
    Parser parser(f);
    FERRY_TRY(parser.run());
    return f;
}

const Value* File::find(std::string_view key) const {
    const auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    const auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor File::tensor(const TensorInfo& info) const {
    Tensor t;
    t.name = info.name;
    t.type = info.type;
    t.n_dims = info.n_dims;
    t.ne = info.ne;
    t.nb = contiguous_strides(info.type, info.ne);
    t.data = tensor_data(info);
    return t;
}

}  // namespace ferry::gguf
