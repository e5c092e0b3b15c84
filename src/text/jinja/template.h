// Chat templates: a sandboxed Jinja engine that renders Hugging Face chat templates the way
// transformers' apply_chat_template does (jinja2 ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, a json.dumps-style tojson,
// raise_exception and strftime_now).
//
// Sandbox: templates reach only the values passed in; there is no include/import/extends and no
// file or host access. Every render is bounded in loop iterations, recursion depth and output
// size (RenderOptions::limits); hitting a bound is an error, never a crash. Errors name the
// template line and column.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "text/jinja/interpreter.h"

namespace ferry::text {

using jinja::Limits;

struct RenderOptions {
    Limits limits;
    // Local time for strftime_now(); empty = the system clock.
    std::function<std::tm()> clock;
};

// Details of a failed parse or render, for callers that need more than the message.
struct TemplateError {
    jinja::ErrorKind kind = jinja::ErrorKind::syntax;
    std::string message;  // for raise_exception(): exactly the template's message
    uint32_t line = 0, column = 0;
};

class Template {
public:
    // Syntax errors carry "line L, column C". Unknown filters and tests are syntax errors, as in
    // jinja2 (which rejects them when compiling).
    static Result<Template> parse(std::string_view source, TemplateError* error = nullptr);

    // Context: a JSON object whose members become template variables (key order preserved).
    Result<std::string> render(const nlohmann::ordered_json& context, const RenderOptions& options = {},
                               TemplateError* error = nullptr) const;

private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
};

struct ChatTemplateInputs {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    nlohmann::ordered_json tools;  // null = none (the template still sees `tools` = None)
    bool add_generation_prompt = false;
    nlohmann::ordered_json extra_kwargs = nlohmann::ordered_json::object();  // override everything
    std::optional<std::string> bos_token, eos_token;  // nullopt: not set (undefined in the template)
};

// Builds the context exactly as transformers does: messages, tools, documents=None,
// add_generation_prompt, then the special tokens that are set, then extra_kwargs on top.
Result<std::string> apply_chat_template(const Template& tmpl, const ChatTemplateInputs& inputs,
                                        const RenderOptions& options = {}, TemplateError* error = nullptr);

}  // namespace ferry::text
