// Recursive-descent parser following jinja2's grammar and operator precedence (lowest first):
//   x if c else y  |  or  |  and  |  not  |  == != < <= > >= in, not in  |  + -  |  ~  |
//   * / // %  |  **  |  unary - +  |  primary with .attr [item] (call) | filter, is test
#include <cstdlib>
#include <cstring>
#include <string>

#include "text/jinja/ast.h"

namespace ferry::text::jinja {
namespace {

class Parser {
public:
    Parser(const std::vector<Token>& tokens, uint32_t max_depth) : toks_(tokens), max_depth_(max_depth) {}

    Body parse_template() {
        std::string ended;
        Body body = parse_body({}, ended);
        return body;
    }

private:
    const std::vector<Token>& toks_;
    size_t pos_ = 0;
    uint32_t depth_ = 0;
    uint32_t max_depth_;
    int loop_depth_ = 0;

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > p.max_depth_)
                p.error("template nesting too deep (limit " + std::to_string(p.max_depth_) + ")");
        }
        ~DepthGuard() { --p.depth_; }
    };

    // Operator chains (a + b + c ..., x|f|g ..., a.b.c ...) are parsed by loops but build trees as
    // deep as the chain; they count against the same nesting bound.
    void grow(uint32_t& chain) {
        if (depth_ + ++chain > max_depth_)
            error("expression nested too deeply (limit " + std::to_string(max_depth_) + ")");
    }

    const Token& cur() const { return toks_[pos_]; }
    const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
    void advance() {
        if (pos_ + 1 < toks_.size()) ++pos_;
    }

    [[noreturn]] void error(const std::string& msg) const {
        throw JinjaError{ErrorKind::syntax, msg, cur().line, cur().column};
    }
    bool is_op(const char* op) const { return cur().type == Tok::op && cur().value == op; }
    bool is_name(const char* n) const { return cur().type == Tok::name && cur().value == n; }
    bool accept_op(const char* op) {
        if (!is_op(op)) return false;
        advance();
        return true;
    }
    bool accept_name(const char* n) {
        if (!is_name(n)) return false;
        advance();
        return true;
    }
    void expect_op(const char* op) {
        if (!accept_op(op)) error(std::string("expected '") + op + "'");
    }
    std::string expect_identifier() {
        if (cur().type != Tok::name) error("expected a name");
        std::string n = cur().value;
        advance();
        return n;
    }
    void expect_block_end() {
        if (cur().type != Tok::block_end) error("expected end of statement block '%}'");
        advance();
    }

    ExprPtr node(ExprKind kind, const Token& at) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = at.line;
        e->column = at.column;
        return e;
    }
    StmtPtr stmt(StmtKind kind, const Token& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        s->line = at.line;
        s->column = at.column;
        return s;
    }

    // Parses statements until `{% <one of ends> ...`; consumes `{%` and the end name, sets `ended`.
    Body parse_body(std::initializer_list<const char*> ends, std::string& ended) {
        DepthGuard guard(*this);
        Body body;
        while (true) {
            const Token& t = cur();
            switch (t.type) {
                case Tok::eof:
                    if (ends.size() != 0)
                        error(std::string("unexpected end of template, expected '") + *ends.begin() + "'");
                    return body;
                case Tok::text: {
                    auto s = stmt(StmtKind::text, t);
                    s->text = t.value;
                    body.push_back(std::move(s));
                    advance();
                    break;
                }
                case Tok::var_begin: {
                    auto s = stmt(StmtKind::output, t);
                    advance();
                    s->expr = parse_tuple(true);
                    if (cur().type != Tok::var_end) error("expected end of print statement '}}'");
                    advance();
                    body.push_back(std::move(s));
                    break;
                }
                case Tok::block_begin: {
                    const Token& name = peek();
                    if (name.type != Tok::name) {
                        advance();
                        error("expected a statement name");
                    }
                    for (const char* e : ends) {
                        if (name.value == e) {
                            advance();
                            advance();
                            ended = e;
                            return body;
                        }
                    }
                    advance();
                    body.push_back(parse_statement());
                    break;
                }
                default: error("unexpected token");
            }
        }
    }

    StmtPtr parse_statement() {
        const Token& t = cur();
        std::string n = t.value;
        advance();
        if (n == "if") return parse_if(t);
        if (n == "for") return parse_for(t);
        if (n == "set") return parse_set(t);
        if (n == "macro") return parse_macro(t);
        if (n == "call") return parse_call_block(t);
        if (n == "filter") return parse_filter_block(t);
        if (n == "with") return parse_with(t);
        if (n == "generation") {
            auto s = stmt(StmtKind::scope, t);
            expect_block_end();
            std::string ended;
            s->body = parse_body({"endgeneration"}, ended);
            expect_block_end();
            return s;
        }
        if (n == "break" || n == "continue") {
            if (loop_depth_ == 0) error("'" + n + "' outside of a loop");
            auto s = stmt(n == "break" ? StmtKind::break_ : StmtKind::continue_, t);
            expect_block_end();
            return s;
        }
        pos_--;
        error("unknown or unsupported tag '" + n + "'");
    }

    StmtPtr parse_if(const Token& t) {
        auto s = stmt(StmtKind::if_, t);
        ExprPtr cond = parse_expression();
        while (true) {
            expect_block_end();
            std::string ended;
            Body body = parse_body({"elif", "else", "endif"}, ended);
            s->branches.push_back(Branch{std::move(cond), std::move(body)});
            if (ended == "endif") break;
            if (ended == "else") {
                expect_block_end();
                Body else_body = parse_body({"endif"}, ended);
                s->branches.push_back(Branch{nullptr, std::move(else_body)});
                break;
            }
            cond = parse_expression();
        }
        expect_block_end();
        return s;
    }

    // `a`, `a, b`, `(a, b)`: plain names only.
    void parse_targets(Stmt& s) {
        bool paren = accept_op("(");
        s.targets.push_back(expect_identifier());
        while (accept_op(",")) {
            s.unpack = true;
            if (paren && is_op(")")) break;
            if (!paren && cur().type != Tok::name) break;
            s.targets.push_back(expect_identifier());
        }
        if (paren) {
            expect_op(")");
            s.unpack = true;
        }
    }

    StmtPtr parse_for(const Token& t) {
        auto s = stmt(StmtKind::for_, t);
        parse_targets(*s);
        if (!accept_name("in")) error("expected 'in' in for loop");
        s->expr = parse_tuple(false);
        if (accept_name("if")) s->cond = parse_expression();
        if (is_name("recursive")) error("recursive loops are not supported");
        expect_block_end();
        std::string ended;
        ++loop_depth_;
        s->body = parse_body({"else", "endfor"}, ended);
        --loop_depth_;
        if (ended == "else") {
            expect_block_end();
            s->else_body = parse_body({"endfor"}, ended);
        }
        expect_block_end();
        return s;
    }

    StmtPtr parse_set(const Token& t) {
        auto s = stmt(StmtKind::set, t);
        if (cur().type == Tok::name && peek().type == Tok::op && peek().value == ".") {
            s->targets.push_back(expect_identifier());
            advance();
            s->attr = expect_identifier();
        } else {
            parse_targets(*s);
        }
        if (accept_op("=")) {
            s->expr = parse_tuple(true);
            expect_block_end();
            return s;
        }
        if (s->targets.size() != 1 || !s->attr.empty()) error("expected '=' in set statement");
        s->kind = StmtKind::set_block;
        while (accept_op("|")) s->filters.push_back(parse_filter(nullptr));
        expect_block_end();
        std::string ended;
        s->body = parse_body({"endset"}, ended);
        expect_block_end();
        return s;
    }

    void parse_params(std::vector<Arg>& params) {
        expect_op("(");
        while (!is_op(")")) {
            if (!params.empty()) expect_op(",");
            if (is_op(")")) break;
            Arg a;
            a.name = expect_identifier();
            if (accept_op("=")) a.value = parse_expression();
            params.push_back(std::move(a));
        }
        advance();
    }

    StmtPtr parse_macro(const Token& t) {
        auto s = stmt(StmtKind::macro, t);
        s->attr = expect_identifier();
        parse_params(s->params);
        expect_block_end();
        std::string ended;
        int saved = loop_depth_;
        loop_depth_ = 0;
        s->body = parse_body({"endmacro"}, ended);
        loop_depth_ = saved;
        if (cur().type == Tok::name) advance();  // `{% endmacro name %}`
        expect_block_end();
        return s;
    }

    StmtPtr parse_call_block(const Token& t) {
        auto s = stmt(StmtKind::call_block, t);
        if (is_op("(")) parse_params(s->params);
        s->expr = parse_expression();
        if (s->expr->kind != ExprKind::call) error("expected a call in a call block");
        expect_block_end();
        std::string ended;
        s->body = parse_body({"endcall"}, ended);
        expect_block_end();
        return s;
    }

    StmtPtr parse_filter_block(const Token& t) {
        auto s = stmt(StmtKind::filter_block, t);
        s->filters.push_back(parse_filter(nullptr));
        while (accept_op("|")) s->filters.push_back(parse_filter(nullptr));
        expect_block_end();
        std::string ended;
        s->body = parse_body({"endfilter"}, ended);
        expect_block_end();
        return s;
    }

    StmtPtr parse_with(const Token& t) {
        auto s = stmt(StmtKind::with, t);
        while (cur().type != Tok::block_end) {
            if (!s->params.empty()) expect_op(",");
            Arg a;
            a.name = expect_identifier();
            expect_op("=");
            a.value = parse_expression();
            s->params.push_back(std::move(a));
        }
        expect_block_end();
        std::string ended;
        s->body = parse_body({"endwith"}, ended);
        expect_block_end();
        return s;
    }

    // ---- expressions ----

    bool at_expression_end() const {
        if (cur().type == Tok::var_end || cur().type == Tok::block_end || cur().type == Tok::eof) return true;
        if (cur().type == Tok::op)
            return cur().value == ")" || cur().value == "]" || cur().value == "}" || cur().value == "=";
        return false;
    }

    ExprPtr parse_tuple(bool with_condexpr) {
        const Token& t = cur();
        ExprPtr first = with_condexpr ? parse_expression() : parse_or();
        if (!is_op(",")) return first;
        auto tup = node(ExprKind::tuple, t);
        tup->children.push_back(std::move(first));
        while (accept_op(",")) {
            if (at_expression_end() || is_name("if")) break;
            tup->children.push_back(with_condexpr ? parse_expression() : parse_or());
        }
        return tup;
    }

    ExprPtr parse_expression() {
        DepthGuard guard(*this);
        const Token& t = cur();
        ExprPtr e = parse_or();
        uint32_t chain = 0;
        while (is_name("if")) {
            grow(chain);
            advance();
            auto c = node(ExprKind::cond, t);
            c->children.push_back(parse_or());
            c->children.push_back(std::move(e));
            c->children.push_back(accept_name("else") ? parse_expression() : nullptr);
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(const Token& t, const char* op, ExprPtr l, ExprPtr r) {
        auto b = node(ExprKind::binary, t);
        b->name = op;
        b->children.push_back(std::move(l));
        b->children.push_back(std::move(r));
        return b;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        uint32_t chain = 0;
        while (is_name("or")) {
            grow(chain);
            const Token& t = cur();
            advance();
            e = binary(t, "or", std::move(e), parse_and());
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        uint32_t chain = 0;
        while (is_name("and")) {
            grow(chain);
            const Token& t = cur();
            advance();
            e = binary(t, "and", std::move(e), parse_not());
        }
        return e;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            auto u = node(ExprKind::unary, cur());
            advance();
            u->name = "not";
            u->children.push_back(parse_not());
            return u;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        const Token& t = cur();
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        while (true) {
            std::string op;
            if (cur().type == Tok::op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                          cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
                op = cur().value;
                advance();
            } else if (is_name("in")) {
                op = "in";
                advance();
            } else if (is_name("not") && peek().type == Tok::name && peek().value == "in") {
                op = "notin";
                advance();
                advance();
            } else {
                break;
            }
            if (!cmp) {
                cmp = node(ExprKind::compare, t);
                cmp->children.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->children.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        uint32_t chain = 0;
        while (is_op("+") || is_op("-")) {
            grow(chain);
            const Token& t = cur();
            const char* op = t.value == "+" ? "+" : "-";
            advance();
            e = binary(t, op, std::move(e), parse_concat());
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        uint32_t chain = 0;
        while (is_op("~")) {
            grow(chain);
            const Token& t = cur();
            advance();
            e = binary(t, "~", std::move(e), parse_math2());
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        uint32_t chain = 0;
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            grow(chain);
            const Token& t = cur();
            std::string op = t.value;
            advance();
            auto b = binary(t, "", std::move(e), parse_pow());
            b->name = op;
            e = std::move(b);
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        uint32_t chain = 0;
        while (is_op("**")) {
            grow(chain);
            const Token& t = cur();
            advance();
            e = binary(t, "**", std::move(e), parse_unary(true));
        }
        return e;
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        const Token& t = cur();
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            advance();
            e = node(ExprKind::unary, t);
            e->name = t.value;
            e->children.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        switch (t.type) {
            case Tok::name: {
                advance();
                auto e = node(ExprKind::constant, t);
                if (t.value == "true" || t.value == "True")
                    e->value = Value::boolean(true);
                else if (t.value == "false" || t.value == "False")
                    e->value = Value::boolean(false);
                else if (t.value == "none" || t.value == "None")
                    e->value = Value::none();
                else {
                    e->kind = ExprKind::name;
                    e->name = t.value;
                }
                return e;
            }
            case Tok::string: {
                std::string s;
                while (cur().type == Tok::string) {
                    s += cur().value;
                    advance();
                }
                auto e = node(ExprKind::constant, t);
                e->value = Value::string(std::move(s));
                return e;
            }
            case Tok::integer: {
                advance();
                errno = 0;
                char* end = nullptr;
                long long v = std::strtoll(t.value.c_str(), &end, 10);
                if (errno == ERANGE) error("integer literal too large");
                auto e = node(ExprKind::constant, t);
                e->value = Value::integer(v);
                return e;
            }
            case Tok::floating: {
                advance();
                auto e = node(ExprKind::constant, t);
                e->value = Value::floating(std::strtod(t.value.c_str(), nullptr));
                return e;
            }
            case Tok::op:
                if (t.value == "(") return parse_paren();
                if (t.value == "[") return parse_list();
                if (t.value == "{") return parse_dict();
                break;
            default: break;
        }
        error("unexpected token in expression");
    }

    ExprPtr parse_paren() {
        const Token& t = cur();
        advance();
        if (accept_op(")")) return node(ExprKind::tuple, t);
        ExprPtr first = parse_expression();
        if (accept_op(")")) return first;
        auto tup = node(ExprKind::tuple, t);
        tup->children.push_back(std::move(first));
        while (accept_op(",")) {
            if (is_op(")")) break;
            tup->children.push_back(parse_expression());
        }
        expect_op(")");
        return tup;
    }

    ExprPtr parse_list() {
        auto e = node(ExprKind::list, cur());
        advance();
        while (!is_op("]")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("]")) break;
            e->children.push_back(parse_expression());
        }
        advance();
        return e;
    }

    ExprPtr parse_dict() {
        auto e = node(ExprKind::dict, cur());
        advance();
        while (!is_op("}")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("}")) break;
            e->children.push_back(parse_expression());
            expect_op(":");
            e->children.push_back(parse_expression());
        }
        advance();
        return e;
    }

    ExprPtr parse_postfix(ExprPtr e) {
        uint32_t chain = 0;
        while (true) {
            grow(chain);
            const Token& t = cur();
            if (accept_op(".")) {
                auto a = node(ExprKind::attr, t);
                if (cur().type == Tok::integer) {  // foo.0 is foo[0]
                    a->kind = ExprKind::item;
                    a->children.push_back(std::move(e));
                    a->children.push_back(parse_primary());
                } else {
                    a->name = expect_identifier();
                    a->children.push_back(std::move(e));
                }
                e = std::move(a);
            } else if (is_op("[")) {
                e = parse_subscript(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj) {
        DepthGuard guard(*this);
        auto s = node(ExprKind::item, cur());
        advance();
        s->children.push_back(std::move(obj));
        ExprPtr parts[3];
        int n = 0;
        bool is_slice = false;
        while (true) {
            if (!is_op(":") && !is_op("]")) parts[n] = parse_expression();
            if (accept_op(":")) {
                is_slice = true;
                if (++n > 2) error("too many ':' in slice");
                continue;
            }
            break;
        }
        expect_op("]");
        if (is_slice) {
            s->kind = ExprKind::slice;
            for (auto& p : parts) s->children.push_back(std::move(p));
        } else {
            if (!parts[0]) error("expected a subscript");
            s->children.push_back(std::move(parts[0]));
        }
        return s;
    }

    void parse_args(std::vector<Arg>& args) {
        expect_op("(");
        while (!is_op(")")) {
            if (!args.empty()) expect_op(",");
            if (is_op(")")) break;
            if (is_op("*") || is_op("**")) error("*args and **kwargs in calls are not supported");
            Arg a;
            if (cur().type == Tok::name && peek().type == Tok::op && peek().value == "=") {
                a.name = cur().value;
                advance();
                advance();
            } else {
                for (const Arg& prev : args)
                    if (!prev.name.empty()) error("positional argument follows keyword argument");
            }
            a.value = parse_expression();
            args.push_back(std::move(a));
        }
        advance();
    }

    ExprPtr parse_call(ExprPtr callee) {
        DepthGuard guard(*this);
        auto c = node(ExprKind::call, cur());
        c->line = callee->line;  // errors point at what is called, not at '('
        c->column = callee->column;
        c->children.push_back(std::move(callee));
        parse_args(c->args);
        return c;
    }

    ExprPtr parse_filter(ExprPtr subject) {
        DepthGuard guard(*this);
        auto f = node(ExprKind::filter, cur());
        f->name = expect_identifier();
        while (accept_op(".")) f->name += "." + expect_identifier();
        f->children.push_back(std::move(subject));
        if (is_op("(")) parse_args(f->args);
        return f;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        uint32_t chain = 0;
        while (true) {
            grow(chain);
            if (accept_op("|")) {
                e = parse_filter(std::move(e));
            } else if (is_name("is")) {
                DepthGuard guard(*this);
                auto test = node(ExprKind::test, cur());
                advance();
                test->negated = accept_name("not");
                test->name = expect_identifier();
                test->children.push_back(std::move(e));
                if (is_op("(")) {
                    parse_args(test->args);
                } else if ((cur().type == Tok::name || cur().type == Tok::string || cur().type == Tok::integer ||
                            cur().type == Tok::floating || is_op("[") || is_op("{")) &&
                           !is_name("else") && !is_name("or") && !is_name("and")) {
                    if (is_name("is")) error("you cannot chain multiple tests with is");
                    Arg a;
                    a.value = parse_postfix(parse_primary());
                    test->args.push_back(std::move(a));
                }
                e = std::move(test);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }
};

}  // namespace

Body parse(const std::vector<Token>& tokens, uint32_t max_depth) { return Parser(tokens, max_depth).parse_template(); }

}  // namespace ferry::text::jinja
