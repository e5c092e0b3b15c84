#include "text/jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "text/jinja/value.h"
#include "text/utf8.h"

namespace ferry::text::jinja {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string normalize_newlines(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out.push_back(s[i]);
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    explicit Lexer(std::string src) : src_(std::move(src)) {
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }

    std::vector<Token> run() {
        size_t pos = 0;
        bool line_starting = true;
        while (pos < src_.size()) {
            size_t t = find_tag(pos);
            if (t == std::string::npos) {
                emit_text(pos, src_.substr(pos));
                break;
            }
            std::string text = src_.substr(pos, t - pos);
            char kind = src_[t + 1];
            char sign = (t + 2 < src_.size() && (src_[t + 2] == '-' || src_[t + 2] == '+')) ? src_[t + 2] : 0;
            size_t raw_end = kind == '%' ? match_keyword_tag(t, "raw") : 0;
            apply_left_strip(text, sign, kind != '{', line_starting);
            emit_text(pos, std::move(text));
            if (kind == '#') {
                pos = lex_comment(t, t + 2 + (sign ? 1 : 0));
            } else if (raw_end) {
                pos = lex_raw(t, raw_end);
            } else {
                pos = lex_tag(t, kind, t + 2 + (sign ? 1 : 0));
            }
            line_starting = pos > 0 && src_[pos - 1] == '\n';
        }
        tokens_.push_back(Token{Tok::eof, {}, where_line(src_.size()), where_col(src_.size())});
        return std::move(tokens_);
    }

private:
    std::string src_;
    std::vector<size_t> line_starts_;
    std::vector<Token> tokens_;

    uint32_t where_line(size_t off) const {
        return uint32_t(std::upper_bound(line_starts_.begin(), line_starts_.end(), off) - line_starts_.begin());
    }
    uint32_t where_col(size_t off) const { return uint32_t(off - line_starts_[where_line(off) - 1] + 1); }

    [[noreturn]] void error_at(size_t off, const std::string& msg) const {
        throw JinjaError{ErrorKind::syntax, msg, where_line(off), where_col(off)};
    }

    void push(Tok type, std::string value, size_t off) {
        tokens_.push_back(Token{type, std::move(value), where_line(off), where_col(off)});
    }
    void emit_text(size_t off, std::string text) {
        if (!text.empty()) push(Tok::text, std::move(text), off);
    }

    size_t find_tag(size_t pos) const {
        for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1)) {
            if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        }
        return std::string::npos;
    }

    // `{%[-+]? keyword [-]?%}` at t: returns the offset just past it (after its right strip), or 0.
    size_t match_keyword_tag(size_t t, const char* keyword) const {
        size_t p = t + 2;
        if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
        while (p < src_.size() && is_ws(src_[p])) ++p;
        size_t n = std::strlen(keyword);
        if (src_.compare(p, n, keyword) != 0) return 0;
        p += n;
        if (p < src_.size() && (is_name_start(src_[p]) || is_digit(src_[p]))) return 0;
        while (p < src_.size() && is_ws(src_[p])) ++p;
        return p;
    }

    void apply_left_strip(std::string& text, char sign, bool strippable_tag, bool line_starting) const {
        if (sign == '-') {
            size_t e = text.size();
            while (e > 0 && is_ws(text[e - 1])) --e;
            text.resize(e);
        } else if (sign != '+' && strippable_tag) {
            size_t nl = text.rfind('\n');
            size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
            if (l_pos > 0 || line_starting) {
                bool only_ws = l_pos < text.size();
                for (size_t i = l_pos; i < text.size() && only_ws; ++i) only_ws = is_ws(text[i]);
                if (only_ws) text.resize(l_pos);
            }
        }
    }

    // After a closing `%}`/`#}` at offset `after` (just past it): strip per the sign before it.
    size_t right_strip(size_t after, char sign, bool trim_newline) const {
        if (sign == '-') {
            while (after < src_.size() && is_ws(src_[after])) ++after;
        } else if (sign != '+' && trim_newline && after < src_.size() && src_[after] == '\n') {
            ++after;
        }
        return after;
    }

    size_t lex_comment(size_t t, size_t body) {
        size_t e = src_.find("#}", body);
        if (e == std::string::npos) error_at(t, "missing end of comment tag");
        char sign = (e > body && (src_[e - 1] == '-' || src_[e - 1] == '+')) ? src_[e - 1] : 0;
        return right_strip(e + 2, sign, true);
    }

    size_t lex_raw(size_t t, size_t p) {
        // p is just after "raw" and whitespace: expect "-%}" or "%}"
        size_t content;
        if (src_.compare(p, 3, "-%}") == 0)
            content = right_strip(p + 3, '-', false);
        else if (src_.compare(p, 2, "%}") == 0)
            content = p + 2;
        else
            error_at(t, "malformed raw tag");
        bool line_starting = content > 0 && src_[content - 1] == '\n';
        for (size_t s = find_tag(content); s != std::string::npos; s = find_tag(s + 1)) {
            if (src_[s + 1] != '%') continue;
            size_t q = match_keyword_tag(s, "endraw");
            if (!q) continue;
            char end_sign = 0;
            if (src_.compare(q, 3, "-%}") == 0 || src_.compare(q, 3, "+%}") == 0) end_sign = src_[q++];
            if (src_.compare(q, 2, "%}") != 0) continue;
            std::string text = src_.substr(content, s - content);
            char open_sign = (src_[s + 2] == '-' || src_[s + 2] == '+') ? src_[s + 2] : 0;
            apply_left_strip(text, open_sign, true, line_starting);
            emit_text(content, std::move(text));
            return right_strip(q + 2, end_sign, true);
        }
        error_at(t, "missing end of raw directive");
    }

    size_t lex_tag(size_t t, char kind, size_t p) {
        bool block = kind == '%';
        push(block ? Tok::block_begin : Tok::var_begin, {}, t);
        std::vector<char> brackets;
        while (true) {
            while (p < src_.size() && is_ws(src_[p])) ++p;
            if (p >= src_.size())
                error_at(t, block ? "unexpected end of template, expected '%}'"
                                  : "unexpected end of template, expected '}}'");
            if (brackets.empty()) {
                const char* close = block ? "%}" : "}}";
                char sign = 0;
                size_t q = p;
                if ((src_[q] == '-' || (block && src_[q] == '+')) && src_.compare(q + 1, 2, close) == 0)
                    sign = src_[q++];
                if (src_.compare(q, 2, close) == 0) {
                    push(block ? Tok::block_end : Tok::var_end, {}, p);
                    return right_strip(q + 2, sign, block);
                }
            }
            p = lex_expression_token(p, brackets);
        }
    }

    size_t lex_expression_token(size_t p, std::vector<char>& brackets) {
        char c = src_[p];
        if (is_name_start(c)) {
            size_t e = p;
            while (e < src_.size() && (is_name_start(src_[e]) || is_digit(src_[e]))) ++e;
            push(Tok::name, src_.substr(p, e - p), p);
            return e;
        }
        if (is_digit(c)) return lex_number(p);
        if (c == '\'' || c == '"') return lex_string(p);
        static const char* const two[] = {"//", "**", "==", "!=", "<=", ">="};
        for (const char* op : two) {
            if (src_.compare(p, 2, op) == 0) {
                push(Tok::op, op, p);
                return p + 2;
            }
        }
        if (std::strchr("+-*/%~()[]{}<>=.:|,;", c) == nullptr || c == 0) {
            error_at(p, std::string("unexpected character '") + c + "'");
        }
        if (c == '(' || c == '[' || c == '{') brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        if (c == ')' || c == ']' || c == '}') {
            if (brackets.empty() || brackets.back() != c) error_at(p, std::string("unexpected '") + c + "'");
            brackets.pop_back();
        }
        push(Tok::op, std::string(1, c), p);
        return p + 1;
    }

    size_t lex_number(size_t p) {
        size_t e = p;
        auto digits = [&] {
            while (e < src_.size() &&
                   (is_digit(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() && is_digit(src_[e + 1]))))
                ++e;
        };
        digits();
        bool is_float = false;
        if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
            ++e;
            digits();
            is_float = true;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
            size_t q = e + 1;
            if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
            if (q < src_.size() && is_digit(src_[q])) {
                e = q;
                digits();
                is_float = true;
            }
        }
        std::string text;
        for (size_t i = p; i < e; ++i)
            if (src_[i] != '_') text.push_back(src_[i]);
        push(is_float ? Tok::floating : Tok::integer, text, p);
        return e;
    }

    size_t lex_string(size_t p) {
        char quote = src_[p];
        std::string out;
        size_t i = p + 1;
        while (true) {
            if (i >= src_.size()) error_at(p, "unterminated string literal");
            char c = src_[i];
            if (c == quote) break;
            if (c != '\\') {
                out.push_back(c);
                ++i;
                continue;
            }
            if (i + 1 >= src_.size()) error_at(p, "unterminated string literal");
            char n = src_[i + 1];
            i += 2;
            switch (n) {
                case 'n': out.push_back('\n'); break;
                case 't': out.push_back('\t'); break;
                case 'r': out.push_back('\r'); break;
                case 'a': out.push_back('\a'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'v': out.push_back('\v'); break;
                case '\\':
                case '\'':
                case '"': out.push_back(n); break;
                case '\n': break;
                case 'x':
                case 'u':
                case 'U': {
                    int width = n == 'x' ? 2 : n == 'u' ? 4 : 8;
                    uint32_t cp = 0;
                    for (int k = 0; k < width; ++k) {
                        int h = i < src_.size() ? hex_value(src_[i]) : -1;
                        if (h < 0) error_at(p, "truncated \\x/\\u escape in string literal");
                        cp = cp * 16 + uint32_t(h);
                        ++i;
                    }
                    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        error_at(p, "invalid code point escape in string literal");
                    utf8_append(out, char32_t(cp));
                    break;
                }
                default:
                    if (n >= '0' && n <= '7') {
                        uint32_t cp = uint32_t(n - '0');
                        for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k)
                            cp = cp * 8 + uint32_t(src_[i++] - '0');
                        utf8_append(out, char32_t(cp));
                    } else {
                        out.push_back('\\');
                        out.push_back(n);
                    }
            }
        }
        push(Tok::string, std::move(out), p);
        return i + 1;
    }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace ferry::text::jinja
