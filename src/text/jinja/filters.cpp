// jinja2's built-in filters (3.1 behaviour) plus transformers' tojson override.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "text/jinja/builtins.h"
#include "text/jinja/json.h"
#include "text/jinja/pystr.h"

namespace ferry::text::jinja {
namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);

std::string arg_str(const CallArgs& a, size_t i, std::string_view name, std::string fallback) {
    const Value* v = a.get(i, name);
    return v ? to_str(*v) : fallback;
}
bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool fallback) {
    const Value* v = a.get(i, name);
    return v ? v->truthy() : fallback;
}
int64_t arg_int(const CallArgs& a, size_t i, std::string_view name, int64_t fallback) {
    const Value* v = a.get(i, name);
    if (!v || v->is_none()) return fallback;
    if (v->kind() == Kind::integer || v->kind() == Kind::boolean) return v->as_int();
    fail(ErrorKind::type, "expected an integer argument '" + std::string(name) + "', got " + type_name(*v));
}

// Dotted attribute path as jinja's make_attrgetter: "a.b.0" looks up items a, b, then index 0.
Value lookup_path(const Value& v, const std::string& path) {
    Value cur = v;
    size_t start = 0;
    while (true) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        bool numeric =
            !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        cur = numeric ? get_item(cur, Value::integer(std::strtoll(part.c_str(), nullptr, 10)))
                      : get_item(cur, Value::string(part));
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
}

Value sort_key(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.str()));
    return v;
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
    a.check("default", 2, {"default_value", "boolean"});
    bool use_default = v.is_undefined() || (arg_bool(a, 1, "boolean", false) && !v.truthy());
    if (!use_default) return v;
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value::string("");
}

Value f_length(Interpreter&, const Value& v, CallArgs&) { return Value::integer(int64_t(length(v))); }

Value f_join(Interpreter& in, const Value& v, CallArgs& a) {
    a.check("join", 2, {"d", "attribute"});
    std::string sep = arg_str(a, 0, "d", "");
    const Value* attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        append_str(out, attr ? lookup_path(item, to_str(*attr)) : item);
        in.check_size(out.size(), "join result");
    }
    return Value::string(std::move(out));
}

Value f_upper(Interpreter&, const Value& v, CallArgs&) { return Value::string(py_upper(to_str(v))); }
Value f_lower(Interpreter&, const Value& v, CallArgs&) { return Value::string(py_lower(to_str(v))); }
Value f_capitalize(Interpreter&, const Value& v, CallArgs&) { return Value::string(py_capitalize(to_str(v))); }

// jinja's title(): words are split at runs of whitespace and "-({[<"; each word is capitalized.
Value f_title(Interpreter&, const Value& v, CallArgs&) {
    std::u32string s = decode(to_str(v));
    std::string out;
    bool word_start = true;
    for (char32_t c : s) {
        bool sep = py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        std::string one = encode(std::u32string_view(&c, 1));
        out += sep ? one : (word_start ? py_upper(one) : py_lower(one));
        word_start = sep;
    }
    return Value::string(std::move(out));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
    a.check("trim", 1, {"chars"});
    const Value* chars = a.get(0, "chars");
    std::string set = chars && !chars->is_none() ? to_str(*chars) : std::string();
    return Value::string(py_strip(to_str(v), chars && !chars->is_none() ? &set : nullptr, StripSide::both));
}

Value f_replace(Interpreter& in, const Value& v, CallArgs& a) {
    a.check("replace", 3, {"old", "new", "count"});
    return Value::string(py_replace(to_str(v), arg_str(a, 0, "old", ""), arg_str(a, 1, "new", ""),
                                    arg_int(a, 2, "count", -1), in.limits().max_output_bytes));
}

Value f_first(Interpreter&, const Value& v, CallArgs&) {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(Interpreter&, const Value& v, CallArgs&) {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_list(Interpreter&, const Value& v, CallArgs&) { return Value::list(iterate(v)); }
Value f_string(Interpreter&, const Value& v, CallArgs&) { return v.is_string() ? v : Value::string(to_str(v)); }

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
    a.check("int", 2, {"default", "base"});
    Value fallback = a.get(0, "default") ? *a.get(0, "default") : Value::integer(0);
    int64_t base = arg_int(a, 1, "base", 10);
    if (v.kind() == Kind::integer || v.kind() == Kind::boolean) return Value::integer(v.as_int());
    if (v.kind() == Kind::floating) {
        double d = v.as_double();
        if (!std::isfinite(d) || std::fabs(d) > 9.2e18) return fallback;
        return Value::integer(int64_t(d));
    }
    if (!v.is_string()) return fallback;
    std::string s = py_strip(v.str(), nullptr, StripSide::both);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty() || base < 2 || base > 36) return fallback;
    errno = 0;
    char* end = nullptr;
    long long r = std::strtoll(s.c_str(), &end, int(base));
    if (errno == 0 && end && *end == 0) return Value::integer(r);
    double d = std::strtod(s.c_str(), &end);  // jinja falls back to int(float(s))
    if (end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(int64_t(d));
    return fallback;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
    a.check("float", 1, {"default"});
    Value fallback = a.get(0, "default") ? *a.get(0, "default") : Value::floating(0.0);
    if (v.is_number()) return Value::floating(v.as_double());
    if (!v.is_string()) return fallback;
    std::string s = py_strip(v.str(), nullptr, StripSide::both);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || !end || *end != 0) return fallback;
    return Value::floating(d);
}

