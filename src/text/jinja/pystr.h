// Python str semantics over UTF-8: code points, str.isspace, str.isprintable, case mapping,
// strip/split, repr quoting. Inputs are valid UTF-8 (checked where text enters the engine).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::text::jinja {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
size_t count_code_points(std::string_view s);

bool py_isspace(char32_t c);
bool py_isprintable(char32_t c);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()

enum class StripSide { both, left, right };
// chars == nullptr: Unicode whitespace, else any code point of *chars.
std::string py_strip(std::string_view s, const std::string* chars, StripSide side);
// str.split(sep, maxsplit): sep == nullptr splits on whitespace runs.
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count,
                       size_t max_bytes);
int64_t py_count(std::string_view s, std::string_view sub);
int64_t py_find(std::string_view s, std::string_view sub);  // in code points, -1 if absent

void append_repr(std::string& out, std::string_view s);  // Python repr('...') of a str

}  // namespace ferry::text::jinja
