#include "gguf/value.h"

#include <cinttypes>
#include <cstdio>

#include "core/check.h"

namespace ferry::gguf {

std::string_view value_type_name(ValueType type) {
    switch (type) {
        case ValueType::U8: return "u8";
        case ValueType::I8: return "i8";
        case ValueType::U16: return "u16";
        case ValueType::I16: return "i16";
        case ValueType::U32: return "u32";
        case ValueType::I32: return "i32";
        case ValueType::F32: return "f32";
        case ValueType::BOOL: return "bool";
        case ValueType::STRING: return "string";
        case ValueType::ARRAY: return "array";
        case ValueType::U64: return "u64";
        case ValueType::I64: return "i64";
        case ValueType::F64: return "f64";
    }
    return "?";
}

uint32_t value_type_size(ValueType type) {
    switch (type) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::BOOL: return 1;
        case ValueType::U16:
        case ValueType::I16: return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32: return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64: return 8;
        case ValueType::STRING:
        case ValueType::ARRAY: return 0;
    }
    return 0;
}

Value Value::string(std::string v) {
    Value r;
    r.type_ = ValueType::STRING;
    r.str_ = std::move(v);
    return r;
}

Value Value::string_array(std::vector<std::string> v) {
    Value r;
    r.type_ = ValueType::ARRAY;
    r.elem_type_ = ValueType::STRING;
    r.strings_ = std::move(v);
    return r;
}

Value Value::array_of(std::vector<Value> elements) {
    if (!elements.empty() && elements[0].type() != ValueType::ARRAY) {
        // An array of scalars or strings is stored packed; convert.
        const ValueType t = elements[0].type();
        for (const Value& e : elements) FERRY_CHECK(e.type() == t);
        if (t == ValueType::STRING) {
            std::vector<std::string> s;
            s.reserve(elements.size());
            for (Value& e : elements) s.push_back(std::move(e.str_));
            return string_array(std::move(s));
        }
        std::vector<uint8_t> raw;
        for (const Value& e : elements) raw.insert(raw.end(), e.raw_.begin(), e.raw_.end());
        return packed_array(t, std::move(raw));
    }
    Value r;
    r.type_ = ValueType::ARRAY;
    r.elem_type_ = ValueType::ARRAY;
    r.arrays_ = std::move(elements);
    return r;
}

Value Value::packed_array(ValueType elem, std::vector<uint8_t> raw) {
    const uint32_t size = value_type_size(elem);
    FERRY_CHECK(size != 0 && raw.size() % size == 0);
    Value r;
    r.type_ = ValueType::ARRAY;
    r.elem_type_ = elem;
    r.raw_ = std::move(raw);
    return r;
}

uint64_t Value::array_size() const {
    if (!is_array()) return 0;
    if (elem_type_ == ValueType::STRING) return strings_.size();
    if (elem_type_ == ValueType::ARRAY) return arrays_.size();
    return raw_.size() / value_type_size(elem_type_);
}

namespace {

template <class T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

}  // namespace

std::optional<int64_t> Value::get_int() const {
    switch (type_) {
        case ValueType::U8: return load<uint8_t>(raw_.data());
        case ValueType::I8: return load<int8_t>(raw_.data());
        case ValueType::U16: return load<uint16_t>(raw_.data());
        case ValueType::I16: return load<int16_t>(raw_.data());
        case ValueType::U32: return load<uint32_t>(raw_.data());
        case ValueType::I32: return load<int32_t>(raw_.data());
        case ValueType::I64: return load<int64_t>(raw_.data());
        case ValueType::U64: {
            const uint64_t v = load<uint64_t>(raw_.data());
            if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
            return int64_t(v);
        }
        default: return std::nullopt;
    }
}

std::optional<uint64_t> Value::get_uint() const {
    if (type_ == ValueType::U64) return load<uint64_t>(raw_.data());
    const auto v = get_int();
    if (!v || *v < 0) return std::nullopt;
    return uint64_t(*v);
}

std::optional<double> Value::get_float() const {
    if (type_ == ValueType::F32) return load<float>(raw_.data());
    if (type_ == ValueType::F64) return load<double>(raw_.data());
    if (type_ == ValueType::U64) return double(load<uint64_t>(raw_.data()));
    const auto v = get_int();
    if (!v) return std::nullopt;
    return double(*v);
}

std::optional<bool> Value::get_bool() const {
    if (type_ != ValueType::BOOL) return std::nullopt;
    return raw_[0] != 0;
}

const std::string* Value::get_string() const { return type_ == ValueType::STRING ? &str_ : nullptr; }

const std::vector<std::string>* Value::get_strings() const {
    return is_array() && elem_type_ == ValueType::STRING ? &strings_ : nullptr;
}

const std::vector<Value>* Value::get_arrays() const {
    return is_array() && elem_type_ == ValueType::ARRAY ? &arrays_ : nullptr;
}

Value Value::element(uint64_t i) const {
    const uint32_t size = value_type_size(elem_type_);
    FERRY_CHECK(is_array() && size != 0 && i < array_size());
    Value r;
    r.type_ = elem_type_;
    r.raw_.assign(raw_.begin() + ptrdiff_t(i * size), raw_.begin() + ptrdiff_t((i + 1) * size));
    return r;
}

namespace {

void append_escaped(std::string& out, const std::string& s, size_t max_chars) {
    out += '"';
    size_t n = 0;
    for (unsigned char c : s) {
        if (n++ >= max_chars) {
            out += "...";
            break;
        }
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
}

std::string scalar_text(const Value& v) {
    char buf[64];
    switch (v.type()) {
        case ValueType::F32:
        case ValueType::F64: std::snprintf(buf, sizeof buf, "%g", *v.get_float()); return buf;
        case ValueType::BOOL: return *v.get_bool() ? "true" : "false";
        case ValueType::U64: std::snprintf(buf, sizeof buf, "%" PRIu64, *v.get_uint()); return buf;
        default: std::snprintf(buf, sizeof buf, "%" PRId64, *v.get_int()); return buf;
    }
}

}  // namespace

std::string Value::to_display(size_t max_elements, size_t max_chars) const {
    std::string out;
    if (type_ == ValueType::STRING) {
        append_escaped(out, str_, max_chars);
        return out;
    }
    if (!is_array()) return scalar_text(*this);
    const uint64_t n = array_size();
    out += "[";
    for (uint64_t i = 0; i < n && i < max_elements; ++i) {
        if (i) out += ", ";
        if (elem_type_ == ValueType::STRING) {
            append_escaped(out, strings_[i], 32);
        } else if (elem_type_ == ValueType::ARRAY) {
            out += arrays_[i].to_display(max_elements, max_chars);
        } else {
            out += scalar_text(element(i));
        }
    }
    if (n > max_elements) out += ", ... (" + std::to_string(n) + " " + std::string(value_type_name(elem_type_)) + ")";
    out += "]";
    return out;
}

bool Value::operator==(const Value& o) const {
    return type_ == o.type_ && (!is_array() || elem_type_ == o.elem_type_) && raw_ == o.raw_ && str_ == o.str_ &&
           strings_ == o.strings_ && arrays_ == o.arrays_;
}

}  // namespace ferry::gguf
