#include "text/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "text/jinja/pystr.h"

namespace ferry::text::jinja {

void fail(ErrorKind kind, std::string message) { throw JinjaError{kind, std::move(message)}; }

const Value* Dict::find(const Value& key) const {
    for (const auto& [k, v] : items)
        if (equals(k, key)) return &v;
    return nullptr;
}

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k.is_string() && k.str() == key) return &v;
    return nullptr;
}

Value Value::undefined(std::string hint) {
    Value v;
    if (!hint.empty()) v.s_ = std::make_shared<const std::string>(std::move(hint));
    return v;
}
Value Value::none() {
    Value v;
    v.kind_ = Kind::none;
    return v;
}
Value Value::boolean(bool b) {
    Value v;
    v.kind_ = Kind::boolean;
    v.b_ = b;
    return v;
}
Value Value::integer(int64_t i) {
    Value v;
    v.kind_ = Kind::integer;
    v.i_ = i;
    return v;
}
Value Value::floating(double d) {
    Value v;
    v.kind_ = Kind::floating;
    v.f_ = d;
    return v;
}
Value Value::string(std::string s) {
    Value v;
    v.kind_ = Kind::string;
    v.s_ = std::make_shared<const std::string>(std::move(s));
    return v;
}
Value Value::list(List items) {
    Value v;
    v.kind_ = Kind::list;
    v.l_ = std::make_shared<const List>(std::move(items));
    return v;
}
Value Value::tuple(List items) {
    Value v = list(std::move(items));
    v.kind_ = Kind::tuple;
    return v;
}
Value Value::dict(Dict d) {
    Value v;
    v.kind_ = Kind::dict;
    v.d_ = std::make_shared<const Dict>(std::move(d));
    return v;
}
Value Value::object(std::shared_ptr<Object> o) {
    Value v;
    v.kind_ = Kind::object;
    v.o_ = std::move(o);
    return v;
}
Value Value::callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
    Value v;
    v.kind_ = Kind::callable;
    v.c_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
    return v;
}

double Value::as_double() const {
    switch (kind_) {
        case Kind::floating: return f_;
        case Kind::integer: return double(i_);
        case Kind::boolean: return b_ ? 1.0 : 0.0;
        default: return 0.0;
    }
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::undefined:
        case Kind::none: return false;
        case Kind::boolean: return b_;
        case Kind::integer: return i_ != 0;
        case Kind::floating: return f_ != 0.0;
        case Kind::string: return !s_->empty();
        case Kind::list:
        case Kind::tuple: return !l_->empty();
        case Kind::dict: return !d_->items.empty();
        default: return true;
    }
}

const char* type_name(const Value& v) {
    switch (v.kind()) {
        case Kind::undefined: return "Undefined";
        case Kind::none: return "NoneType";
        case Kind::boolean: return "bool";
        case Kind::integer: return "int";
        case Kind::floating: return "float";
        case Kind::string: return "str";
        case Kind::list: return "list";
        case Kind::tuple: return "tuple";
        case Kind::dict: return "dict";
        case Kind::object: return v.object_ref().type == Object::Type::ns ? "Namespace" : "LoopContext";
        case Kind::callable: return "function";
    }
    return "object";
}

std::string float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);  // "-1.2345e+02"
    std::string sign;
    if (sci[0] == '-') {
        sign = "-";
        sci.erase(0, 1);
    }
    size_t e_pos = sci.find('e');
    std::string digits = sci.substr(0, e_pos);
    if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
    int exp = std::atoi(sci.c_str() + e_pos + 1);
    std::string out = sign;
    int n = int(digits.size());
    if (exp >= -4 && exp < 16) {  // Python's repr uses exponent form outside [-4, 16)
        if (exp >= n - 1) {
            out += digits + std::string(size_t(exp - (n - 1)), '0') + ".0";
        } else if (exp >= 0) {
            out += digits.substr(0, size_t(exp + 1)) + "." + digits.substr(size_t(exp + 1));
        } else {
            out += "0." + std::string(size_t(-exp - 1), '0') + digits;
        }
        return out;
    }
    out += digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    std::snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + buf;
}

static void append_repr_value(std::string& out, const Value& v);

static void append_container(std::string& out, const Value& v) {
    if (v.is_dict()) {
        out.push_back('{');
        bool first = true;
        for (const auto& [k, val] : v.dict_ref().items) {
            if (!first) out += ", ";
            first = false;
            append_repr_value(out, k);
            out += ": ";
            append_repr_value(out, val);
        }
        out.push_back('}');
        return;
    }
    bool tuple = v.kind() == Kind::tuple;
    out.push_back(tuple ? '(' : '[');
    const List& items = v.items();
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr_value(out, items[i]);
    }
    if (tuple && items.size() == 1) out.push_back(',');
    out.push_back(tuple ? ')' : ']');
}

