// Tests, str/dict/list methods and global functions of the sandboxed environment.
#include "text/jinja/builtins.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "text/jinja/pystr.h"

namespace ferry::text::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

bool is_int(const Value& v) { return v.kind() == Kind::integer || v.kind() == Kind::boolean; }

const Value& arg0(const CallArgs& a, const char* test) {
    if (a.positional.empty()) fail(ErrorKind::type, std::string("test '") + test + "' needs an argument");
    return a.positional[0];
}

bool lower_or_upper(const Value& v, bool want_lower) {
    std::string s = to_str(v);
    bool cased = false;
    for (char32_t c : decode(s)) {
        std::string one = encode(std::u32string_view(&c, 1));
        std::string lo = py_lower(one), up = py_upper(one);
        if (lo == up) continue;
        cased = true;
        if (want_lower ? one != lo : one != up) return false;
    }
    return cased;
}

}  // namespace

bool has_test(std::string_view n) {
    static const char* const names[] = {
        "defined",     "undefined", "none",  "boolean", "string",  "number", "integer", "float", "mapping", "iterable",
        "sequence",    "callable",  "true",  "false",   "equalto", "eq",     "==",      "ne",    "!=",      "lt",
        "<",           "gt",        ">",     "le",      "<=",      "ge",     ">=",      "in",    "odd",     "even",
        "divisibleby", "lower",     "upper", "sameas",  "escaped", "filter", "test"};
    return std::any_of(std::begin(names), std::end(names), [&](const char* x) { return n == x; });
}

bool call_test(Interpreter&, const std::string& n, const Value& v, CallArgs& a) {
    Kind k = v.kind();
    if (n == "defined") return !v.is_undefined();
    if (n == "undefined") return v.is_undefined();
    if (n == "none") return v.is_none();
    if (n == "boolean") return k == Kind::boolean;
    if (n == "true") return k == Kind::boolean && v.as_bool();
    if (n == "false") return k == Kind::boolean && !v.as_bool();
    if (n == "string") return k == Kind::string;
    if (n == "number") return v.is_number();
    if (n == "integer") return k == Kind::integer;
    if (n == "float") return k == Kind::floating;
    if (n == "mapping") return k == Kind::dict;
    if (n == "iterable") return k == Kind::undefined || k == Kind::string || v.is_sequence() || k == Kind::dict;
    if (n == "sequence") return k == Kind::undefined || k == Kind::string || v.is_sequence() || k == Kind::dict;
    if (n == "callable") return k == Kind::callable;
    if (n == "escaped") return false;
    if (n == "equalto" || n == "eq" || n == "==") return equals(v, arg0(a, "eq"));
    if (n == "ne" || n == "!=") return !equals(v, arg0(a, "ne"));
    if (n == "lt" || n == "<") return less(v, arg0(a, "lt"));
    if (n == "gt" || n == ">") return less(arg0(a, "gt"), v);
    if (n == "le" || n == "<=") return less(v, arg0(a, "le")) || equals(v, arg0(a, "le"));
    if (n == "ge" || n == ">=") return less(arg0(a, "ge"), v) || equals(v, arg0(a, "ge"));
    if (n == "in") return contains(arg0(a, "in"), v);
    if (n == "sameas") {
        const Value& o = arg0(a, "sameas");
        if (k != o.kind()) return false;
        if (k == Kind::none || k == Kind::undefined) return true;
        if (k == Kind::boolean) return v.as_bool() == o.as_bool();
        return k != Kind::string && k != Kind::integer && k != Kind::floating && equals(v, o);
    }
    if (n == "odd" || n == "even") {
        if (!is_int(v)) fail(ErrorKind::type, "not all arguments converted during string formatting");
        return (v.as_int() % 2 != 0) == (n == "odd");
    }
    if (n == "divisibleby") {
        const Value& d = arg0(a, "divisibleby");
        if (!is_int(v) || !is_int(d)) fail(ErrorKind::type, "divisibleby needs integers");
        if (d.as_int() == 0) fail(ErrorKind::value, "integer division or modulo by zero");
        if (d.as_int() == -1) return true;
        return v.as_int() % d.as_int() == 0;
    }
    if (n == "lower") return lower_or_upper(v, true);
    if (n == "upper") return lower_or_upper(v, false);
    if (n == "filter") return has_filter(to_str(arg0(a, "filter")));
    if (n == "test") return has_test(to_str(arg0(a, "test")));
    fail(ErrorKind::syntax, "No test named '" + n + "'.");
}

