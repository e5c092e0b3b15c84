#include "text/jinja/interpreter.h"

#include <exception>

#include "text/jinja/builtins.h"
#include "text/jinja/pystr.h"

namespace ferry::text::jinja {

const Value* CallArgs::get(size_t index, std::string_view name) const {
    if (index < positional.size()) return &positional[index];
    for (const auto& [k, v] : keyword)
        if (k == name) return &v;
    return nullptr;
}

void CallArgs::check(const char* function, size_t max_positional, std::initializer_list<std::string_view> names) const {
    if (positional.size() > max_positional)
        fail(ErrorKind::type, std::string(function) + "() takes at most " + std::to_string(max_positional) +
                                  " positional argument(s) (" + std::to_string(positional.size()) + " given)");
    for (const auto& kv : keyword) {
        bool known = false;
        for (std::string_view n : names) known = known || n == kv.first;
        if (!known)
            fail(ErrorKind::type, std::string(function) + "() got an unexpected keyword argument '" + kv.first + "'");
    }
}

// Bounds recursion and remembers the innermost node's position for error messages: on the way
// out of a failing evaluation the position is left pointing at the node that failed.
struct Interpreter::DepthGuard {
    Interpreter& in;
    uint32_t saved_line, saved_column;
    int exceptions;
    DepthGuard(Interpreter& interp, uint32_t line, uint32_t column)
        : in(interp), saved_line(interp.line_), saved_column(interp.column_), exceptions(std::uncaught_exceptions()) {
        in.line_ = line;
        in.column_ = column;
        if (in.depth_ >= in.limits_.max_depth)
            fail(ErrorKind::limit, "recursion depth limit exceeded (" + std::to_string(in.limits_.max_depth) + ")");
        ++in.depth_;
    }
    ~DepthGuard() {
        --in.depth_;
        if (std::uncaught_exceptions() == exceptions) {
            in.line_ = saved_line;
            in.column_ = saved_column;
        }
    }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
};

Interpreter::Interpreter(const Limits& limits, std::function<std::tm()> clock)
    : limits_(limits), clock_(std::move(clock)) {
    frames_.push_back(make_globals());
    frames_.emplace_back();
}

void Interpreter::set_context(std::unordered_map<std::string, Value> vars) { frames_[1] = std::move(vars); }

std::string Interpreter::render(const Body& body) {
    std::string out;
    out_ = &out;
    try {
        exec_body(body);
    } catch (JinjaError& e) {
        if (e.line == 0) {
            e.line = line_;
            e.column = column_;
        }
        throw;
    }
    return out;
}

void Interpreter::count_iterations(uint64_t n) {
    iterations_ += n;
    if (iterations_ > limits_.max_loop_iterations)
        fail(ErrorKind::limit, "loop iteration limit exceeded (" + std::to_string(limits_.max_loop_iterations) + ")");
}

Value Interpreter::charge(Value v) {
    uint64_t bytes = v.is_string() ? v.str().size() : v.is_sequence() ? v.items().size() * 16 : 0;
    copied_ += bytes;
    if (copied_ > limits_.max_built_bytes)
        fail(ErrorKind::limit, "work limit exceeded: expressions built more than " +
                                   std::to_string(limits_.max_built_bytes) + " bytes of strings and lists");
    return v;
}

void Interpreter::check_size(size_t bytes, const char* what) const {
    if (bytes > limits_.max_output_bytes)
        fail(ErrorKind::limit,
             std::string(what) + " exceeds the size limit (" + std::to_string(limits_.max_output_bytes) + " bytes)");
}

void Interpreter::emit(std::string_view text) {
    check_size(out_->size() + text.size(), "rendered output");
    out_->append(text);
}

const Value* Interpreter::lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > 0;) {
        auto it = frames_[i].find(name);
        if (it != frames_[i].end()) return &it->second;
    }
    return nullptr;
}

void Interpreter::assign(const std::string& name, Value v) { frames_.back()[name] = std::move(v); }

