#include "text/jinja/template.h"

#include <chrono>

#include "text/jinja/ast.h"
#include "text/jinja/builtins.h"
#include "text/jinja/json.h"
#include "text/jinja/lexer.h"
#include "text/utf8.h"

namespace ferry::text {

using namespace jinja;

struct Template::Impl {
    Body body;
};

namespace {

// Bound on nesting while parsing; the evaluator's own limit (Limits::max_depth) is separate.
constexpr uint32_t kMaxParseDepth = 256;

const char* kind_name(ErrorKind k) {
    switch (k) {
        case ErrorKind::syntax: return "TemplateSyntaxError";
        case ErrorKind::undefined: return "UndefinedError";
        case ErrorKind::type: return "TypeError";
        case ErrorKind::value: return "ValueError";
        case ErrorKind::security: return "SecurityError";
        case ErrorKind::raised: return "TemplateError";
        case ErrorKind::limit: return "SandboxLimitError";
    }
    return "Error";
}

Error to_error(const JinjaError& e, const char* what, TemplateError* out) {
    if (out) *out = TemplateError{e.kind, e.message, e.line, e.column};
    return make_error(std::string("chat template ") + what + " error at line " + std::to_string(e.line) + ", column " +
                      std::to_string(e.column) + ": " + kind_name(e.kind) + ": " + e.message);
}

// jinja2 rejects unknown filters and tests when it compiles the template.
void check_names(const Expr* e);
void check_names(const Body& body) {
    for (const StmtPtr& s : body) {
        check_names(s->expr.get());
        check_names(s->cond.get());
        for (const Branch& b : s->branches) {
            check_names(b.cond.get());
            check_names(b.body);
        }
        for (const Arg& a : s->params) check_names(a.value.get());
        for (const ExprPtr& f : s->filters) check_names(f.get());
        check_names(s->body);
        check_names(s->else_body);
    }
}
void check_names(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::filter && !has_filter(e->name))
        throw JinjaError{ErrorKind::syntax, "No filter named '" + e->name + "'.", e->line, e->column};
    if (e->kind == ExprKind::test && !has_test(e->name))
        throw JinjaError{ErrorKind::syntax, "No test named '" + e->name + "'.", e->line, e->column};
    for (const ExprPtr& c : e->children) check_names(c.get());
    for (const Arg& a : e->args) check_names(a.value.get());
}

// Strings from outside must be valid UTF-8 before the engine indexes code points.
Status validate_json_strings(const nlohmann::ordered_json& j, int depth) {
    if (depth > 512) return make_error("chat template context nested too deeply");
    if (j.is_string()) return utf8_validate(j.get_ref<const std::string&>());
    if (j.is_array()) {
        for (const auto& e : j) FERRY_TRY(validate_json_strings(e, depth + 1));
    } else if (j.is_object()) {
        for (const auto& [k, v] : j.items()) {
            FERRY_TRY(utf8_validate(k));
            FERRY_TRY(validate_json_strings(v, depth + 1));
        }
    }
    return {};
}

std::tm system_local_time() {
    std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm t{};
    localtime_r(&now, &t);
    return t;
}

}  // namespace

Result<Template> Template::parse(std::string_view source, TemplateError* error) {
    if (Status st = utf8_validate(source); !st.ok()) {
        if (error) *error = TemplateError{ErrorKind::syntax, st.error().message, 0, 0};
        return make_error("chat template is not valid UTF-8: " + st.error().message);
    }
    try {
        auto impl = std::make_shared<Impl>();
        impl->body = jinja::parse(tokenize(source), kMaxParseDepth);
        check_names(impl->body);
        Template t;
        t.impl_ = std::move(impl);
        return t;
    } catch (const JinjaError& e) {
        return to_error(e, "syntax", error);
    }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context, const RenderOptions& options,
                                     TemplateError* error) const {
    if (!impl_) return make_error("chat template: render called on an empty template");
    if (!context.is_object()) return make_error("chat template context must be a JSON object");
    if (Status st = validate_json_strings(context, 0); !st.ok())
        return make_error("chat template context: invalid UTF-8 in a string: " + st.error().message);
    try {
        Interpreter in(options.limits, options.clock ? options.clock : system_local_time);
        std::unordered_map<std::string, Value> vars;
        for (const auto& [k, v] : context.items()) vars[k] = from_json(v);
        in.set_context(std::move(vars));
        return in.render(impl_->body);
    } catch (const JinjaError& e) {
        return to_error(e, "render", error);
    } catch (const std::bad_alloc&) {
        if (error) *error = TemplateError{ErrorKind::limit, "out of memory", 0, 0};
        return make_error("chat template render error: out of memory");
    } catch (const std::exception& e) {
        if (error) *error = TemplateError{ErrorKind::value, e.what(), 0, 0};
        return make_error(std::string("chat template render error: ") + e.what());
    }
}

Result<std::string> apply_chat_template(const Template& tmpl, const ChatTemplateInputs& inputs,
                                        const RenderOptions& options, TemplateError* error) {
    if (!inputs.extra_kwargs.is_null() && !inputs.extra_kwargs.is_object())
        return make_error("chat template: extra_kwargs must be a JSON object");
    nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
    ctx["messages"] = inputs.messages;
    ctx["tools"] = inputs.tools;
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = inputs.add_generation_prompt;
    if (inputs.bos_token) ctx["bos_token"] = *inputs.bos_token;
    if (inputs.eos_token) ctx["eos_token"] = *inputs.eos_token;
    if (inputs.extra_kwargs.is_object())
        for (const auto& [k, v] : inputs.extra_kwargs.items()) ctx[k] = v;
    return tmpl.render(ctx, options, error);
}

}  // namespace ferry::text