namespace {

const Value* opt(const CallArgs& a, size_t i, std::string_view name) {
    const Value* v = a.get(i, name);
    return v && !v->is_none() ? v : nullptr;
}

std::string need_str(const CallArgs& a, size_t i, std::string_view name, const char* method) {
    const Value* v = a.get(i, name);
    if (!v || !v->is_string())
        fail(ErrorKind::type, std::string(method) + "() argument must be str, not " + (v ? type_name(*v) : "nothing"));
    return v->str();
}

// str.format with {} {0} {name} fields, !r / !s conversions and {{ }} escapes; no format specs.
std::string str_format(const std::string& fmt, const CallArgs& a, size_t max_bytes) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}')
                ++i;
            else
                fail(ErrorKind::value, "Single '}' encountered in format string");
            out.push_back('}');
            continue;
        }
        if (c != '{') {
            out.push_back(c);
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out.push_back('{');
            ++i;
            continue;
        }
        size_t close = fmt.find('}', i);
        if (close == std::string::npos) fail(ErrorKind::value, "Single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, close - i - 1);
        i = close;
        char conv = 's';
        if (size_t bang = field.find('!'); bang != std::string::npos) {
            conv = bang + 1 < field.size() ? field[bang + 1] : 's';
            field.resize(bang);
        }
        if (field.find(':') != std::string::npos)
            fail(ErrorKind::value, "format specs are not supported in str.format");
        const Value* v = nullptr;
        if (field.empty()) {
            v = auto_index < a.positional.size() ? &a.positional[auto_index] : nullptr;
            ++auto_index;
        } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
            size_t idx = size_t(std::strtoull(field.c_str(), nullptr, 10));
            v = idx < a.positional.size() ? &a.positional[idx] : nullptr;
        } else {
            for (const auto& [k, val] : a.keyword)
                if (k == field) v = &val;
        }
        if (!v) fail(ErrorKind::value, "Replacement index out of range for positional args tuple");
        out += conv == 'r' ? to_repr(*v) : to_str(*v);
        if (out.size() > max_bytes) fail(ErrorKind::limit, "formatted string exceeds the size limit");
    }
    return out;
}

