// Values of the template language, with the Python semantics that chat templates observe.
//
// Hugging Face renders chat templates with Python's jinja2 in an ImmutableSandboxedEnvironment,
// so what a template prints is Python's str() of Python objects: True/False/None, ['a', 'b'],
// {'k': 'v'}, float repr. Values here are immutable and cheap to copy (containers are shared);
// the only mutable object is a namespace(), whose attributes `{% set ns.x = ... %}` assigns.
//
// Undefined is jinja2's lenient Undefined: it prints as "", iterates as empty and is falsy, but
// attribute access, subscripts, calls and arithmetic on it raise. None is a distinct value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::text::jinja {

// Error kinds mirror the Python exceptions a transformers render can raise.
enum class ErrorKind {
    syntax,     // TemplateSyntaxError
    undefined,  // UndefinedError
    type,       // TypeError
    value,      // ValueError, ZeroDivisionError, IndexError, OverflowError
    security,   // SecurityError (sandbox)
    raised,     // TemplateError from raise_exception(); message is the template's own
    limit,      // a sandbox resource bound was hit
};

// The one exception type of the engine. It never leaves Template::render / Template::parse.
struct JinjaError {
    ErrorKind kind;
    std::string message;
    uint32_t line = 0;  // 1-based; 0 = not yet known (filled in by the evaluator)
    uint32_t column = 0;
};

[[noreturn]] void fail(ErrorKind kind, std::string message);

class Value;
class Interpreter;
struct CallArgs;
using List = std::vector<Value>;

struct Dict {
    std::vector<std::pair<Value, Value>> items;  // insertion order, keys unique
    const Value* find(const Value& key) const;
    const Value* find(std::string_view key) const;
};

// namespace() objects and the loop variable: attribute bags.
struct Object {
    enum class Type { ns, loop } type = Type::ns;
    Dict attrs;
};

struct Callable {
    std::string name;
    std::function<Value(Interpreter&, CallArgs&)> fn;
};

enum class Kind : uint8_t { undefined, none, boolean, integer, floating, string, list, tuple, dict, object, callable };

class Value {
public:
    Value() = default;  // undefined
    static Value undefined(std::string hint = {});
    static Value none();
    static Value boolean(bool b);
    static Value integer(int64_t i);
    static Value floating(double d);
    static Value string(std::string s);
    static Value list(List items);
    static Value tuple(List items);
    static Value dict(Dict d);
    static Value object(std::shared_ptr<Object> o);
    static Value callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::undefined; }
    bool is_none() const { return kind_ == Kind::none; }
    bool is_string() const { return kind_ == Kind::string; }
    bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating || kind_ == Kind::boolean; }
    bool is_sequence() const { return kind_ == Kind::list || kind_ == Kind::tuple; }
    bool is_dict() const { return kind_ == Kind::dict; }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return kind_ == Kind::boolean ? int64_t(b_) : i_; }
    double as_double() const;                       // for is_number()
    const std::string& str() const { return *s_; }  // for strings; undefined's hint otherwise
    const List& items() const { return *l_; }
    const Dict& dict_ref() const { return *d_; }
    Object& object_ref() const { return *o_; }
    const Callable& callable_ref() const { return *c_; }

    bool truthy() const;

private:
    Kind kind_ = Kind::undefined;
    bool b_ = false;
    int64_t i_ = 0;
    double f_ = 0;
    std::shared_ptr<const std::string> s_;
    std::shared_ptr<const List> l_;
    std::shared_ptr<const Dict> d_;
    std::shared_ptr<Object> o_;
    std::shared_ptr<const Callable> c_;
};

// Python's type(x).__name__ ("str", "NoneType", "dict", ...).
const char* type_name(const Value& v);

// Python str() and repr(); str() of undefined is "".
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
void append_str(std::string& out, const Value& v);
// Python float repr: shortest round-trip digits, "1.0", "1e-05", "1e+16", "inf", "nan".
std::string float_repr(double d);

// Python ==, and < (raises TypeError for unorderable types).
bool equals(const Value& a, const Value& b);
bool less(const Value& a, const Value& b);

// Python len(); raises TypeError for values without one.
size_t length(const Value& v);
// Materializes what `for x in v` iterates: list items, dict keys, string characters; undefined
// iterates empty; anything else raises TypeError.
List iterate(const Value& v);

}  // namespace ferry::text::jinja