void Interpreter::assign_targets(const std::vector<std::string>& targets, bool unpack, const Value& v) {
    if (!unpack) {
        assign(targets[0], v);
        return;
    }
    List items = iterate(v);
    if (items.size() != targets.size())
        fail(ErrorKind::value, items.size() > targets.size()
                                   ? "too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                                   : "not enough values to unpack (expected " + std::to_string(targets.size()) +
                                         ", got " + std::to_string(items.size()) + ")");
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
}

Interpreter::Flow Interpreter::exec_body(const Body& body) {
    for (const StmtPtr& s : body) {
        Flow f = exec(*s);
        if (f != Flow::normal) return f;
    }
    return Flow::normal;
}

std::string Interpreter::capture(const Body& body) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    try {
        exec_body(body);
    } catch (...) {
        out_ = saved;
        throw;
    }
    out_ = saved;
    return buf;
}

Value Interpreter::apply_filter_chain(const std::vector<ExprPtr>& filters, Value v) {
    for (const ExprPtr& f : filters) {
        DepthGuard guard(*this, f->line, f->column);
        CallArgs args = eval_args(f->args);
        v = call_filter(*this, f->name, v, args);
    }
    return v;
}

Interpreter::Flow Interpreter::exec(const Stmt& s) {
    DepthGuard guard(*this, s.line, s.column);
    switch (s.kind) {
        case StmtKind::text: emit(s.text); break;
        case StmtKind::output: {
            Value v = eval(*s.expr);
            if (v.is_string())
                emit(v.str());
            else
                emit(to_str(v));
            break;
        }
        case StmtKind::if_:
            for (const Branch& b : s.branches)
                if (!b.cond || eval(*b.cond).truthy()) return exec_body(b.body);
            break;
        case StmtKind::for_: return exec_for(s);
        case StmtKind::set: exec_set(s); break;
        case StmtKind::set_block:
            assign(s.targets[0], apply_filter_chain(s.filters, Value::string(capture(s.body))));
            break;
        case StmtKind::macro: define_macro(s); break;
        case StmtKind::call_block: exec_call_block(s); break;
        case StmtKind::filter_block: {
            Value v = apply_filter_chain(s.filters, Value::string(capture(s.body)));
            emit(to_str(v));
            break;
        }
        case StmtKind::with: {
            Frame frame;
            for (const Arg& a : s.params) frame[a.name] = eval(*a.value);
            frames_.push_back(std::move(frame));
            Flow f;
            try {
                f = exec_body(s.body);
            } catch (...) {
                frames_.pop_back();
                throw;
            }
            frames_.pop_back();
            return f;
        }
        case StmtKind::scope: return exec_body(s.body);
        case StmtKind::break_: return Flow::break_;
        case StmtKind::continue_: return Flow::continue_;
    }
    return Flow::normal;
}

void Interpreter::exec_set(const Stmt& s) {
    Value v = eval(*s.expr);
    if (s.attr.empty()) {
        assign_targets(s.targets, s.unpack, v);
        return;
    }
    const Value* target = lookup(s.targets[0]);
    if (!target || target->kind() != Kind::object || target->object_ref().type != Object::Type::ns)
        fail(ErrorKind::type, "cannot assign attribute on non-namespace object");
    Dict& attrs = target->object_ref().attrs;
    for (auto& kv : attrs.items) {
        if (kv.first.str() == s.attr) {
            kv.second = std::move(v);
            return;
        }
    }
    attrs.items.emplace_back(Value::string(s.attr), std::move(v));
}