Value f_abs(Interpreter&, const Value& v, CallArgs&) {
    if (v.kind() == Kind::floating) return Value::floating(std::fabs(v.as_double()));
    if (v.kind() == Kind::integer || v.kind() == Kind::boolean) {
        if (v.as_int() == INT64_MIN) fail(ErrorKind::value, "integer overflow");
        return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    fail(ErrorKind::type, std::string("bad operand type for abs(): '") + type_name(v) + "'");
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
    a.check("round", 2, {"precision", "method"});
    int64_t precision = arg_int(a, 0, "precision", 0);
    std::string method = arg_str(a, 1, "method", "common");
    if (!v.is_number()) fail(ErrorKind::type, std::string("type ") + type_name(v) + " doesn't define __round__ method");
    double x = v.as_double();
    if (precision < 0 || precision > 300) fail(ErrorKind::value, "round: unsupported precision");
    if (method == "common") {
        if (v.kind() != Kind::floating) return Value::integer(v.as_int());
        char buf[400];
        std::snprintf(buf, sizeof buf, "%.*f", int(precision), x);  // correctly rounded, ties to even
        return Value::floating(std::strtod(buf, nullptr));
    }
    double scale = std::pow(10.0, double(precision));
    if (method == "floor") return Value::floating(std::floor(x * scale) / scale);
    if (method == "ceil") return Value::floating(std::ceil(x * scale) / scale);
    fail(ErrorKind::value, "method must be common, ceil or floor");
}

Value f_tojson(Interpreter& in, const Value& v, CallArgs& a) {
    a.check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonStyle style;
    style.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
    if (const Value* ind = a.get(1, "indent"); ind && !ind->is_none()) {
        if (ind->is_string())
            style.indent_str = ind->str();
        else
            style.indent = int(std::clamp<int64_t>(arg_int(a, 1, "indent", 0), 0, 64));
        if (ind->is_string() && ind->str().empty()) style.indent = 0;
    }
    if (const Value* seps = a.get(2, "separators"); seps && !seps->is_none()) {
        List parts = iterate(*seps);
        if (parts.size() != 2) fail(ErrorKind::value, "separators must be a pair");
        style.item_separator = to_str(parts[0]);
        style.key_separator = to_str(parts[1]);
    }
    style.sort_keys = arg_bool(a, 3, "sort_keys", false);
    return Value::string(to_json(v, style, in.limits().max_output_bytes));
}

Value f_items(Interpreter&, const Value& v, CallArgs&) {
    if (v.is_undefined()) return Value::list({});
    if (!v.is_dict()) fail(ErrorKind::type, "Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, val] : v.dict_ref().items) out.push_back(Value::tuple({k, val}));
    return Value::list(std::move(out));
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
    a.check("dictsort", 3, {"case_sensitive", "by", "reverse"});
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    std::string by = arg_str(a, 1, "by", "key");
    bool rev = arg_bool(a, 2, "reverse", false);
    if (!v.is_dict()) fail(ErrorKind::type, std::string("dictsort expects a mapping, got ") + type_name(v));
    int pos = by == "key" ? 0 : by == "value" ? 1 : -1;
    if (pos < 0) fail(ErrorKind::value, "You can only sort by either \"key\" or \"value\"");
    std::vector<std::pair<Value, Value>> items = v.dict_ref().items;
    std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
        const Value& kx = pos == 0 ? x.first : x.second;
        const Value& ky = pos == 0 ? y.first : y.second;
        return rev ? less(sort_key(ky, cs), sort_key(kx, cs)) : less(sort_key(kx, cs), sort_key(ky, cs));
    });
    List out;
    for (auto& [k, val] : items) out.push_back(Value::tuple({k, val}));
    return Value::list(std::move(out));
}

