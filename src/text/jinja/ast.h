// Syntax tree of a parsed template. Nodes are owned by their parent; a Template owns the root.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "text/jinja/lexer.h"
#include "text/jinja/value.h"

namespace ferry::text::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
    constant,  // value
    name,      // name
    list,      // children
    tuple,     // children
    dict,      // children: key0, value0, key1, value1, ...
    attr,      // children[0].name
    item,      // children[0][children[1]]
    slice,     // children[0][children[1]:children[2]:children[3]] (null = omitted)
    call,      // children[0](args)
    filter,    // children[0] | name(args); children[0] null inside `{% filter %}` / set-block chains
    test,      // children[0] is [not] name(args)
    unary,     // name in {"-", "+", "not"}
    binary,    // children[0] name children[1]; name in {+ - * / // % ** ~ and or in notin}
    compare,   // children[0] ops[0] children[1] ops[1] children[2] ...
    cond,      // children[1] if children[0] else children[2] (null = undefined)
};

struct Arg {
    std::string name;  // empty for positional
    ExprPtr value;     // for macro parameters: the default, may be null
};

struct Expr {
    ExprKind kind;
    uint32_t line = 0, column = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> children;
    std::vector<Arg> args;
    std::vector<std::string> ops;
    bool negated = false;
};

enum class StmtKind : uint8_t {
    text,          // text
    output,        // {{ expr }}
    if_,           // branches
    for_,          // for targets in expr [if cond]: body [else else_body]
    set,           // set targets = expr, or set targets[0].attr = expr
    set_block,     // set targets[0] | filters: body
    macro,         // macro name(params): body
    call_block,    // call(params) expr: body
    filter_block,  // filter filters: body
    with,          // with params (name = value): body
    scope,         // {% generation %}: body rendered as is
    break_,
    continue_,
};

struct Branch {
    ExprPtr cond;  // null for else
    Body body;
};

struct Stmt {
    StmtKind kind;
    uint32_t line = 0, column = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    std::vector<Branch> branches;
    std::vector<std::string> targets;
    std::string attr;
    std::vector<Arg> params;
    std::vector<ExprPtr> filters;
    Body body, else_body;
    bool unpack = false;  // targets came from a tuple (`for k, v in`), even a 1-tuple
};

// Throws JinjaError (syntax) with the position of the offending token. Nesting deeper than
// max_depth (blocks plus expression levels) is a syntax error, not a stack overflow.
Body parse(const std::vector<Token>& tokens, uint32_t max_depth);

}  // namespace ferry::text::jinja