namespace {

struct FramesPop {
    std::vector<std::unordered_map<std::string, Value>>& frames;
    ~FramesPop() { frames.pop_back(); }
};

Value make_loop(const List& items, size_t i, const Value& cycle) {
    auto obj = std::make_shared<Object>();
    obj->type = Object::Type::loop;
    int64_t n = int64_t(items.size());
    int64_t k = int64_t(i);
    auto& a = obj->attrs.items;
    a.reserve(12);
    auto put = [&](const char* name, Value v) { a.emplace_back(Value::string(name), std::move(v)); };
    put("index", Value::integer(k + 1));
    put("index0", Value::integer(k));
    put("revindex", Value::integer(n - k));
    put("revindex0", Value::integer(n - k - 1));
    put("first", Value::boolean(k == 0));
    put("last", Value::boolean(k == n - 1));
    put("length", Value::integer(n));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    put("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    put("nextitem", i + 1 < items.size() ? items[i + 1] : Value::undefined("there is no next item"));
    put("cycle", cycle);
    return Value::object(std::move(obj));
}

}  // namespace

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
    List all = iterate(eval(*s.expr));
    List items;
    if (s.cond) {
        for (const Value& item : all) {
            count_iterations(1);
            frames_.emplace_back();
            FramesPop pop{frames_};
            assign_targets(s.targets, s.unpack, item);
            if (eval(*s.cond).truthy()) items.push_back(item);
        }
    } else {
        items = std::move(all);
    }
    if (items.empty()) return exec_body(s.else_body);
    auto index = std::make_shared<size_t>(0);
    Value cycle = Value::callable("cycle", [index](Interpreter&, CallArgs& args) {
        if (args.positional.empty()) fail(ErrorKind::type, "no items for cycling given");
        return args.positional[*index % args.positional.size()];
    });
    for (size_t i = 0; i < items.size(); ++i) {
        count_iterations(1);
        *index = i;
        frames_.emplace_back();
        FramesPop pop{frames_};
        assign_targets(s.targets, s.unpack, items[i]);
        assign("loop", make_loop(items, i, cycle));
        if (exec_body(s.body) == Flow::break_) break;
    }
    return Flow::normal;
}

Value Interpreter::invoke_body(const Stmt& def, size_t def_depth, CallArgs& args, const Value* caller) {
    // Frames pushed after the definition are not visible inside the body.
    std::vector<Frame> hidden;
    size_t keep = std::min(def_depth, frames_.size());
    for (size_t i = keep; i < frames_.size(); ++i) hidden.push_back(std::move(frames_[i]));
    frames_.resize(keep);
    frames_.emplace_back();
    auto restore = [&] {
        frames_.resize(keep);
        for (Frame& f : hidden) frames_.push_back(std::move(f));
    };
    std::string result;
    try {
        size_t n_params = def.params.size();
        List varargs;
        for (size_t i = 0; i < args.positional.size(); ++i) {
            if (i < n_params)
                assign(def.params[i].name, args.positional[i]);
            else
                varargs.push_back(args.positional[i]);
        }
        Dict kwargs;
        for (auto& [k, v] : args.keyword) {
            bool is_param = false;
            for (size_t i = 0; i < n_params; ++i) {
                if (def.params[i].name != k) continue;
                if (i < args.positional.size())
                    fail(ErrorKind::type, "macro '" + def.attr + "' got multiple values for argument '" + k + "'");
                is_param = true;
            }
            if (is_param)
                assign(k, v);
            else
                kwargs.items.emplace_back(Value::string(k), v);
        }
        for (size_t i = args.positional.size(); i < n_params; ++i) {
            const Arg& p = def.params[i];
            if (frames_.back().count(p.name)) continue;
            assign(p.name, p.value ? eval(*p.value) : Value::undefined("parameter '" + p.name + "' was not provided"));
        }
        assign("varargs", Value::tuple(std::move(varargs)));
        assign("kwargs", Value::dict(std::move(kwargs)));
        if (caller) assign("caller", *caller);
        result = capture(def.body);
    } catch (...) {
        restore();
        throw;
    }
    restore();
    return Value::string(std::move(result));
}

void Interpreter::define_macro(const Stmt& s) {
    size_t def_depth = frames_.size();
    const Stmt* def = &s;
    assign(s.attr, Value::callable(s.attr, [def, def_depth](Interpreter& in, CallArgs& args) {
               Value caller;
               bool has_caller = false;
               for (auto it = args.keyword.begin(); it != args.keyword.end(); ++it) {
                   if (it->first == "caller") {
                       caller = it->second;
                       has_caller = true;
                       args.keyword.erase(it);
                       break;
                   }
               }
               DepthGuard guard(in, def->line, def->column);
               return in.invoke_body(*def, def_depth, args, has_caller ? &caller : nullptr);
           }));
}