Value f_sort(Interpreter&, const Value& v, CallArgs& a) {
    a.check("sort", 3, {"reverse", "case_sensitive", "attribute"});
    bool rev = arg_bool(a, 0, "reverse", false);
    bool cs = arg_bool(a, 1, "case_sensitive", false);
    const Value* attr = a.get(2, "attribute");
    List items = iterate(v);
    auto key = [&](const Value& x) { return sort_key(attr ? lookup_path(x, to_str(*attr)) : x, cs); };
    std::stable_sort(items.begin(), items.end(),
                     [&](const Value& x, const Value& y) { return rev ? less(key(y), key(x)) : less(key(x), key(y)); });
    return Value::list(std::move(items));
}

Value f_unique(Interpreter&, const Value& v, CallArgs& a) {
    a.check("unique", 2, {"case_sensitive", "attribute"});
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* attr = a.get(1, "attribute");
    List out, seen;
    for (const Value& item : iterate(v)) {
        Value k = sort_key(attr ? lookup_path(item, to_str(*attr)) : item, cs);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) continue;
        seen.push_back(k);
        out.push_back(item);
    }
    return Value::list(std::move(out));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs&) {
    if (v.is_string()) {
        std::u32string s = decode(v.str());
        std::reverse(s.begin(), s.end());
        return Value::string(encode(s));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
}

Value f_minmax(const Value& v, CallArgs& a, bool want_max) {
    a.check(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"});
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* attr = a.get(1, "attribute");
    List items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    auto key = [&](const Value& x) { return sort_key(attr ? lookup_path(x, to_str(*attr)) : x, cs); };
    size_t best = 0;
    for (size_t i = 1; i < items.size(); ++i)
        if (want_max ? less(key(items[best]), key(items[i])) : less(key(items[i]), key(items[best]))) best = i;
    return items[best];
}
Value f_min(Interpreter&, const Value& v, CallArgs& a) { return f_minmax(v, a, false); }
Value f_max(Interpreter&, const Value& v, CallArgs& a) { return f_minmax(v, a, true); }

Value f_sum(Interpreter& in, const Value& v, CallArgs& a) {
    a.check("sum", 2, {"attribute", "start"});
    const Value* attr = a.get(0, "attribute");
    Value total = a.get(1, "start") ? *a.get(1, "start") : Value::integer(0);
    for (const Value& item : iterate(v))
        total = binary_op("+", total, attr ? lookup_path(item, to_str(*attr)) : item, in.limits().max_output_bytes);
    return total;
}

// select/reject/selectattr/rejectattr/map share "apply a test or filter by name".
Value select_impl(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep_if) {
    List out;
    size_t next = 0;
    std::string attr;
    if (by_attr) {
        if (a.positional.empty()) fail(ErrorKind::type, "selectattr/rejectattr need an attribute name");
        attr = to_str(a.positional[next++]);
    }
    std::string test = next < a.positional.size() ? to_str(a.positional[next++]) : std::string();
    CallArgs test_args;
    test_args.positional.assign(a.positional.begin() + long(std::min(next, a.positional.size())), a.positional.end());
    for (const Value& item : iterate(v)) {
        in.count_iterations(1);
        Value subject = by_attr ? lookup_path(item, attr) : item;
        CallArgs args = test_args;
        bool r = test.empty() ? subject.truthy() : call_test(in, test, subject, args);
        if (r == keep_if) out.push_back(item);
    }
    return Value::list(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
    List out;
    const Value* attr = nullptr;
    const Value* fallback = nullptr;
    for (const auto& [k, val] : a.keyword) {
        if (k == "attribute")
            attr = &val;
        else if (k == "default")
            fallback = &val;
    }
    if (attr) {
        for (const Value& item : iterate(v)) {
            in.count_iterations(1);
            Value r = lookup_path(item, to_str(*attr));
            out.push_back(r.is_undefined() && fallback ? *fallback : r);
        }
        return Value::list(std::move(out));
    }
    if (a.positional.empty()) fail(ErrorKind::type, "map requires a filter argument");
    std::string name = to_str(a.positional[0]);
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const Value& item : iterate(v)) {
        in.count_iterations(1);
        CallArgs args = rest;
        out.push_back(call_filter(in, name, item, args));
    }
    return Value::list(std::move(out));
}

Value f_batch(Interpreter&, const Value& v, CallArgs& a) {
    a.check("batch", 2, {"linecount", "fill_with"});
    int64_t n = arg_int(a, 0, "linecount", 0);
    if (n <= 0) fail(ErrorKind::value, "batch size must be positive");
    const Value* fill = a.get(1, "fill_with");
    List out, cur;
    for (const Value& item : iterate(v)) {
        cur.push_back(item);
        if (int64_t(cur.size()) == n) {
            out.push_back(Value::list(std::move(cur)));
            cur.clear();
        }
    }
    if (!cur.empty()) {
        if (fill && !fill->is_none())
            while (int64_t(cur.size()) < n) cur.push_back(*fill);
        out.push_back(Value::list(std::move(cur)));
    }
    return Value::list(std::move(out));
}

std::vector<std::string> splitlines(const std::string& s) {
    std::vector<std::string> lines;
    std::u32string cps = decode(s);
    std::u32string cur;
    for (size_t i = 0; i < cps.size(); ++i) {
        char32_t c = cps[i];
        bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                   c == 0x2028 || c == 0x2029;
        if (!brk) {
            cur.push_back(c);
            continue;
        }
        if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
        lines.push_back(encode(cur));
        cur.clear();
    }
    if (!cur.empty()) lines.push_back(encode(cur));
    return lines;
}

Value f_indent(Interpreter& in, const Value& v, CallArgs& a) {
    a.check("indent", 3, {"width", "first", "blank"});
    const Value* w = a.get(0, "width");
    std::string indention = w && w->is_string()
                                ? w->str()
                                : std::string(size_t(std::clamp<int64_t>(arg_int(a, 0, "width", 4), 0, 1024)), ' ');
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    std::vector<std::string> lines = splitlines(to_str(v) + "\n");
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i) out += "\n";
        if ((i > 0 || first) && (blank || !lines[i].empty())) out += indention;
        out += lines[i];
        in.check_size(out.size(), "indent result");
    }
    return Value::string(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs&) {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : decode(to_str(v))) {
        bool w = c == '_' || (c < 128 ? std::isalnum(int(c)) != 0 : !py_isspace(c) && py_isprintable(c));
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value::integer(n);
}

Value f_center(Interpreter&, const Value& v, CallArgs& a) {
    a.check("center", 1, {"width"});
    std::string s = to_str(v);
    int64_t width = std::min<int64_t>(arg_int(a, 0, "width", 80), 1 << 20);
    int64_t len = int64_t(count_code_points(s));
    if (width <= len) return Value::string(s);
    int64_t marg = width - len;
    int64_t left = marg / 2 + (marg & width & 1);
    return Value::string(std::string(size_t(left), ' ') + s + std::string(size_t(marg - left), ' '));
}

Value f_escape(Interpreter&, const Value& v, CallArgs&) {
    std::string out;
    for (char c : to_str(v)) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out.push_back(c);
        }
    }
    return Value::string(std::move(out));
}

