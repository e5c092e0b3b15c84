// Operators, attribute access and subscripts with the Python semantics jinja2 exposes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "text/jinja/interpreter.h"
#include "text/jinja/pystr.h"

namespace ferry::text::jinja {
namespace {

[[noreturn]] void fail_undefined(const Value& v) {
    fail(ErrorKind::undefined, v.str().empty() ? "undefined value used in an operation" : v.str());
}

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
    fail(ErrorKind::type,
         "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool is_int(const Value& v) { return v.kind() == Kind::integer || v.kind() == Kind::boolean; }

template <class Op>
int64_t checked(Op op, int64_t x, int64_t y) {
    int64_t r = 0;
    if (op(x, y, &r)) fail(ErrorKind::value, "integer overflow (values beyond 64 bits are not supported)");
    return r;
}
bool add_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); }
bool sub_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); }
bool mul_ovf(int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); }

Value repeat(const Value& seq, int64_t times, size_t max_bytes) {
    if (times < 0) times = 0;
    if (seq.is_string()) {
        const std::string& s = seq.str();
        if (!s.empty() && uint64_t(times) > max_bytes / s.size())
            fail(ErrorKind::limit, "string repetition exceeds the size limit");
        std::string out;
        out.reserve(s.size() * size_t(times));
        for (int64_t i = 0; i < times; ++i) out += s;
        return Value::string(std::move(out));
    }
    const List& items = seq.items();
    if (!items.empty() && uint64_t(times) > (max_bytes / 16) / items.size())
        fail(ErrorKind::limit, "list repetition exceeds the size limit");
    List out;
    for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
    return seq.kind() == Kind::tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// Python's `fmt % args`: %[flags][width][.precision] with conversions s r d i f F e E g G x X o c %.
Value percent_format(const std::string& fmt, const Value& args, size_t max_bytes) {
    List values = args.kind() == Kind::tuple ? args.items() : List{args};
    size_t next = 0;
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out.push_back(fmt[i]);
            continue;
        }
        size_t spec_start = i++;
        while (i < fmt.size() && std::strchr("-+ #0", fmt[i])) ++i;
        while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) ++i;
        if (i < fmt.size() && fmt[i] == '.') {
            ++i;
            while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) ++i;
        }
        if (i >= fmt.size()) fail(ErrorKind::value, "incomplete format");
        char c = fmt[i];
        std::string spec = fmt.substr(spec_start, i - spec_start);
        size_t digit_run = 0, longest_run = 0;
        for (char d : spec) {
            digit_run = std::isdigit(static_cast<unsigned char>(d)) ? digit_run + 1 : 0;
            longest_run = std::max(longest_run, digit_run);
        }
        if (longest_run > 3) fail(ErrorKind::value, "format width or precision too large");
        if (c == '%') {
            out.push_back('%');
            continue;
        }
        if (next >= values.size()) fail(ErrorKind::type, "not enough arguments for format string");
        const Value& v = values[next++];
        char buf[512];
        if (c == 's' || c == 'r') {
            std::string text = c == 's' ? to_str(v) : to_repr(v);
            if (spec.size() == 1)
                out += text;
            else {
                std::string f = spec + "s";
                int n = std::snprintf(nullptr, 0, f.c_str(), text.c_str());
                std::string tmp(size_t(n > 0 ? n : 0), '\0');
                std::snprintf(tmp.data(), tmp.size() + 1, f.c_str(), text.c_str());
                out += tmp;
            }
        } else if (std::strchr("dixXoc", c) && v.is_number()) {
            long long x = v.kind() == Kind::floating ? static_cast<long long>(v.as_double()) : v.as_int();
            if (c == 'i') c = 'd';
            std::snprintf(buf, sizeof buf, (spec + "ll" + c).c_str(), x);
            out += buf;
        } else if (std::strchr("fFeEgG", c) && v.is_number()) {
            std::snprintf(buf, sizeof buf, (spec + c).c_str(), v.as_double());
            out += buf;
        } else {
            fail(ErrorKind::type, std::string("unsupported format character '") + c + "' for " + type_name(v));
        }
        if (out.size() > max_bytes) fail(ErrorKind::limit, "formatted string exceeds the size limit");
    }
    if (next < values.size()) fail(ErrorKind::type, "not all arguments converted during string formatting");
    return Value::string(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
    if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
    bool ints = is_int(a) && is_int(b);
    if (op == "/") {
        if (b.as_double() == 0.0) fail(ErrorKind::value, "division by zero");
        return Value::floating(a.as_double() / b.as_double());
    }
    if (ints) {
        int64_t x = a.as_int(), y = b.as_int();
        if (op == "+") return Value::integer(checked(add_ovf, x, y));
        if (op == "-") return Value::integer(checked(sub_ovf, x, y));
        if (op == "*") return Value::integer(checked(mul_ovf, x, y));
        if (op == "//" || op == "%") {
            if (y == 0) fail(ErrorKind::value, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) fail(ErrorKind::value, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                --q;
                m += y;
            }
            return Value::integer(op == "//" ? q : m);
        }
        if (op == "**") {
            if (y < 0) return Value::floating(std::pow(double(x), double(y)));
            int64_t result = 1, base = x;
            while (y > 0) {
                if (y & 1) result = checked(mul_ovf, result, base);
                y >>= 1;
                if (y > 0) base = checked(mul_ovf, base, base);
            }
            return Value::integer(result);
        }
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value::floating(x + y);
    if (op == "-") return Value::floating(x - y);
    if (op == "*") return Value::floating(x * y);
    if (op == "//" || op == "%") {
        if (y == 0.0) fail(ErrorKind::value, "float division by zero");
        double m = std::fmod(x, y);
        if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
        if (op == "%") return Value::floating(m);
        double div = (x - m) / y, floored = std::floor(div);  // CPython's float floor division
        if (div - floored > 0.5) floored += 1.0;
        return Value::floating(floored);
    }
    return Value::floating(std::pow(x, y));
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, size_t max_bytes) {
    if (op == "~") {
        std::string s = to_str(a);
        append_str(s, b);
        if (s.size() > max_bytes) fail(ErrorKind::limit, "string concatenation exceeds the size limit");
        return Value::string(std::move(s));
    }
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    if (op == "+") {
        if (a.is_string() || b.is_string() || a.is_sequence() || b.is_sequence()) {
            if (a.kind() != b.kind()) {
                if (a.is_string() || a.is_sequence())
                    fail(ErrorKind::type, std::string("can only concatenate ") + type_name(a) + " (not \"" +
                                              type_name(b) + "\") to " + type_name(a));
                unsupported(op, a, b);
            }
            if (a.is_string()) {
                if (a.str().size() + b.str().size() > max_bytes)
                    fail(ErrorKind::limit, "string concatenation exceeds the size limit");
                return Value::string(a.str() + b.str());
            }
            if (a.items().size() + b.items().size() > max_bytes / 16)
                fail(ErrorKind::limit, "list concatenation exceeds the size limit");
            List out = a.items();
            out.insert(out.end(), b.items().begin(), b.items().end());
            return a.kind() == Kind::tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
        }
    }
    if (op == "*") {
        if ((a.is_string() || a.is_sequence()) && is_int(b)) return repeat(a, b.as_int(), max_bytes);
        if ((b.is_string() || b.is_sequence()) && is_int(a)) return repeat(b, a.as_int(), max_bytes);
    }
    if (op == "%" && a.is_string()) return percent_format(a.str(), b, max_bytes);
    return arithmetic(op, a, b);
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Kind::undefined: return false;
        case Kind::string:
            if (!item.is_string())
                fail(ErrorKind::type,
                     std::string("'in <string>' requires string as left operand, not ") + type_name(item));
            return container.str().find(item.str()) != std::string::npos;
        case Kind::list:
        case Kind::tuple:
            for (const Value& v : container.items())
                if (equals(v, item)) return true;
            return false;
        case Kind::dict: return container.dict_ref().find(item) != nullptr;
        default: fail(ErrorKind::type, std::string("argument of type '") + type_name(container) + "' is not iterable");
    }
}