void Interpreter::exec_call_block(const Stmt& s) {
    size_t def_depth = frames_.size();
    const Stmt* def = &s;
    Value caller = Value::callable("caller", [def, def_depth](Interpreter& in, CallArgs& args) {
        DepthGuard guard(in, def->line, def->column);
        return in.invoke_body(*def, def_depth, args, nullptr);
    });
    const Expr& call = *s.expr;
    Value callee = eval(*call.children[0]);
    CallArgs args = eval_args(call.args);
    args.keyword.emplace_back("caller", caller);
    emit(to_str(this->call(callee, args)));
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
    if (callee.is_undefined())
        fail(ErrorKind::undefined, callee.str().empty() ? "undefined value is not callable" : callee.str());
    if (callee.kind() != Kind::callable)
        fail(ErrorKind::type, std::string("'") + type_name(callee) + "' object is not callable");
    return callee.callable_ref().fn(*this, args);
}

CallArgs Interpreter::eval_args(const std::vector<Arg>& args) {
    CallArgs out;
    for (const Arg& a : args) {
        if (a.name.empty())
            out.positional.push_back(eval(*a.value));
        else
            out.keyword.emplace_back(a.name, eval(*a.value));
    }
    return out;
}

Value Interpreter::eval(const Expr& e) {
    DepthGuard guard(*this, e.line, e.column);
    switch (e.kind) {
        case ExprKind::constant: return e.value;
        case ExprKind::name: return eval_name(e);
        case ExprKind::list:
        case ExprKind::tuple: {
            List items;
            items.reserve(e.children.size());
            for (const ExprPtr& c : e.children) items.push_back(eval(*c));
            return e.kind == ExprKind::list ? Value::list(std::move(items)) : Value::tuple(std::move(items));
        }
        case ExprKind::dict: {
            Dict d;
            for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
                Value k = eval(*e.children[i]);
                Value v = eval(*e.children[i + 1]);
                bool replaced = false;
                for (auto& kv : d.items) {
                    if (equals(kv.first, k)) {
                        kv.second = v;
                        replaced = true;
                    }
                }
                if (!replaced) d.items.emplace_back(std::move(k), std::move(v));
            }
            return Value::dict(std::move(d));
        }
        case ExprKind::attr: return get_attr(eval(*e.children[0]), e.name);
        case ExprKind::item: {
            Value obj = eval(*e.children[0]);
            return get_item(obj, eval(*e.children[1]));
        }
        case ExprKind::slice: return charge(eval_slice(e));
        case ExprKind::call: return charge(eval_call(e));
        case ExprKind::filter: {
            Value subject = eval(*e.children[0]);
            CallArgs args = eval_args(e.args);
            return charge(call_filter(*this, e.name, subject, args));
        }
        case ExprKind::test: {
            Value subject = eval(*e.children[0]);
            CallArgs args = eval_args(e.args);
            return Value::boolean(call_test(*this, e.name, subject, args) != e.negated);
        }
        case ExprKind::unary: {
            Value v = eval(*e.children[0]);
            if (e.name == "not") return Value::boolean(!v.truthy());
            if (v.is_undefined())
                fail(ErrorKind::undefined, v.str().empty() ? "undefined value in arithmetic" : v.str());
            if (!v.is_number())
                fail(ErrorKind::type, std::string("bad operand type for unary ") + e.name + ": '" + type_name(v) + "'");
            if (e.name == "+") return v.kind() == Kind::boolean ? Value::integer(v.as_int()) : v;
            if (v.kind() == Kind::floating) return Value::floating(-v.as_double());
            if (v.as_int() == INT64_MIN) fail(ErrorKind::value, "integer overflow");
            return Value::integer(-v.as_int());
        }
        case ExprKind::binary: return charge(eval_binary(e));
        case ExprKind::compare: return eval_compare(e);
        case ExprKind::cond:
            if (eval(*e.children[0]).truthy()) return eval(*e.children[1]);
            return e.children[2] ? eval(*e.children[2])
                                 : Value::undefined(
                                       "the inline if-expression evaluated to false and no else section was defined");
    }
    return Value();
}

Value Interpreter::eval_name(const Expr& e) {
    const Value* v = lookup(e.name);
    if (v) return *v;
    return Value::undefined("'" + e.name + "' is undefined");
}