std::optional<Value> string_method(Interpreter& in, const std::string& s, const std::string& m, CallArgs& a) {
    auto strip = [&](StripSide side) {
        const Value* chars = opt(a, 0, "chars");
        std::string set = chars ? to_str(*chars) : std::string();
        return Value::string(py_strip(s, chars ? &set : nullptr, side));
    };
    if (m == "strip") return strip(StripSide::both);
    if (m == "lstrip") return strip(StripSide::left);
    if (m == "rstrip") return strip(StripSide::right);
    if (m == "upper") return Value::string(py_upper(s));
    if (m == "lower") return Value::string(py_lower(s));
    if (m == "title") return Value::string(py_title(s));
    if (m == "capitalize") return Value::string(py_capitalize(s));
    if (m == "split" || m == "rsplit") {
        const Value* sep = opt(a, 0, "sep");
        std::string sep_s = sep ? to_str(*sep) : std::string();
        const Value* maxs = a.get(1, "maxsplit");
        int64_t maxsplit = maxs && is_int(*maxs) ? maxs->as_int() : -1;
        if (m == "rsplit" && maxsplit >= 0) fail(ErrorKind::value, "rsplit with maxsplit is not supported");
        List out;
        for (auto& part : py_split(s, sep ? &sep_s : nullptr, maxsplit)) out.push_back(Value::string(std::move(part)));
        return Value::list(std::move(out));
    }
    if (m == "startswith" || m == "endswith") {
        const Value* p = a.get(0, "prefix");
        if (!p) fail(ErrorKind::type, m + "() takes at least 1 argument (0 given)");
        List options = p->kind() == Kind::tuple ? p->items() : List{*p};
        for (const Value& o : options) {
            if (!o.is_string())
                fail(ErrorKind::type, m + " first arg must be str or a tuple of str, not " + type_name(o));
            const std::string& x = o.str();
            bool hit = x.size() <= s.size() && (m == "startswith" ? s.compare(0, x.size(), x) == 0
                                                                  : s.compare(s.size() - x.size(), x.size(), x) == 0);
            if (hit) return Value::boolean(true);
        }
        return Value::boolean(false);
    }
    if (m == "replace") {
        const Value* cnt = a.get(2, "count");
        return Value::string(py_replace(s, need_str(a, 0, "old", "replace"), need_str(a, 1, "new", "replace"),
                                        cnt && is_int(*cnt) ? cnt->as_int() : -1, in.limits().max_output_bytes));
    }
    if (m == "count") return Value::integer(py_count(s, need_str(a, 0, "sub", "count")));
    if (m == "find") return Value::integer(py_find(s, need_str(a, 0, "sub", "find")));
    if (m == "index") {
        int64_t r = py_find(s, need_str(a, 0, "sub", "index"));
        if (r < 0) fail(ErrorKind::value, "substring not found");
        return Value::integer(r);
    }
    if (m == "format") return Value::string(str_format(s, a, in.limits().max_output_bytes));
    if (m == "join") {
        const Value* items = a.get(0, "iterable");
        if (!items) fail(ErrorKind::type, "join() takes exactly one argument (0 given)");
        std::string out;
        bool first = true;
        for (const Value& item : iterate(*items)) {
            if (!item.is_string())
                fail(ErrorKind::type,
                     std::string("sequence item: expected str instance, ") + type_name(item) + " found");
            if (!first) out += s;
            first = false;
            out += item.str();
            in.check_size(out.size(), "join result");
        }
        return Value::string(std::move(out));
    }
    if (m == "splitlines") {
        List out;
        std::string cur;
        for (char c : s) {
            if (c == '\n') {
                out.push_back(Value::string(cur));
                cur.clear();
            } else if (c != '\r') {
                cur.push_back(c);
            }
        }
        if (!cur.empty()) out.push_back(Value::string(cur));
        return Value::list(std::move(out));
    }
    auto all_of = [&](auto pred) {
        std::u32string cps = decode(s);
        return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
    };
    if (m == "isspace") return all_of([](char32_t c) { return py_isspace(c); });
    if (m == "isdigit") return all_of([](char32_t c) { return c >= '0' && c <= '9'; });
    if (m == "isalpha") return all_of([](char32_t c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; });
    if (m == "isalnum")
        return all_of([](char32_t c) { return ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9'); });
    if (m == "islower") return Value::boolean(call_test(in, "lower", Value::string(s), a));
    if (m == "isupper") return Value::boolean(call_test(in, "upper", Value::string(s), a));
    return std::nullopt;
}

[[noreturn]] void unsafe(const std::string& m, const Value& obj) {
    fail(ErrorKind::security, "access to attribute '" + m + "' of '" + type_name(obj) + "' object is unsafe.");
}

}  // namespace

std::optional<Value> call_method(Interpreter& in, const Value& obj, const std::string& m, CallArgs& a) {
    if (obj.is_string()) return string_method(in, obj.str(), m, a);
    if (obj.is_dict()) {
        const Dict& d = obj.dict_ref();
        if (m == "items") {
            List out;
            for (const auto& [k, v] : d.items) out.push_back(Value::tuple({k, v}));
            return Value::list(std::move(out));
        }
        if (m == "keys" || m == "values") {
            List out;
            for (const auto& [k, v] : d.items) out.push_back(m == "keys" ? k : v);
            return Value::list(std::move(out));
        }
        if (m == "get") {
            if (a.positional.empty()) fail(ErrorKind::type, "get expected at least 1 argument, got 0");
            const Value* v = d.find(a.positional[0]);
            if (v) return *v;
            return a.positional.size() > 1 ? a.positional[1] : Value::none();
        }
        if (m == "copy") return obj;
        if (m == "update" || m == "pop" || m == "popitem" || m == "setdefault" || m == "clear") unsafe(m, obj);
        return std::nullopt;
    }
    if (obj.is_sequence()) {
        const List& items = obj.items();
        if (m == "index" || m == "count") {
            if (a.positional.empty()) fail(ErrorKind::type, m + "() takes exactly one argument (0 given)");
            int64_t n = 0;
            for (size_t i = 0; i < items.size(); ++i) {
                if (!equals(items[i], a.positional[0])) continue;
                if (m == "index") return Value::integer(int64_t(i));
                ++n;
            }
            if (m == "index") fail(ErrorKind::value, to_repr(a.positional[0]) + " is not in list");
            return Value::integer(n);
        }
        if (m == "copy") return Value::list(items);
        if (m == "append" || m == "extend" || m == "insert" || m == "pop" || m == "remove" || m == "clear" ||
            m == "sort" || m == "reverse")
            unsafe(m, obj);
    }
    return std::nullopt;
}

namespace {

Dict dict_from_args(const CallArgs& a, const char* fn) {
    Dict d;
    auto put = [&](const Value& k, const Value& v) {
        for (auto& kv : d.items) {
            if (equals(kv.first, k)) {
                kv.second = v;
                return;
            }
        }
        d.items.emplace_back(k, v);
    };
    if (a.positional.size() > 1) fail(ErrorKind::type, std::string(fn) + " expected at most 1 positional argument");
    if (!a.positional.empty()) {
        const Value& src = a.positional[0];
        if (src.is_dict()) {
            for (const auto& [k, v] : src.dict_ref().items) put(k, v);
        } else {
            for (const Value& pair : iterate(src)) {
                List kv = iterate(pair);
                if (kv.size() != 2) fail(ErrorKind::value, std::string(fn) + ": sequence elements must have length 2");
                put(kv[0], kv[1]);
            }
        }
    }
    for (const auto& [k, v] : a.keyword) put(Value::string(k), v);
    return d;
}

Value g_range(Interpreter&, CallArgs& a) {
    a.check("range", 3, {});
    for (const Value& v : a.positional)
        if (!is_int(v))
            fail(ErrorKind::type, std::string("'") + type_name(v) + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) {
        stop = a.positional[0].as_int();
    } else if (a.positional.size() >= 2) {
        start = a.positional[0].as_int();
        stop = a.positional[1].as_int();
        if (a.positional.size() == 3) step = a.positional[2].as_int();
    } else {
        fail(ErrorKind::type, "range expected at least 1 argument, got 0");
    }
    if (step == 0) fail(ErrorKind::value, "range() arg 3 must not be zero");
    __int128 span = step > 0 ? (__int128(stop) - start + step - 1) / step : (__int128(start) - stop - step - 1) / -step;
    if (span > kMaxRange)
        fail(ErrorKind::limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    List out;
    for (__int128 i = 0; i < span; ++i) out.push_back(Value::integer(int64_t(start + i * step)));
    return Value::list(std::move(out));
}

Value g_strftime_now(Interpreter& in, CallArgs& a) {
    a.check("strftime_now", 1, {"format"});
    const Value* f = a.get(0, "format");
    if (!f || !f->is_string()) fail(ErrorKind::type, "strftime_now() argument must be str");
    if (f->str().size() > 256) fail(ErrorKind::value, "strftime_now format too long");
    std::tm t = in.now();
    char buf[4096];
    std::string fmt = f->str() + "\x01";  // distinguishes an empty result from an overflow
    size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &t);
    if (n == 0) fail(ErrorKind::value, "strftime_now: result too long");
    return Value::string(std::string(buf, n - 1));
}

}  // namespace

std::unordered_map<std::string, Value> make_globals() {
    std::unordered_map<std::string, Value> g;
    g["range"] = Value::callable("range", g_range);
    g["dict"] =
        Value::callable("dict", [](Interpreter&, CallArgs& a) { return Value::dict(dict_from_args(a, "dict")); });
    g["namespace"] = Value::callable("namespace", [](Interpreter&, CallArgs& a) {
        auto obj = std::make_shared<Object>();
        obj->attrs = dict_from_args(a, "namespace");
        for (const auto& kv : obj->attrs.items)
            if (!kv.first.is_string()) fail(ErrorKind::type, "namespace() keywords must be strings");
        return Value::object(std::move(obj));
    });
    g["raise_exception"] = Value::callable("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
        const Value* m = a.get(0, "message");
        fail(ErrorKind::raised, m ? to_str(*m) : std::string());
    });
    g["strftime_now"] = Value::callable("strftime_now", g_strftime_now);
    g["joiner"] = Value::callable("joiner", [](Interpreter&, CallArgs& a) {
        std::string sep = a.get(0, "sep") ? to_str(*a.get(0, "sep")) : std::string(", ");
        auto used = std::make_shared<bool>(false);
        return Value::callable("joiner", [sep, used](Interpreter&, CallArgs&) {
            bool first = !*used;
            *used = true;
            return Value::string(first ? std::string() : sep);
        });
    });
    g["cycler"] = Value::callable("cycler", [](Interpreter&, CallArgs& a) {
        auto obj = std::make_shared<Object>();
        List items = a.positional;
        auto pos = std::make_shared<size_t>(0);
        obj->attrs.items.emplace_back(Value::string("next"),
                                      Value::callable("next", [items, pos](Interpreter&, CallArgs&) {
                                          if (items.empty()) return Value::none();
                                          Value v = items[*pos % items.size()];
                                          ++*pos;
                                          return v;
                                      }));
        return Value::object(std::move(obj));
    });
    return g;
}

}  // namespace ferry::text::jinja