Value get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Kind::undefined: fail_undefined(obj);
        case Kind::dict:
            if (const Value* v = obj.dict_ref().find(name)) return *v;
            break;
        case Kind::object:
            if (const Value* v = obj.object_ref().attrs.find(name)) return *v;
            break;
        default: break;
    }
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute '" + name + "'");
}

Value get_item(const Value& obj, const Value& key) {
    switch (obj.kind()) {
        case Kind::undefined: fail_undefined(obj);
        case Kind::dict:
            if (const Value* v = obj.dict_ref().find(key)) return *v;
            break;
        case Kind::list:
        case Kind::tuple:
            if (is_int(key)) {
                int64_t n = int64_t(obj.items().size());
                int64_t i = key.as_int();
                if (i < 0 && i >= -n) i += n;
                if (i >= 0 && i < n) return obj.items()[size_t(i)];
            }
            break;
        case Kind::string:
            if (is_int(key)) {
                std::u32string cps = decode(obj.str());
                int64_t n = int64_t(cps.size());
                int64_t i = key.as_int();
                if (i < 0 && i >= -n) i += n;
                if (i >= 0 && i < n) return Value::string(encode(std::u32string_view(&cps[size_t(i)], 1)));
            }
            break;
        case Kind::object:
            if (key.is_string()) return get_attr(obj, key.str());
            break;
        default: break;
    }
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute " + to_repr(key));
}

}  // namespace ferry::text::jinja