Value Interpreter::eval_call(const Expr& e) {
    const Expr& callee = *e.children[0];
    if (callee.kind == ExprKind::attr) {
        Value obj = eval(*callee.children[0]);
        CallArgs args = eval_args(e.args);
        if (obj.is_string() || obj.is_sequence() || obj.is_dict()) {
            auto r = call_method(*this, obj, callee.name, args);
            if (r) return std::move(*r);
        }
        return call(get_attr(obj, callee.name), args);
    }
    Value fn = eval(callee);
    CallArgs args = eval_args(e.args);
    return call(fn, args);
}

Value Interpreter::eval_binary(const Expr& e) {
    if (e.name == "and") {
        Value l = eval(*e.children[0]);
        return l.truthy() ? eval(*e.children[1]) : l;
    }
    if (e.name == "or") {
        Value l = eval(*e.children[0]);
        return l.truthy() ? l : eval(*e.children[1]);
    }
    Value l = eval(*e.children[0]);
    Value r = eval(*e.children[1]);
    return binary_op(e.name, l, r, limits_.max_output_bytes);
}

Value Interpreter::eval_compare(const Expr& e) {
    Value left = eval(*e.children[0]);
    for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.children[i + 1]);
        const std::string& op = e.ops[i];
        bool r;
        if (op == "==")
            r = equals(left, right);
        else if (op == "!=")
            r = !equals(left, right);
        else if (op == "<")
            r = less(left, right);
        else if (op == ">")
            r = less(right, left);
        else if (op == "<=")
            r = less(left, right) || equals(left, right);
        else if (op == ">=")
            r = less(right, left) || equals(left, right);
        else if (op == "in")
            r = contains(right, left);
        else
            r = !contains(right, left);
        if (!r) return Value::boolean(false);
        left = std::move(right);
    }
    return Value::boolean(true);
}

Value Interpreter::eval_slice(const Expr& e) {
    Value obj = eval(*e.children[0]);
    Value parts[3];
    for (int i = 0; i < 3; ++i) parts[i] = e.children[size_t(i) + 1] ? eval(*e.children[size_t(i) + 1]) : Value::none();
    if (obj.is_undefined())
        fail(ErrorKind::undefined, obj.str().empty() ? "cannot slice an undefined value" : obj.str());
    for (const Value& p : parts)
        if (!p.is_none() && !(p.kind() == Kind::integer || p.kind() == Kind::boolean))
            return Value::undefined("slice indices must be integers or None");
    int64_t step = parts[2].is_none() ? 1 : parts[2].as_int();
    if (step == 0) fail(ErrorKind::value, "slice step cannot be zero");
    if (step == INT64_MIN) step = -INT64_MAX;
    std::u32string cps;
    const List* list = nullptr;
    int64_t n;
    if (obj.is_string()) {
        cps = decode(obj.str());
        n = int64_t(cps.size());
    } else if (obj.is_sequence()) {
        list = &obj.items();
        n = int64_t(list->size());
    } else {
        return Value::undefined(std::string("'") + type_name(obj) + "' object is not subscriptable");
    }
    auto adjust = [&](const Value& p, bool is_start) {
        if (p.is_none()) return is_start ? (step < 0 ? n - 1 : 0) : (step < 0 ? int64_t(-1) : n);
        int64_t v = p.as_int();
        if (v < 0) {
            v = v < -n ? -n - 1 : v;  // avoid overflow for huge negatives
            v += n;
            if (v < 0) v = step < 0 ? -1 : 0;
        } else if (v >= n) {
            v = step < 0 ? n - 1 : n;
        }
        return v;
    };
    int64_t start = adjust(parts[0], true), stop = adjust(parts[1], false);
    List out_items;
    std::u32string out_cps;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (list)
            out_items.push_back((*list)[size_t(i)]);
        else
            out_cps.push_back(cps[size_t(i)]);
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    if (!list) return Value::string(encode(out_cps));
    return obj.kind() == Kind::tuple ? Value::tuple(std::move(out_items)) : Value::list(std::move(out_items));
}

}  // namespace ferry::text::jinja
