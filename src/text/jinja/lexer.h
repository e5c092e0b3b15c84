// Tokenizer with jinja2's whitespace rules as transformers configures them: trim_blocks and
// lstrip_blocks on, keep_trailing_newline off, newlines normalized to "\n".
//
//  * `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` after it.
//  * trim_blocks: one "\n" right after `%}` or `#}` is dropped (not after `}}`, not after `+%}`).
//  * lstrip_blocks: spaces and tabs between the start of a line and `{%` / `{#` are dropped,
//    unless the tag is written `{%+`.
//  * Inside a tag, `%}` / `}}` only close it when brackets are balanced.
//  * One trailing newline of the source is removed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::text::jinja {

enum class Tok : uint8_t {
    text,         // template data (already whitespace-adjusted)
    var_begin,    // {{
    var_end,      // }}
    block_begin,  // {%
    block_end,    // %}
    name,
    string,  // value holds the unescaped contents
    integer,
    floating,
    op,  // value holds the operator text: + - * / // % ** ~ ( ) [ ] { } == != < <= > >= = . : | ,
    eof,
};

struct Token {
    Tok type;
    std::string value;
    uint32_t line;
    uint32_t column;
};

// Throws JinjaError (syntax) on unterminated tags, strings or comments, or unknown characters.
std::vector<Token> tokenize(std::string_view source);

}  // namespace ferry::text::jinja