Value f_format(Interpreter& in, const Value& v, CallArgs& a) {
    Value args = a.positional.size() == 1 ? a.positional[0] : Value::tuple(a.positional);
    return binary_op("%", Value::string(to_str(v)), args, in.limits().max_output_bytes);
}

Value f_attr(Interpreter&, const Value& v, CallArgs& a) {
    a.check("attr", 1, {"name"});
    std::string name = arg_str(a, 0, "name", "");
    if (v.kind() == Kind::object) return get_attr(v, name);
    return Value::undefined(std::string("'") + type_name(v) + " object' has no attribute '" + name + "'");
}

const std::map<std::string, FilterFn, std::less<>>& filter_table() {
    static const std::map<std::string, FilterFn, std::less<>> table = {
        {"default", f_default},
        {"d", f_default},
        {"length", f_length},
        {"count", f_length},
        {"join", f_join},
        {"upper", f_upper},
        {"lower", f_lower},
        {"title", f_title},
        {"capitalize", f_capitalize},
        {"trim", f_trim},
        {"replace", f_replace},
        {"first", f_first},
        {"last", f_last},
        {"list", f_list},
        {"map", f_map},
        {"select", f_select},
        {"reject", f_reject},
        {"selectattr", f_selectattr},
        {"rejectattr", f_rejectattr},
        {"dictsort", f_dictsort},
        {"items", f_items},
        {"string", f_string},
        {"int", f_int},
        {"float", f_float},
        {"abs", f_abs},
        {"round", f_round},
        {"tojson", f_tojson},
        {"safe", f_string},
        {"unique", f_unique},
        {"sort", f_sort},
        {"reverse", f_reverse},
        {"batch", f_batch},
        {"indent", f_indent},
        {"wordcount", f_wordcount},
        {"center", f_center},
        {"min", f_min},
        {"max", f_max},
        {"sum", f_sum},
        {"escape", f_escape},
        {"e", f_escape},
        {"forceescape", f_escape},
        {"format", f_format},
        {"attr", f_attr},
    };
    return table;
}

}  // namespace

bool has_filter(std::string_view name) { return filter_table().count(name) != 0; }

Value call_filter(Interpreter& in, const std::string& name, const Value& subject, CallArgs& args) {
    auto it = filter_table().find(name);
    if (it == filter_table().end()) fail(ErrorKind::syntax, "No filter named '" + name + "'.");
    return it->second(in, subject, args);
}

}  // namespace ferry::text::jinja
