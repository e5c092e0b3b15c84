#include "text/jinja/pystr.h"

#include <utf8proc.h>

#include <cstdio>

#include "text/jinja/value.h"
#include "text/utf8.h"

namespace ferry::text::jinja {

std::u32string decode(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) {
        auto cp = utf8_decode(s, pos);
        if (!cp) {  // cannot happen for checked input; keep the byte rather than loop forever
            out.push_back(char32_t(uint8_t(s[pos])));
            ++pos;
            continue;
        }
        out.push_back(*cp);
    }
    return out;
}

std::string encode(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) utf8_append(out, c);
    return out;
}

size_t count_code_points(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// Py_UNICODE_ISSPACE: the characters str.strip() and str.split() treat as whitespace.
bool py_isspace(char32_t c) {
    if (c < 128) return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F);
    switch (c) {
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000: return true;
        default: return c >= 0x2000 && c <= 0x200A;
    }
}

bool py_isprintable(char32_t c) {
    if (c == ' ') return true;
    if (c < 0x20 || c == 0x7F) return false;
    if (c < 0x7F) return true;
    switch (utf8proc_category(utf8proc_int32_t(c))) {
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CN:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
        case UTF8PROC_CATEGORY_ZS: return false;
        default: return true;
    }
}

static char32_t to_upper(char32_t c) { return char32_t(utf8proc_toupper(utf8proc_int32_t(c))); }
static char32_t to_lower(char32_t c) { return char32_t(utf8proc_tolower(utf8proc_int32_t(c))); }
static bool is_cased_letter(char32_t c) { return to_upper(c) != c || to_lower(c) != c; }

std::string py_upper(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : decode(s)) utf8_append(out, to_upper(c));
    return out;
}

std::string py_lower(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : decode(s)) utf8_append(out, to_lower(c));
    return out;
}

std::string py_title(std::string_view s) {
    std::string out;
    bool prev_cased = false;
    for (char32_t c : decode(s)) {
        utf8_append(out, prev_cased ? to_lower(c) : to_upper(c));
        prev_cased = is_cased_letter(c);
    }
    return out;
}

std::string py_capitalize(std::string_view s) {
    std::string out;
    bool first = true;
    for (char32_t c : decode(s)) {
        utf8_append(out, first ? to_upper(c) : to_lower(c));
        first = false;
    }
    return out;
}

std::string py_strip(std::string_view s, const std::string* chars, StripSide side) {
    std::u32string cps = decode(s);
    std::u32string set = chars ? decode(*chars) : std::u32string();
    auto strip_it = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_isspace(c); };
    size_t b = 0, e = cps.size();
    if (side != StripSide::right)
        while (b < e && strip_it(cps[b])) ++b;
    if (side != StripSide::left)
        while (e > b && strip_it(cps[e - 1])) --e;
    return encode(std::u32string_view(cps).substr(b, e - b));
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep) {
        if (sep->empty()) fail(ErrorKind::value, "empty separator");
        size_t pos = 0;
        while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
            size_t hit = s.find(*sep, pos);
            if (hit == std::string_view::npos) break;
            out.emplace_back(s.substr(pos, hit - pos));
            pos = hit + sep->size();
        }
        out.emplace_back(s.substr(pos));
        return out;
    }
    std::u32string cps = decode(s);
    size_t i = 0;
    while (true) {
        while (i < cps.size() && py_isspace(cps[i])) ++i;
        if (i == cps.size()) break;
        if (maxsplit >= 0 && int64_t(out.size()) >= maxsplit) {
            size_t e = cps.size();
            while (e > i && py_isspace(cps[e - 1])) --e;
            out.push_back(encode(std::u32string_view(cps).substr(i, e - i)));
            break;
        }
        size_t j = i;
        while (j < cps.size() && !py_isspace(cps[j])) ++j;
        out.push_back(encode(std::u32string_view(cps).substr(i, j - i)));
        i = j;
    }
    return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count,
                       size_t max_bytes) {
    std::string out;
    auto check = [&] {
        if (out.size() > max_bytes) fail(ErrorKind::limit, "string result exceeds the output size limit");
    };
    if (old.empty()) {  // Python inserts repl between every code point and at both ends
        std::u32string cps = decode(s);
        int64_t n = 0;
        for (size_t i = 0; i <= cps.size(); ++i) {
            if (count < 0 || n < count) {
                out += repl;
                ++n;
            }
            if (i < cps.size()) utf8_append(out, cps[i]);
            check();
        }
        return out;
    }
    size_t pos = 0;
    int64_t n = 0;
    while (count < 0 || n < count) {
        size_t hit = s.find(old, pos);
        if (hit == std::string_view::npos) break;
        out.append(s.substr(pos, hit - pos));
        out.append(repl);
        check();
        pos = hit + old.size();
        ++n;
    }
    out.append(s.substr(pos));
    check();
    return out;
}

int64_t py_count(std::string_view s, std::string_view sub) {
    if (sub.empty()) return int64_t(count_code_points(s)) + 1;
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return n;
}

int64_t py_find(std::string_view s, std::string_view sub) {
    size_t hit = s.find(sub);
    if (hit == std::string_view::npos) return -1;
    return int64_t(count_code_points(s.substr(0, hit)));
}

void append_repr(std::string& out, std::string_view s) {
    bool has_single = s.find('\'') != std::string_view::npos;
    bool has_double = s.find('"') != std::string_view::npos;
    char quote = (has_single && !has_double) ? '"' : '\'';
    out.push_back(quote);
    char buf[16];
    for (char32_t c : decode(s)) {
        if (c == char32_t(quote) || c == '\\') {
            out.push_back('\\');
            out.push_back(char(c));
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (py_isprintable(c)) {
            utf8_append(out, c);
        } else {
            if (c < 0x100)
                std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
            else if (c < 0x10000)
                std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
            else
                std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
            out += buf;
        }
    }
    out.push_back(quote);
}

}  // namespace ferry::text::jinja
