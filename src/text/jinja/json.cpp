#include "text/jinja/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/jinja/pystr.h"

namespace ferry::text::jinja {

Value from_json(const nlohmann::ordered_json& j) {
    using T = nlohmann::ordered_json::value_t;
    switch (j.type()) {
        case T::null:
        case T::discarded: return Value::none();
        case T::boolean: return Value::boolean(j.get<bool>());
        case T::number_integer: return Value::integer(j.get<int64_t>());
        case T::number_unsigned: {
            uint64_t u = j.get<uint64_t>();
            if (u > uint64_t(INT64_MAX)) return Value::floating(double(u));
            return Value::integer(int64_t(u));
        }
        case T::number_float: return Value::floating(j.get<double>());
        case T::string: return Value::string(j.get<std::string>());
        case T::array: {
            List items;
            items.reserve(j.size());
            for (const auto& e : j) items.push_back(from_json(e));
            return Value::list(std::move(items));
        }
        case T::object: {
            Dict d;
            d.items.reserve(j.size());
            for (const auto& [k, v] : j.items()) d.items.emplace_back(Value::string(k), from_json(v));
            return Value::dict(std::move(d));
        }
        case T::binary: break;
    }
    fail(ErrorKind::type, "binary JSON values are not supported");
}

namespace {

class JsonWriter {
public:
    JsonWriter(const JsonStyle& style, size_t max_bytes) : style_(style), max_bytes_(max_bytes) {
        bool indented = style.indent >= 0 || !style.indent_str.empty();
        item_sep_ = !style.item_separator.empty() ? style.item_separator : (indented ? "," : ", ");
        key_sep_ = !style.key_separator.empty() ? style.key_separator : ": ";
        if (!style.indent_str.empty())
            indent_unit_ = style.indent_str;
        else if (style.indent >= 0)
            indent_unit_ = std::string(size_t(style.indent), ' ');
        indented_ = indented;
    }

    std::string take() { return std::move(out_); }

    void write(const Value& v, int level) {
        if (level > 512) fail(ErrorKind::value, "tojson: value nested too deeply");
        check();
        switch (v.kind()) {
            case Kind::none: out_ += "null"; return;
            case Kind::boolean: out_ += v.as_bool() ? "true" : "false"; return;
            case Kind::integer: out_ += std::to_string(v.as_int()); return;
            case Kind::floating: write_float(v.as_double()); return;
            case Kind::string: write_string(v.str()); return;
            case Kind::list:
            case Kind::tuple: write_list(v.items(), level); return;
            case Kind::dict: write_dict(v.dict_ref(), level); return;
            default: fail(ErrorKind::type, std::string("Object of type ") + type_name(v) + " is not JSON serializable");
        }
    }

private:
    const JsonStyle& style_;
    size_t max_bytes_;
    std::string out_, item_sep_, key_sep_, indent_unit_;
    bool indented_ = false;

    void check() const {
        if (out_.size() > max_bytes_) fail(ErrorKind::limit, "tojson output exceeds the size limit");
    }

    void newline(int level) {
        if (!indented_) return;
        out_.push_back('\n');
        for (int i = 0; i < level; ++i) out_ += indent_unit_;
    }

    void write_float(double d) {
        if (std::isnan(d))
            out_ += "NaN";
        else if (std::isinf(d))
            out_ += d < 0 ? "-Infinity" : "Infinity";
        else
            out_ += float_repr(d);
    }

    void write_string(const std::string& s) {
        out_.push_back('"');
        char buf[16];
        for (char32_t c : decode(s)) {
            switch (c) {
                case '"': out_ += "\\\""; continue;
                case '\\': out_ += "\\\\"; continue;
                case '\n': out_ += "\\n"; continue;
                case '\r': out_ += "\\r"; continue;
                case '\t': out_ += "\\t"; continue;
                case '\b': out_ += "\\b"; continue;
                case '\f': out_ += "\\f"; continue;
                default: break;
            }
            if (c < 0x20 || (style_.ensure_ascii && c > 0x7E)) {
                if (c >= 0x10000) {
                    char32_t v = c - 0x10000;
                    std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", unsigned(0xD800 + (v >> 10)),
                                  unsigned(0xDC00 + (v & 0x3FF)));
                } else {
                    std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
                }
                out_ += buf;
            } else {
                utf8_append_cp(c);
            }
        }
        out_.push_back('"');
    }

    void utf8_append_cp(char32_t c) { out_ += encode(std::u32string_view(&c, 1)); }

    void write_list(const List& items, int level) {
        if (items.empty()) {
            out_ += "[]";
            return;
        }
        out_.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) out_ += item_sep_;
            newline(level + 1);
            write(items[i], level + 1);
        }
        newline(level);
        out_.push_back(']');
    }

    std::string key_text(const Value& k) {
        switch (k.kind()) {
            case Kind::string: return k.str();
            case Kind::none: return "null";
            case Kind::boolean: return k.as_bool() ? "true" : "false";
            case Kind::integer: return std::to_string(k.as_int());
            case Kind::floating: return float_repr(k.as_double());
            default:
                fail(ErrorKind::type, std::string("keys must be str, int, float, bool or None, not ") + type_name(k));
        }
    }

    void write_dict(const Dict& d, int level) {
        if (d.items.empty()) {
            out_ += "{}";
            return;
        }
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [k, v] : d.items) entries.emplace_back(key_text(k), &v);
        if (style_.sort_keys)
            std::stable_sort(entries.begin(), entries.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
        out_.push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
            if (i) out_ += item_sep_;
            newline(level + 1);
            write_string(entries[i].first);
            out_ += key_sep_;
            write(*entries[i].second, level + 1);
        }
        newline(level);
        out_.push_back('}');
    }
};

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style, size_t max_bytes) {
    JsonWriter w(style, max_bytes);
    w.write(v, 0);
    return w.take();
}

}  // namespace ferry::text::jinja
