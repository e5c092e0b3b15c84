// Tree-walking evaluator. One Interpreter renders one template once; it owns the scope stack,
// the output buffer and the sandbox counters.
//
// Scoping follows jinja2: a for-loop iteration, a macro call, a caller() call and a with-block
// each get a fresh frame; `set` writes to the innermost frame, so assignments inside a loop do not
// leak out (templates use namespace() for that). Macros see the frames that existed where they
// were defined, not their caller's.
#pragma once

#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace ferry::text::jinja {

struct Limits {
    uint64_t max_loop_iterations = 1'000'000;  // all loops of one render together, filters' too
    uint32_t max_depth = 256;                  // macro/caller calls plus nested statements and expressions
    size_t max_output_bytes = 16u << 20;       // the rendered text, and any single string or list built
    // Total size of the strings and lists that filters, calls and operators produce (a list
    // element counts 16 bytes): bounds the work of quadratic patterns like `s = s ~ s` in a loop.
    uint64_t max_built_bytes = uint64_t(4) << 30;
};

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;

    // The argument at `index` if given positionally, else the keyword `name`, else nullptr.
    const Value* get(size_t index, std::string_view name) const;
    // Raises TypeError for more than max_positional positional arguments or an unknown keyword.
    void check(const char* function, size_t max_positional, std::initializer_list<std::string_view> names) const;
};

class Interpreter {
public:
    Interpreter(const Limits& limits, std::function<std::tm()> clock);

    // Variables visible to the template (render arguments); globals (range, namespace, ...) are
    // looked up after them.
    void set_context(std::unordered_map<std::string, Value> vars);
    std::string render(const Body& body);

    Value call(const Value& callee, CallArgs& args);
    void count_iterations(uint64_t n);
    void check_size(size_t bytes, const char* what) const;
    const Limits& limits() const { return limits_; }
    std::tm now() const { return clock_(); }

private:
    enum class Flow { normal, break_, continue_ };
    using Frame = std::unordered_map<std::string, Value>;
    struct DepthGuard;

    Limits limits_;
    std::function<std::tm()> clock_;
    std::vector<Frame> frames_;  // frames_[0]: globals, frames_[1]: render context + top-level sets
    std::string* out_ = nullptr;
    uint64_t iterations_ = 0;
    uint64_t copied_ = 0;
    uint32_t depth_ = 0;
    uint32_t line_ = 0, column_ = 0;  // position of the node being evaluated

    Flow exec_body(const Body& body);
    Flow exec(const Stmt& s);
    Flow exec_for(const Stmt& s);
    void exec_set(const Stmt& s);
    void define_macro(const Stmt& s);
    void exec_call_block(const Stmt& s);
    std::string capture(const Body& body);
    Value apply_filter_chain(const std::vector<ExprPtr>& filters, Value v);
    void emit(std::string_view text);
    Value charge(Value v);

    Value eval(const Expr& e);
    Value eval_name(const Expr& e);
    Value eval_call(const Expr& e);
    Value eval_binary(const Expr& e);
    Value eval_compare(const Expr& e);
    Value eval_slice(const Expr& e);
    CallArgs eval_args(const std::vector<Arg>& args);

    const Value* lookup(const std::string& name) const;
    void assign(const std::string& name, Value v);
    void assign_targets(const std::vector<std::string>& targets, bool unpack, const Value& v);
    Value invoke_body(const Stmt& def, size_t def_depth, CallArgs& args, const Value* caller);
};

// Operators with Python semantics (shared with filters).
Value binary_op(const std::string& op, const Value& a, const Value& b, size_t max_bytes);
bool contains(const Value& container, const Value& item);
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);

}  // namespace ferry::text::jinja