void append_str(std::string& out, const Value& v) {
    switch (v.kind()) {
        case Kind::undefined: return;
        case Kind::none: out += "None"; return;
        case Kind::boolean: out += v.as_bool() ? "True" : "False"; return;
        case Kind::integer: out += std::to_string(v.as_int()); return;
        case Kind::floating: out += float_repr(v.as_double()); return;
        case Kind::string: out += v.str(); return;
        case Kind::list:
        case Kind::tuple:
        case Kind::dict: append_container(out, v); return;
        case Kind::object:
            if (v.object_ref().type == Object::Type::ns) {
                out += "<Namespace ";
                append_container(out, Value::dict(v.object_ref().attrs));
                out += ">";
            } else {
                out += "<LoopContext>";
            }
            return;
        case Kind::callable: out += "<function " + v.callable_ref().name + ">"; return;
    }
}

static void append_repr_value(std::string& out, const Value& v) {
    if (v.is_string())
        append_repr(out, v.str());
    else if (v.is_undefined())
        out += "Undefined";
    else
        append_str(out, v);
}

std::string to_str(const Value& v) {
    if (v.is_string()) return v.str();
    std::string out;
    append_str(out, v);
    return out;
}

std::string to_repr(const Value& v) {
    std::string out;
    append_repr_value(out, v);
    return out;
}

bool equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.kind() == Kind::floating || b.kind() == Kind::floating) return a.as_double() == b.as_double();
        return a.as_int() == b.as_int();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::undefined:
        case Kind::none: return true;
        case Kind::string: return a.str() == b.str();
        case Kind::list:
        case Kind::tuple: {
            const List& x = a.items();
            const List& y = b.items();
            if (x.size() != y.size()) return false;
            for (size_t i = 0; i < x.size(); ++i)
                if (!equals(x[i], y[i])) return false;
            return true;
        }
        case Kind::dict: {
            const Dict& x = a.dict_ref();
            const Dict& y = b.dict_ref();
            if (x.items.size() != y.items.size()) return false;
            for (const auto& [k, v] : x.items) {
                const Value* other = y.find(k);
                if (!other || !equals(v, *other)) return false;
            }
            return true;
        }
        case Kind::object: return &a.object_ref() == &b.object_ref();
        case Kind::callable: return &a.callable_ref() == &b.callable_ref();
        default: return false;
    }
}

bool less(const Value& a, const Value& b) {
    if (a.is_undefined() || b.is_undefined()) fail(ErrorKind::undefined, "cannot compare an undefined value");
    if (a.is_number() && b.is_number()) {
        if (a.kind() == Kind::floating || b.kind() == Kind::floating) return a.as_double() < b.as_double();
        return a.as_int() < b.as_int();
    }
    if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order = code point order
    if (a.kind() == b.kind() && a.is_sequence()) {
        const List& x = a.items();
        const List& y = b.items();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (!equals(x[i], y[i])) return less(x[i], y[i]);
        }
        return x.size() < y.size();
    }
    fail(ErrorKind::type,
         std::string("'<' not supported between instances of '") + type_name(a) + "' and '" + type_name(b) + "'");
}

size_t length(const Value& v) {
    switch (v.kind()) {
        case Kind::undefined: return 0;
        case Kind::string: return count_code_points(v.str());
        case Kind::list:
        case Kind::tuple: return v.items().size();
        case Kind::dict: return v.dict_ref().items.size();
        default: fail(ErrorKind::type, std::string("object of type '") + type_name(v) + "' has no len()");
    }
}

List iterate(const Value& v) {
    switch (v.kind()) {
        case Kind::undefined: return {};
        case Kind::list:
        case Kind::tuple: return v.items();
        case Kind::dict: {
            List keys;
            keys.reserve(v.dict_ref().items.size());
            for (const auto& kv : v.dict_ref().items) keys.push_back(kv.first);
            return keys;
        }
        case Kind::string: {
            List chars;
            std::u32string cps = decode(v.str());
            if (cps.size() > (1u << 20)) fail(ErrorKind::limit, "string too long to iterate (more than 1M characters)");
            chars.reserve(cps.size());
            for (char32_t c : cps) chars.push_back(Value::string(encode(std::u32string_view(&c, 1))));
            return chars;
        }
        default: fail(ErrorKind::type, std::string("'") + type_name(v) + "' object is not iterable");
    }
}

}  // namespace ferry::text::jinja
