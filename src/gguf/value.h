// GGUF metadata values.
//
// A value is a scalar (8/16/32/64-bit integers, f32, f64, bool), a string, or an array whose
// elements all have one type; arrays may nest (an array of arrays of any types). Numeric and bool
// array elements are kept packed in the file's little-endian layout, so a 250K-entry score table
// costs 1 MB, not 250K objects.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ferry::gguf {

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

constexpr uint32_t kValueTypeCount = 13;

std::string_view value_type_name(ValueType type);  // "u32", "string", "array", ...
// Bytes of one element in the file for fixed-size types (0 for STRING and ARRAY).
uint32_t value_type_size(ValueType type);

class Value {
public:
    Value() = default;

    static Value u8(uint8_t v) { return scalar(ValueType::U8, v); }
    static Value i8(int8_t v) { return scalar(ValueType::I8, v); }
    static Value u16(uint16_t v) { return scalar(ValueType::U16, v); }
    static Value i16(int16_t v) { return scalar(ValueType::I16, v); }
    static Value u32(uint32_t v) { return scalar(ValueType::U32, v); }
    static Value i32(int32_t v) { return scalar(ValueType::I32, v); }
    static Value u64(uint64_t v) { return scalar(ValueType::U64, v); }
    static Value i64(int64_t v) { return scalar(ValueType::I64, v); }
    static Value f32(float v) { return scalar(ValueType::F32, v); }
    static Value f64(double v) { return scalar(ValueType::F64, v); }
    static Value boolean(bool v) { return scalar(ValueType::BOOL, uint8_t(v ? 1 : 0)); }
    static Value string(std::string v);
    static Value string_array(std::vector<std::string> v);
    static Value array_of(std::vector<Value> elements);  // elements must share one type (checked)
    // Packed numeric array: T must match elem (e.g. float for F32, int32_t for I32).
    template <class T>
    static Value numeric_array(ValueType elem, const std::vector<T>& v);
    // Packed array from raw little-endian bytes (count * value_type_size(elem) bytes).
    static Value packed_array(ValueType elem, std::vector<uint8_t> raw);

    ValueType type() const { return type_; }
    bool is_array() const { return type_ == ValueType::ARRAY; }
    ValueType array_type() const { return elem_type_; }
    uint64_t array_size() const;

    // Scalar accessors; nullopt when the type does not fit the request. Integers of any width
    // convert when the value is representable; get_float also accepts integers.
    std::optional<uint64_t> get_uint() const;
    std::optional<int64_t> get_int() const;
    std::optional<double> get_float() const;
    std::optional<bool> get_bool() const;
    const std::string* get_string() const;

    // Array accessors.
    const std::vector<std::string>* get_strings() const;  // array of STRING
    const std::vector<Value>* get_arrays() const;         // array of ARRAY
    const std::vector<uint8_t>& packed() const { return raw_; }
    // Element i of a packed numeric array as a scalar Value.
    Value element(uint64_t i) const;
    // Whole packed numeric array converted to T, nullopt if an element does not fit T.
    template <class T>
    std::optional<std::vector<T>> get_array() const;

    // Short human-readable rendering: strings quoted and escaped, long arrays elided.
    std::string to_display(size_t max_elements = 8, size_t max_chars = 80) const;

    bool operator==(const Value& o) const;

private:
    template <class T>
    static Value scalar(ValueType t, T v) {
        Value r;
        r.type_ = t;
        r.raw_.resize(sizeof(T));
        std::memcpy(r.raw_.data(), &v, sizeof(T));
        return r;
    }

    ValueType type_ = ValueType::U32;
    ValueType elem_type_ = ValueType::U8;  // arrays only
    std::vector<uint8_t> raw_;             // scalar bytes, or packed array elements
    std::string str_;
    std::vector<std::string> strings_;
    std::vector<Value> arrays_;

    friend class Parser;
};

template <class T>
Value Value::numeric_array(ValueType elem, const std::vector<T>& v) {
    static_assert(std::is_arithmetic_v<T>);
    std::vector<uint8_t> raw(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
    Value r = packed_array(elem, std::move(raw));
    return r;
}

template <class T>
std::optional<std::vector<T>> Value::get_array() const {
    static_assert(std::is_arithmetic_v<T>);
    if (!is_array() || value_type_size(elem_type_) == 0) return std::nullopt;
    const uint64_t n = array_size();
    std::vector<T> out;
    out.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
        const Value e = element(i);
        if constexpr (std::is_floating_point_v<T>) {
            auto f = e.get_float();
            if (!f) return std::nullopt;
            out.push_back(T(*f));
        } else if constexpr (std::is_same_v<T, bool>) {
            auto b = e.get_bool();
            if (!b) return std::nullopt;
            out.push_back(*b);
        } else if constexpr (std::is_signed_v<T>) {
            auto x = e.get_int();
            if (!x || *x < int64_t(std::numeric_limits<T>::min()) || *x > int64_t(std::numeric_limits<T>::max()))
                return std::nullopt;
            out.push_back(T(*x));
        } else {
            auto x = e.get_uint();
            if (!x || *x > uint64_t(std::numeric_limits<T>::max())) return std::nullopt;
            out.push_back(T(*x));
        }
    }
    return out;
}

}  // namespace ferry::gguf
